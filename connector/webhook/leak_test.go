package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// TestNoSecretLeak checks that no error or description of a target shows
// its signing secret, the password in its URL, a token in its query string
// or a configured header value: all of them end up in the outbox and on the
// admin page.
func TestNoSecretLeak(t *testing.T) {
	const (
		password    = "URLPASSWORD"
		queryToken  = "QUERYSECRET"
		headerToken = "HEADERSECRET"
	)
	rawSecret := strings.TrimPrefix(testSecret, "whsec_")
	const pathToken = "T0PATHSECRET"
	forbidden := []string{password, queryToken, pathToken, headerToken, rawSecret, rawSecret[:16]}
	check := func(t *testing.T, what, s string) {
		t.Helper()
		for _, f := range forbidden {
			if strings.Contains(s, f) {
				t.Errorf("%s leaks %q: %s", what, f, s)
			}
		}
	}
	withSecrets := func(base string) Config {
		u := strings.Replace(base, "http://", "http://admin:"+password+"@", 1)
		return Config{
			URL:     u + "/hook/" + pathToken + "?token=" + queryToken,
			Secret:  testSecret,
			Headers: map[string]string{"Authorization": "Bearer " + headerToken},
		}
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	scenarios := []struct {
		name    string
		handler http.HandlerFunc // nil: nothing listens
		ctx     context.Context
	}{
		{name: "ConnectionRefused"},
		{name: "Timeout", handler: hang},
		{name: "Cancelled", handler: hang, ctx: cancelled},
		{name: "BadRequest", handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad record", 400) }},
		{name: "Unavailable", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			base := closedURL(t)
			if sc.handler != nil {
				base = newReceiver(t, sc.handler).URL
			}
			ctx := sc.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			tg := mustNew(t, withSecrets(base), &http.Client{Timeout: 200 * time.Millisecond})
			_, err := tg.Deliver(ctx, connector.Delivery{Key: "k1", Body: testBody, Attempt: 1})
			if err == nil {
				t.Fatal("Deliver succeeded, want an error")
			}
			check(t, "error", err.Error())
			check(t, "error %+v", fmt.Sprintf("%+v", err))
			check(t, "error %#v", fmt.Sprintf("%#v", err))
			if de := deliveryError(t, err); de.Status == 0 && !strings.Contains(err.Error(), base[len("http://"):]) {
				t.Errorf("transport error %q does not name the host", err)
			}
			check(t, "String()", tg.String())
			check(t, "%v", fmt.Sprintf("%v", tg))
			check(t, "%+v", fmt.Sprintf("%+v", tg))
			check(t, "%#v", fmt.Sprintf("%#v", tg))
		})
	}

	t.Run("New", func(t *testing.T) {
		bad := []Config{
			{URL: "ftp://admin:" + password + "@example.com/?token=" + queryToken},
			{URL: "http://admin:" + password + "@example.com:port/?token=" + queryToken},
			{URL: "http://example.com", Secret: "whsec_" + rawSecret[:12]},
			{URL: "http://example.com", Secret: "whsec_" + rawSecret + "!"},
			{URL: "http://example.com", Headers: map[string]string{"Authorization": "Bearer " + headerToken + "\n"}},
		}
		for _, cfg := range bad {
			_, err := New(cfg, nil)
			if err == nil {
				t.Errorf("New(%d-byte URL…) = nil, want an error", len(cfg.URL))
				continue
			}
			check(t, "New error", err.Error())
		}
	})
}
