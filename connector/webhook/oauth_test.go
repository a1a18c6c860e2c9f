package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// Client credentials with the characters RFC 6749 §2.3.1 says must be
// form-urlencoded before they go into HTTP Basic auth.
const (
	testClientID     = "ctibridge client:1"
	testClientSecret = "s3cr3t+/=&%é:x"
)

// tokenServer is an httptest OAuth 2.0 token endpoint. It checks each
// request as a client credentials grant with HTTP Basic client
// authentication, and by default answers with access tokens "tok-1",
// "tok-2", … in fetch order.
type tokenServer struct {
	*httptest.Server
	fetches atomic.Int32
	// expiresIn is the expires_in member, verbatim JSON; "" leaves it out.
	expiresIn string
	// wantScope is the scope parameter the endpoint expects; "" wants none.
	wantScope string
	// gate, when set, holds every answer until it is closed.
	gate chan struct{}
	// handler, when set, answers instead, after the checks.
	handler http.HandlerFunc
}

func newTokenServer(t *testing.T, ts *tokenServer) *tokenServer {
	t.Helper()
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ts.fetches.Add(1)
		if err := checkTokenRequest(r, ts.wantScope); err != nil {
			t.Errorf("token endpoint: %v", err)
			http.Error(w, `{"error":"invalid_request"}`, 400)
			return
		}
		if ts.gate != nil {
			select {
			case <-ts.gate:
			case <-r.Context().Done():
				return
			}
		}
		if ts.handler != nil {
			ts.handler(w, r)
			return
		}
		body := fmt.Sprintf(`{"access_token":"tok-%d","token_type":"Bearer"`, n)
		if ts.expiresIn != "" {
			body += `,"expires_in":` + ts.expiresIn
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, body+"}")
	}))
	t.Cleanup(ts.Close)
	return ts
}

// checkTokenRequest checks r as RFC 6749 §4.4.2 and §2.3.1 describe it.
func checkTokenRequest(r *http.Request, wantScope string) error {
	if r.Method != http.MethodPost {
		return fmt.Errorf("method %s, want POST", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		return fmt.Errorf("Content-Type %q", ct)
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return errors.New("no HTTP Basic client authentication")
	}
	if id, err := url.QueryUnescape(user); err != nil || id != testClientID {
		return fmt.Errorf("Basic user %q does not form-decode to the client id", user)
	}
	if secret, err := url.QueryUnescape(pass); err != nil || secret != testClientSecret {
		return errors.New("Basic password does not form-decode to the client secret")
	}
	if err := r.ParseForm(); err != nil {
		return err
	}
	if g := r.PostForm.Get("grant_type"); g != "client_credentials" {
		return fmt.Errorf("grant_type %q", g)
	}
	if _, has := r.PostForm["scope"]; has != (wantScope != "") || r.PostForm.Get("scope") != wantScope {
		return fmt.Errorf("scope %q (present %v), want %q", r.PostForm.Get("scope"), has, wantScope)
	}
	// One client authentication method only (RFC 6749 §2.3).
	if r.PostForm.Has("client_secret") || r.PostForm.Has("client_id") {
		return errors.New("client credentials in the body as well as in Basic auth")
	}
	return nil
}

func oauthConfig(receiverURL, tokenURL string) Config {
	return Config{
		URL:          receiverURL,
		Secret:       testSecret,
		TokenURL:     tokenURL,
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
	}
}

// bearer returns the access token of each request, in order.
func bearers(rc *receiver) []string {
	var out []string
	for _, r := range rc.requests() {
		out = append(out, strings.TrimPrefix(r.header.Get("Authorization"), "Bearer "))
	}
	return out
}

func deliverOK(t *testing.T, tg *Target, key string) {
	t.Helper()
	if res, err := tg.Deliver(t.Context(), connector.Delivery{Key: key, Body: testBody, Attempt: 1}); err != nil {
		t.Fatalf("Deliver(%s) = %d, %v; want success", key, res.Status, err)
	}
}

func TestOAuth_Request(t *testing.T) {
	ts := newTokenServer(t, &tokenServer{expiresIn: "3599", wantScope: "https://org.crm.dynamics.com/.default calls.write"})
	rc := newReceiver(t, nil)
	cfg := oauthConfig(rc.URL+"/hook", ts.URL+"/tenant/oauth2/v2.0/token")
	cfg.Scopes = []string{"https://org.crm.dynamics.com/.default", "calls.write"}
	cfg.Headers = map[string]string{"X-Tenant": "acme"}
	tg := mustNew(t, cfg, nil)
	now := time.Now()
	tg.now = func() time.Time { return now }

	deliverOK(t, tg, "k1")
	r := rc.requests()[0]
	if got := r.header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer tok-1" {
		t.Errorf("Authorization = %q, want [Bearer tok-1]", got)
	}
	if r.header.Get("X-Tenant") != "acme" {
		t.Errorf("configured header lost: X-Tenant = %q", r.header.Get("X-Tenant"))
	}
	if err := verify(testSecret, r.header, r.body, now); err != nil {
		t.Errorf("signature: %v", err)
	}
	if n := ts.fetches.Load(); n != 1 {
		t.Errorf("token fetches = %d, want 1", n)
	}
}

