package hubspot

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
)

// echo is a server that answers every request with status and a body
// repeating the request's headers and body: the worst case of a CRM or
// proxy that quotes what it was sent in its error.
func echo(t *testing.T, status func(r *http.Request) int, onToken func(w http.ResponseWriter)) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/v1/token" && onToken != nil {
			onToken(w)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(status(r))
		fmt.Fprintf(w, `{"status":"error","message":"you sent %q with %q","category":"VALIDATION_ERROR"}`, r.Header, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSecretsNeverShown checks every error and Result, as the outbox
// stores and shows them (message, %+v, response body), for the private
// app token, the refresh token, the client secret and the access tokens.
func TestSecretsNeverShown(t *testing.T) {
	const access = "access-token-0f9e8d"
	issue := func(w http.ResponseWriter) {
		fmt.Fprintf(w, `{"access_token":%q,"refresh_token":"refresh-token-rotated-4c4c","expires_in":1800}`, access)
	}
	always := func(code int) func(*http.Request) int { return func(*http.Request) int { return code } }
	secrets := []string{testPrivateToken, testClientSecret, testRefresh, access, "refresh-token-rotated-4c4c"}

	tests := []struct {
		name  string
		srv   *httptest.Server
		oauth bool
	}{
		{"private app, 400 echoing the request", echo(t, always(400), nil), false},
		{"private app, 401 echoing the request", echo(t, always(401), nil), false},
		{"private app, 503 echoing the request", echo(t, always(503), nil), false},
		{"OAuth, 400 echoing the request", echo(t, always(400), issue), true},
		{"OAuth, 401 twice echoing the request", echo(t, always(401), issue), true},
		{"OAuth, token endpoint echoing the form", echo(t, always(400), nil), true},
		{"OAuth, token endpoint 503 echoing the form", echo(t, always(503), nil), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Token: testPrivateToken, BaseURL: tc.srv.URL, IDProperty: testIDProperty}
			if tc.oauth {
				cfg = Config{RefreshToken: testRefresh, ClientID: testClientID, ClientSecret: testClientSecret,
					TokenURL: tc.srv.URL + "/oauth/v1/token", BaseURL: tc.srv.URL, IDProperty: testIDProperty}
			}
			tg, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			for attempt := 1; attempt <= 2; attempt++ { // create, then upsert
				res, err := deliver(t, tg, "k1", activity("k1", nil, nil), attempt)
				if err == nil {
					t.Fatalf("attempt %d delivered against an echo server", attempt)
				}
				shown := err.Error() + fmt.Sprintf("\n%+v\n%#v\n%v\n%#v", err, res, tg, tg)
				if de, ok := err.(*connector.DeliveryError); ok {
					shown += "\n" + de.ResponseBody()
				}
				for _, s := range secrets {
					if strings.Contains(shown, s) {
						t.Errorf("attempt %d shows secret %.8q…:\n%s", attempt, s, shown)
					}
				}
			}
		})
	}
	if _, err := New(Config{Token: "pat with space", IDProperty: "k"}, nil); err == nil || strings.Contains(err.Error(), "pat with space") {
		t.Errorf("a malformed token: %v, want an error that does not quote it", err)
	}
}
