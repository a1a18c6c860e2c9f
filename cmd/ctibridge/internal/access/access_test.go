package access_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/access"
)

const crmOrigin = "https://acme.my.salesforce.com"

// sources has a Five9 source with a token and an allowed origin, a Genesys
// source with another token, and a Bright Pattern source with neither.
var sources = access.Sources{
	"five9":         {Token: "five9-secret", AllowedOrigins: []string{crmOrigin}},
	"genesys":       {Token: "genesys-secret"},
	"brightpattern": {},
}

func request(method, token, origin string) *http.Request {
	r := httptest.NewRequest(method, "/v1/events/x", strings.NewReader("{}"))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	return r
}

// errorOf returns the {"error": …} of a refusal.
func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct{ Error string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error == "" {
		t.Fatalf("refusal body %q is not {\"error\": …} (%v)", w.Body, err)
	}
	return body.Error
}

func TestAuthorizeSource(t *testing.T) {
	tests := []struct {
		name, platform, token, origin string
		want                          int  // 0: authorized
		cors                          bool // Access-Control-Allow-Origin set to origin
	}{
		{name: "no token", platform: "five9", want: http.StatusUnauthorized},
		{name: "wrong token", platform: "five9", token: "genesys-secret", want: http.StatusUnauthorized},
		{name: "token prefix", platform: "five9", token: "five9-secre", want: http.StatusUnauthorized},
		{name: "right token", platform: "five9", token: "five9-secret"},
		{name: "right token, allowed origin", platform: "five9", token: "five9-secret", origin: crmOrigin, cors: true},
		{name: "allowed origin, no token", platform: "five9", origin: crmOrigin, want: http.StatusUnauthorized, cors: true},
		{name: "foreign origin", platform: "five9", token: "five9-secret", origin: "https://evil.example", want: http.StatusForbidden},
		{name: "origin of another source's list", platform: "genesys", token: "genesys-secret", origin: crmOrigin, want: http.StatusForbidden},
		{name: "source without token", platform: "brightpattern"},
		{name: "source without token, any origin refused", platform: "brightpattern", origin: crmOrigin, want: http.StatusForbidden},
		{name: "unknown source", platform: "nowhere"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			ok := sources.AuthorizeSource(w, request(http.MethodPost, tt.token, tt.origin), tt.platform)
			if ok != (tt.want == 0) {
				t.Fatalf("AuthorizeSource = %v, want %v (response %d %s)", ok, tt.want == 0, w.Code, w.Body)
			}
			if tt.want != 0 {
				if w.Code != tt.want {
					t.Errorf("status = %d, want %d", w.Code, tt.want)
				}
				msg := errorOf(t, w)
				if strings.Contains(msg, "secret") {
					t.Errorf("refusal %q shows a token", msg)
				}
				if tt.want == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if tt.want == http.StatusForbidden && !strings.Contains(msg, "sources."+tt.platform+".allowed_origins") {
					t.Errorf("403 %q does not name the key to change", msg)
				}
			} else if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Errorf("authorized request got a response written: %d %q", w.Code, w.Body)
			}
			got := w.Header().Get("Access-Control-Allow-Origin")
			if tt.cors {
				if got != tt.origin {
					t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.origin)
				}
				if exp := w.Header().Get("Access-Control-Expose-Headers"); !strings.Contains(exp, "Retry-After") {
					t.Errorf("Access-Control-Expose-Headers = %q, want Retry-After exposed", exp)
				}
				if w.Header().Get("Vary") != "Origin" {
					t.Errorf("Vary = %q, want Origin", w.Header().Get("Vary"))
				}
			} else if got != "" {
				t.Errorf("Access-Control-Allow-Origin = %q, want none", got)
			}
		})
	}
}

