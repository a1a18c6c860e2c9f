package salesforce

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// TestNoSecretLeak checks that no error, Result or description of a target
// shows its client secret, its private key or an access token: errors are
// stored with each attempt and shown by `outbox show` and the admin API.
// (RunTargetSuite checks the same for every scenario it runs.)
func TestNoSecretLeak(t *testing.T) {
	const token = "00Dxx0000001gPL!AQ4AQFakeSessionToken"
	_, pemText := keyFile(t)
	keyLines := strings.Split(strings.TrimSpace(pemText), "\n")
	forbidden := []string{token, "fake-consumer-secret-7c1e", "wrong-secret-9d2f", keyLines[1], keyLines[len(keyLines)-2]}
	check := func(t *testing.T, what string, values ...any) {
		t.Helper()
		for _, v := range values {
			for _, f := range forbidden {
				for _, s := range []string{fmt.Sprint(v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v)} {
					if strings.Contains(s, f) {
						t.Errorf("%s leaks %.12q…: %s", what, f, s)
					}
				}
			}
		}
	}

	// An org whose every answer echoes the request's Authorization header,
	// as some proxies' error pages do.
	mux := http.NewServeMux()
	echo := httptest.NewServer(mux)
	t.Cleanup(echo.Close)
	mux.HandleFunc("POST /services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"access_token":%q,"instance_url":%q,"token_type":"Bearer"}`, token, echo.URL)
	})
	mux.HandleFunc("/services/data/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		fmt.Fprintf(w, `[{"message":"bad header %s","errorCode":"INVALID_HEADER_TYPE"}]`, r.Header.Get("Authorization"))
	})

	fake := connectortest.NewSalesforce(t)
	wrongSecret := config(fake)
	wrongSecret.ClientSecret = "wrong-secret-9d2f"
	untrusted := jwtConfig(t, fake)
	untrusted.Username = "someone-else@acme.example"
	echoing := config(fake)
	echoing.LoginURL = echo.URL
	echoing.ClientSecret = "fake-consumer-secret-7c1e"

	for name, cfg := range map[string]Config{
		"refused client secret": wrongSecret,
		"refused JWT":           untrusted,
		"echoed token":          echoing,
	} {
		t.Run(name, func(t *testing.T) {
			tg := newTarget(t, cfg, 2*time.Second)
			check(t, "target", tg)
			r, err := deliver(t, tg, "leak", activity("leak"))
			if err == nil {
				t.Fatal("delivered, want an error")
			}
			var de *connector.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("error %T, want *connector.DeliveryError", err)
			}
			check(t, "delivery", err, r, de.Body)
		})
	}
	t.Run("refused token endpoint names the error", func(t *testing.T) {
		_, err := deliver(t, newTarget(t, wrongSecret, 2*time.Second), "k", activity("k"))
		if !permanent(err) || !strings.Contains(err.Error(), "invalid_client") {
			t.Errorf("Deliver = %v, want dead with Salesforce's invalid_client", err)
		}
	})
}