func TestOAuth_ConcurrentFetchOnce(t *testing.T) {
	ts := newTokenServer(t, &tokenServer{expiresIn: "3600", gate: make(chan struct{})})
	rc := newReceiver(t, nil)
	tg := mustNew(t, oauthConfig(rc.URL, ts.URL), nil)

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k" + strconv.Itoa(i), Body: testBody, Attempt: 1})
			errs <- err
		})
	}
	// Hold the token endpoint while the deliveries pile up behind it.
	time.Sleep(100 * time.Millisecond)
	close(ts.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Deliver: %v", err)
		}
	}
	if got := ts.fetches.Load(); got != 1 {
		t.Errorf("token fetches = %d for %d concurrent deliveries, want 1", got, n)
	}
	bs := bearers(rc)
	if len(bs) != n {
		t.Fatalf("receiver got %d requests, want %d", len(bs), n)
	}
	for _, b := range bs {
		if b != "tok-1" {
			t.Errorf("request with token %q, want tok-1", b)
		}
	}
}

func TestOAuth_Expiry(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		expiresIn string        // verbatim JSON, "" for none
		cached    time.Duration // still the first token then
		refetched time.Duration // a second token by then; 0: never
	}{
		// 30 s before expiry for a long-lived token.
		{name: "Number", expiresIn: "3600", cached: 3569 * time.Second, refetched: 3571 * time.Second},
		// Some servers send expires_in as a string.
		{name: "String", expiresIn: `"3600"`, cached: 3569 * time.Second, refetched: 3571 * time.Second},
		// 10 % before expiry for a short-lived one.
		{name: "Short", expiresIn: "100", cached: 89 * time.Second, refetched: 91 * time.Second},
		// Without expires_in (Salesforce), the token is used until a 401.
		{name: "None", cached: 30 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, &tokenServer{expiresIn: tt.expiresIn})
			rc := newReceiver(t, nil)
			tg := mustNew(t, oauthConfig(rc.URL, ts.URL), nil)
			now := t0
			tg.now = func() time.Time { return now }

			deliverOK(t, tg, "k1")
			deliverOK(t, tg, "k2")
			now = t0.Add(tt.cached)
			deliverOK(t, tg, "k3")
			want := []string{"tok-1", "tok-1", "tok-1"}
			if tt.refetched != 0 {
				now = t0.Add(tt.refetched)
				deliverOK(t, tg, "k4")
				deliverOK(t, tg, "k5")
				want = append(want, "tok-2", "tok-2")
			}
			if got := bearers(rc); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("tokens sent = %v, want %v", got, want)
			}
			if got, want := int(ts.fetches.Load()), 1+min(1, int(tt.refetched)); got != want {
				t.Errorf("token fetches = %d, want %d", got, want)
			}
		})
	}
}