func TestAuthorizeAny(t *testing.T) {
	tests := []struct {
		name    string
		sources access.Sources
		token   string
		origin  string
		want    int // 0: authorized
	}{
		{name: "first source's token", sources: sources, token: "five9-secret"},
		{name: "second source's token", sources: sources, token: "genesys-secret"},
		{name: "no token", sources: sources, want: http.StatusUnauthorized},
		{name: "wrong token", sources: sources, token: "nope", want: http.StatusUnauthorized},
		{name: "allowed origin", sources: sources, token: "genesys-secret", origin: crmOrigin},
		{name: "foreign origin", sources: sources, token: "five9-secret", origin: "https://evil.example", want: http.StatusForbidden},
		{name: "no source has a token", sources: access.Sources{"brightpattern": {}}},
		{name: "no source has a token, any token", sources: access.Sources{"brightpattern": {}}, token: "whatever"},
		{name: "no sources, an origin", sources: access.Sources{}, origin: crmOrigin, want: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			ok := tt.sources.AuthorizeAny(w, request(http.MethodPost, "", tt.origin), tt.token)
			if ok != (tt.want == 0) {
				t.Fatalf("AuthorizeAny = %v, want %v (response %d %s)", ok, tt.want == 0, w.Code, w.Body)
			}
			if tt.want == 0 {
				if w.Body.Len() != 0 {
					t.Errorf("authorized request got a body %q", w.Body)
				}
			} else {
				if w.Code != tt.want {
					t.Errorf("status = %d, want %d", w.Code, tt.want)
				}
				if msg := errorOf(t, w); strings.Contains(msg, "secret") {
					t.Errorf("refusal %q shows a token", msg)
				}
			}
			if tt.want != http.StatusForbidden && tt.origin != "" {
				if got := w.Header().Get("Access-Control-Allow-Origin"); got != tt.origin {
					t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.origin)
				}
			}
		})
	}
}

func TestPreflightSource(t *testing.T) {
	tests := []struct {
		name, platform, origin string
		want                   int
	}{
		{"allowed origin", "five9", crmOrigin, http.StatusNoContent},
		{"foreign origin", "five9", "https://evil.example", http.StatusForbidden},
		{"origin of another source", "genesys", crmOrigin, http.StatusForbidden},
		{"unknown platform", "nowhere", crmOrigin, http.StatusForbidden},
		{"no origin", "five9", "", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			sources.PreflightSource(w, request(http.MethodOptions, "", tt.origin), tt.platform)
			if w.Code != tt.want {
				t.Fatalf("preflight = %d %s, want %d", w.Code, w.Body, tt.want)
			}
			checkPreflight(t, w, tt.want == http.StatusNoContent, tt.origin)
		})
	}
}

func TestPreflightAny(t *testing.T) {
	tests := []struct {
		name, origin string
		want         int
	}{
		{"origin some source allows", crmOrigin, http.StatusNoContent},
		{"foreign origin", "https://evil.example", http.StatusForbidden},
		{"no origin", "", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			sources.PreflightAny(w, request(http.MethodOptions, "", tt.origin))
			if w.Code != tt.want {
				t.Fatalf("preflight = %d %s, want %d", w.Code, w.Body, tt.want)
			}
			checkPreflight(t, w, tt.want == http.StatusNoContent, tt.origin)
		})
	}
}

// checkPreflight checks the CORS headers of a preflight answer: all of
// them when allowed, none otherwise.
func checkPreflight(t *testing.T, w *httptest.ResponseRecorder, allowed bool, origin string) {
	t.Helper()
	h := w.Header()
	if !allowed {
		if h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("refused preflight has CORS headers: %v", h)
		}
		errorOf(t, w)
		return
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":  origin,
		"Access-Control-Allow-Methods": "POST",
		"Access-Control-Max-Age":       "600",
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	for _, hdr := range []string{"Authorization", "Content-Type"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), hdr) {
			t.Errorf("Access-Control-Allow-Headers = %q, want %s allowed", h.Get("Access-Control-Allow-Headers"), hdr)
		}
	}
}

func TestOriginAllowed(t *testing.T) {
	if !sources.OriginAllowed(crmOrigin) {
		t.Errorf("OriginAllowed(%q) = false, want true", crmOrigin)
	}
	for _, o := range []string{"", "https://evil.example", crmOrigin + "/", "http://acme.my.salesforce.com"} {
		if sources.OriginAllowed(o) {
			t.Errorf("OriginAllowed(%q) = true, want false", o)
		}
	}
}

func TestSameToken(t *testing.T) {
	tests := []struct {
		got, want string
		same      bool
	}{
		{"s3cret", "s3cret", true},
		{"", "", true},
		{"s3cret", "s3cre", false},
		{"s3cre", "s3cret", false},
		{"S3cret", "s3cret", false},
		{"", "s3cret", false},
	}
	for _, tt := range tests {
		if got := access.SameToken(tt.got, tt.want); got != tt.same {
			t.Errorf("SameToken(%q, %q) = %v, want %v", tt.got, tt.want, got, tt.same)
		}
	}
}