func TestOAuth_UnauthorizedRefreshesOnce(t *testing.T) {
	ts := newTokenServer(t, &tokenServer{expiresIn: "3600"})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer tok-1" {
			http.Error(w, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, 401)
			return
		}
		w.WriteHeader(201)
	})
	tg := mustNew(t, oauthConfig(rc.URL, ts.URL), nil)

	res, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k1", Body: testBody, Attempt: 1})
	status := res.Status
	if status != 201 || err != nil {
		t.Fatalf("Deliver = %d, %v; want 201, nil", status, err)
	}
	if got := ts.fetches.Load(); got != 2 {
		t.Errorf("token fetches = %d, want 2 (one refresh)", got)
	}
	reqs := rc.requests()
	if got := bearers(rc); fmt.Sprint(got) != "[tok-1 tok-2]" {
		t.Fatalf("tokens sent = %v, want [tok-1 tok-2]", got)
	}
	for i, r := range reqs {
		if r.header.Get("webhook-id") != "k1" || r.header.Get("Idempotency-Key") != "k1" || string(r.body) != string(testBody) {
			t.Errorf("request %d is not the same delivery", i+1)
		}
		if err := verify(testSecret, r.header, r.body, time.Now()); err != nil {
			t.Errorf("request %d: signature: %v", i+1, err)
		}
	}

	// The new token is cached: the next delivery needs no fetch.
	deliverOK(t, tg, "k2")
	if got := ts.fetches.Load(); got != 2 {
		t.Errorf("token fetches after another delivery = %d, want 2", got)
	}
}

func TestOAuth_UnauthorizedTwice(t *testing.T) {
	const msg = `{"message":"The OAuth token used to make this call expired 0 second(s) ago.","category":"EXPIRED_AUTHENTICATION"}`
	ts := newTokenServer(t, &tokenServer{expiresIn: "3600"})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, msg, 401) })
	tg := mustNew(t, oauthConfig(rc.URL, ts.URL), nil)

	res, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k1", Body: testBody, Attempt: 1})
	status := res.Status
	if status != 401 {
		t.Errorf("status = %d, want 401", status)
	}
	de := deliveryError(t, err)
	if !de.Permanent() || de.StatusCode() != 401 {
		t.Errorf("error %v: permanent %v, status %d; want permanent 401", err, de.Permanent(), de.StatusCode())
	}
	if !strings.Contains(err.Error(), "EXPIRED_AUTHENTICATION") || !strings.Contains(de.ResponseBody(), "EXPIRED_AUTHENTICATION") {
		t.Errorf("error %q / body %q lacks the receiver's message", err, de.ResponseBody())
	}
	if n := len(rc.requests()); n != 2 {
		t.Errorf("receiver requests = %d, want 2", n)
	}
	if n := ts.fetches.Load(); n != 2 {
		t.Errorf("token fetches = %d, want 2", n)
	}
}

// TestOAuth_UnauthorizedConcurrent checks that deliveries refused the same
// token at once refresh it once between them.
func TestOAuth_UnauthorizedConcurrent(t *testing.T) {
	ts := newTokenServer(t, &tokenServer{expiresIn: "3600"})
	start := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer tok-1" {
			<-start // every delivery holds tok-1 before any is refused
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(204)
	})
	tg := mustNew(t, oauthConfig(rc.URL, ts.URL), nil)

	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k" + strconv.Itoa(i), Body: testBody, Attempt: 1}); err != nil {
				t.Errorf("Deliver: %v", err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	close(start)
	wg.Wait()
	if got := ts.fetches.Load(); got != 2 {
		t.Errorf("token fetches = %d, want 2 (one refresh shared by all)", got)
	}
	if got := len(rc.requests()); got != 2*n {
		t.Errorf("receiver requests = %d, want %d", got, 2*n)
	}
}

func TestDeliver_UnauthorizedWithoutOAuth(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad API key", 401) })
	tg := mustNew(t, Config{URL: rc.URL, Headers: map[string]string{"Authorization": "Bearer static"}}, nil)
	res, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k1", Body: testBody, Attempt: 1})
	status := res.Status
	if status != 401 || !deliveryError(t, err).Permanent() || !strings.Contains(err.Error(), "bad API key") {
		t.Errorf("Deliver = %d, %v; want 401 and a permanent error with the receiver's message", status, err)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("receiver requests = %d, want 1", n)
	}
}

func TestOAuth_TokenEndpointErrors(t *testing.T) {
	answer := func(status int, body string, header ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}
	}
	tests := []struct {
		name       string
		handler    http.HandlerFunc // nil: nothing listens
		permanent  bool
		retryAfter time.Duration
		wantInErr  []string
		wantBody   string
	}{
		{
			name:      "Unavailable",
			handler:   answer(503, `upstream down`),
			wantInErr: []string{"token endpoint: HTTP 503", "upstream down"},
		},
		{
			name:       "TooManyRequests",
			handler:    answer(429, `{"error":"temporarily_unavailable"}`, "Retry-After", "7"),
			retryAfter: 7 * time.Second,
			wantInErr:  []string{"token endpoint: HTTP 429", "temporarily_unavailable"},
		},
		{
			name: "InvalidClient400",
			handler: answer(400, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.",`+
				`"error_codes":[7000215],"trace_id":"abc"}`),
			permanent: true,
			wantInErr: []string{"token endpoint: HTTP 400", "invalid_client: AADSTS7000215: Invalid client secret provided."},
			wantBody:  "invalid_client: AADSTS7000215: Invalid client secret provided.",
		},
		{
			name:      "InvalidClient401",
			handler:   answer(401, `{"error":"invalid_client"}`, "WWW-Authenticate", `Basic realm="token"`),
			permanent: true,
			wantInErr: []string{"token endpoint: HTTP 401", "invalid_client"},
			wantBody:  "invalid_client",
		},
		{
			name:      "NotJSON",
			handler:   answer(200, `<html>login</html>`),
			permanent: true,
			wantInErr: []string{"token endpoint: HTTP 200", "not a JSON token response"},
		},
		{
			name:      "NoAccessToken",
			handler:   answer(200, `{"token_type":"Bearer"}`),
			permanent: true,
			wantInErr: []string{"no access_token"},
		},
		{
			name:      "NotBearer",
			handler:   answer(200, `{"access_token":"x","token_type":"mac"}`),
			permanent: true,
			wantInErr: []string{`token_type "mac"`},
		},
		{name: "ConnectionRefused", wantInErr: []string{"token endpoint: ", "connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokenURL := closedURL(t)
			if tt.handler != nil {
				tokenURL = newTokenServer(t, &tokenServer{handler: tt.handler}).URL
			}
			rc := newReceiver(t, nil)
			tg := mustNew(t, oauthConfig(rc.URL, tokenURL+"/token"), nil)

			res, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k1", Body: testBody, Attempt: 1})
			status := res.Status
			if status != 0 {
				t.Errorf("status = %d, want 0: the receiver was not asked", status)
			}
			de := deliveryError(t, err)
			if de.Permanent() != tt.permanent {
				t.Errorf("Permanent() = %v, want %v (error %v)", de.Permanent(), tt.permanent, err)
			}
			if de.RetryAfter() != tt.retryAfter {
				t.Errorf("RetryAfter() = %v, want %v", de.RetryAfter(), tt.retryAfter)
			}
			for _, want := range tt.wantInErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if tt.wantBody != "" && de.ResponseBody() != tt.wantBody {
				t.Errorf("ResponseBody() = %q, want %q", de.ResponseBody(), tt.wantBody)
			}
			if strings.Contains(fmt.Sprintf("%+v %#v", err, err), testClientSecret) {
				t.Errorf("error leaks the client secret: %v", err)
			}
			if n := len(rc.requests()); n != 0 {
				t.Errorf("receiver got %d requests without a token, want 0", n)
			}
		})
	}
}

// TestOAuth_WaiterCancelled checks that a delivery whose ctx ends while it
// waits for a token returns at once, retryable, and that the shared fetch
// carries on for the others.
func TestOAuth_WaiterCancelled(t *testing.T) {
	ts := newTokenServer(t, &tokenServer{expiresIn: "3600", gate: make(chan struct{})})
	rc := newReceiver(t, nil)
	tg := mustNew(t, oauthConfig(rc.URL, ts.URL), nil)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := tg.Deliver(ctx, connector.Delivery{Key: "k1", Body: testBody, Attempt: 1})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if de := deliveryError(t, err); de.Permanent() || !errors.Is(err, context.Canceled) {
			t.Errorf("Deliver = %v; want a retryable error wrapping context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Deliver did not return after its ctx was cancelled")
	}

	close(ts.gate)
	deliverOK(t, tg, "k2")
	if got := ts.fetches.Load(); got != 1 {
		t.Errorf("token fetches = %d, want 1: the cancelled caller's fetch should serve the next", got)
	}
}

func TestDeliver_Conflict(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"record with this key already exists"}`, 409)
	})
	for _, delivered := range []bool{true, false} {
		t.Run(fmt.Sprintf("ConflictMeansDelivered=%v", delivered), func(t *testing.T) {
			tg := mustNew(t, Config{URL: rc.URL, ConflictMeansDelivered: delivered}, nil)
			res, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k1", Body: testBody, Attempt: 1})
			status := res.Status
			if status != 409 {
				t.Errorf("status = %d, want 409", status)
			}
			if delivered {
				if err != nil {
					t.Errorf("error = %v, want nil", err)
				}
				return
			}
			de := deliveryError(t, err)
			if !de.Permanent() || !strings.Contains(err.Error(), "already exists") {
				t.Errorf("error %v: permanent %v; want permanent with the receiver's message", err, de.Permanent())
			}
		})
	}
}

func TestNew_OAuth(t *testing.T) {
	ok := Config{URL: "https://example.com/hook", TokenURL: "https://login.example.com/token", ClientID: "id", ClientSecret: "s"}
	with := func(f func(*Config)) Config {
		c := ok
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // prefix; empty for success
	}{
		{"OK", ok, ""},
		{"OKScopes", with(func(c *Config) { c.Scopes = []string{"https://org.crm.dynamics.com/.default"} }), ""},
		{"OKOtherHeaders", with(func(c *Config) { c.Headers = map[string]string{"X-Tenant": "acme"} }), ""},
		{"ErrNoClientID", with(func(c *Config) { c.ClientID = "" }), "client_id: required"},
		{"ErrNoClientSecret", with(func(c *Config) { c.ClientSecret = "" }), "client_secret: required"},
		{"ErrAuthorizationHeader", with(func(c *Config) { c.Headers = map[string]string{"authorization": "Bearer x"} }), "headers: Authorization"},
		{"ErrTokenURLScheme", with(func(c *Config) { c.TokenURL = "ftp://login.example.com/token" }), `token_url: scheme "ftp"`},
		{"ErrTokenURLNoHost", with(func(c *Config) { c.TokenURL = "https:///token" }), "token_url: no host"},
		{"ErrScopeSpace", with(func(c *Config) { c.Scopes = []string{"a b"} }), "scopes:"},
		{"ErrScopeEmpty", with(func(c *Config) { c.Scopes = []string{""} }), "scopes:"},
		{"ErrClientIDWithoutTokenURL", Config{URL: "https://example.com", ClientID: "id"}, "token_url: required"},
		{"ErrScopesWithoutTokenURL", Config{URL: "https://example.com", Scopes: []string{"a"}}, "token_url: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want an error starting %q", err, tt.wantErr)
			}
		})
	}
}
