package dynamics

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

func TestUUIDv5(t *testing.T) {
	// RFC 9562 Appendix A.4: www.example.com in the DNS namespace.
	dns := [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	if got := uuidV5(dns, "www.example.com"); got != "2ed6657d-e927-568b-95e1-2665a8aea6a2" {
		t.Errorf("uuidV5 = %s, want RFC 9562's 2ed6657d-e927-568b-95e1-2665a8aea6a2", got)
	}
	ns := fmt.Sprintf("%x-%x-%x-%x-%x", namespace[0:4], namespace[4:6], namespace[6:8], namespace[8:10], namespace[10:])
	if got := uuidV5(dns, "ctibridge.activity"); got != ns {
		t.Errorf("namespace is %s, its comment says the UUIDv5 of ctibridge.activity, %s", ns, got)
	}
	if ActivityID("a") == ActivityID("b") {
		t.Error("two keys share an activity id")
	}
}

func TestNew_Errors(t *testing.T) {
	ok := Config{URL: "https://acme.crm.dynamics.com", TenantID: "contoso.onmicrosoft.com", ClientID: "id", ClientSecret: "p4ss-w0rd"}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.URL = "" }, "url: required"},
		{func(c *Config) { c.URL = "ftp://x" }, "url: scheme"},
		{func(c *Config) { c.TenantID = "" }, "tenant_id: required"},
		{func(c *Config) { c.TenantID = "a/b" }, "tenant_id: not"},
		{func(c *Config) { c.TokenURL = "token" }, "token_url:"},
		{func(c *Config) { c.ClientID = "" }, "client_id: required"},
		{func(c *Config) { c.ClientSecret = "" }, "client_secret: required"},
		{func(c *Config) { c.APIVersion = "9.2" }, "api_version:"},
		{func(c *Config) { c.Scope = "https://acme.crm.dynamics.com/user_impersonation" }, "scope:"},
		{func(c *Config) { c.EntitySets = map[string]string{"new_call": "new/calls"} }, "entity_sets:"},
	} {
		cfg := ok
		tc.edit(&cfg)
		_, err := New(cfg, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("New = %v, want %q…", err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), ok.ClientSecret) {
			t.Errorf("error %q shows the client secret", err)
		}
	}
	if _, err := New(ok, nil); err != nil {
		t.Errorf("New(valid) = %v", err)
	}
}

func TestDeliver_TokenCachedRefreshedBeforeExpiryAndOnce401(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	tg, now := newTarget(t, f, config(f))
	deliver := func(key string) {
		t.Helper()
		if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: key, Body: inboundCall(t).Body}); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
	}
	deliver("k1")
	deliver("k2")
	if n := len(f.Tokens()); n != 1 {
		t.Errorf("%d tokens for two deliveries, want 1 (cached)", n)
	}
	// Entra ID's tokens last 3,599 s; 30 s before that the target gets a
	// new one without waiting for a 401.
	*now = now.Add(3599*time.Second - 29*time.Second)
	deliver("k3")
	if n := len(f.Tokens()); n != 2 {
		t.Errorf("%d tokens after the first neared expiry, want 2", n)
	}
	// A token that expired early (revoked): one 401, a new token, success.
	f.ExpireTokens()
	deliver("k4")
	if n := len(f.Tokens()); n != 3 {
		t.Errorf("%d tokens after a 401, want 3", n)
	}
}

func TestDeliver_UnauthorizedTwiceIsDead(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	tg, _ := newTarget(t, f, config(f))
	f.FailRequest(
		connectortest.RequestFault{Response: connectortest.Response{Status: 401}},
		connectortest.RequestFault{Response: connectortest.Response{Status: 401}},
	)
	_, err := tg.Deliver(t.Context(), inboundCall(t))
	if de := deliveryError(t, err); !de.Permanent() || de.Status != 401 || !strings.Contains(err.Error(), "newly fetched") {
		t.Errorf("err = %v, want a permanent 401 that says the new token was refused", err)
	}
}

func TestDeliver_Throttled(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	tg, now := newTarget(t, f, config(f))
	f.FailRequest(connectortest.RequestFault{Response: connectortest.Response{
		Status: 429,
		Header: http.Header{"Retry-After": {"7"}},
		Body:   `{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit of 6000 over time window of 300 seconds."}}`,
	}})
	_, err := tg.Deliver(t.Context(), inboundCall(t))
	de := deliveryError(t, err)
	if de.Permanent() || de.RetryAfter() != 7*time.Second || !strings.Contains(de.Body, "6000") {
		t.Fatalf("err = %v (retry after %v), want a retry after 7 s with Dataverse's message", err, de.RetryAfter())
	}
	// Until then, no delivery of this target sends anything.
	sent := len(f.Requests())
	*now = now.Add(3 * time.Second)
	_, err = tg.Deliver(t.Context(), connector.Delivery{Key: "other", Body: inboundCall(t).Body})
	if de := deliveryError(t, err); de.Permanent() || de.RetryAfter() != 4*time.Second {
		t.Errorf("during the pause: %v, want a retry after the 4 s left", err)
	}
	if len(f.Requests()) != sent {
		t.Error("a request was sent during the pause")
	}
	*now = now.Add(4 * time.Second)
	if _, err := tg.Deliver(t.Context(), inboundCall(t)); err != nil {
		t.Errorf("after the pause: %v", err)
	}
}

func TestDeliver_RateLimitHeadersExhausted(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	tg, now := newTarget(t, f, Config{LeaveOpen: true, URL: f.URL, TokenURL: f.TokenURL(), ClientID: connectortest.DataverseClientID, ClientSecret: connectortest.DataverseClientSecret})
	f.FailRequest(connectortest.RequestFault{Commit: true, Response: connectortest.Response{
		Status: 204,
		Header: http.Header{"X-Ms-Ratelimit-Burst-Remaining-Xrm-Requests": {"0"}, "Odata-Entityid": {"x"}},
	}})
	if _, err := tg.Deliver(t.Context(), inboundCall(t)); err != nil {
		t.Fatal(err)
	}
	_, err := tg.Deliver(t.Context(), connector.Delivery{Key: "next", Body: inboundCall(t).Body})
	if de := deliveryError(t, err); de.RetryAfter() != exhaustedPause {
		t.Errorf("next delivery: %v, want held for %v", err, exhaustedPause)
	}
	*now = now.Add(exhaustedPause)
	if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "next", Body: inboundCall(t).Body}); err != nil {
		t.Error(err)
	}
}

func TestDeliver_Rejected(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	tg, _ := newTarget(t, f, config(f))
	// The wrong navigation property: phonecall's is type-specific.
	d := connector.Delivery{Key: "k", Body: activity(t, connector.Activity{Object: "phonecall", Fields: map[string]any{
		"subject": "x", "regardingobjectid_contact@odata.bind": "/contacts(" + contactID + ")",
	}})}
	res, err := tg.Deliver(t.Context(), d)
	de := deliveryError(t, err)
	if !de.Permanent() || res.Status != 400 || !strings.Contains(de.Body, "undeclared property 'regardingobjectid_contact'") {
		t.Errorf("Deliver = %+v, %v; want dead with Dataverse's message", res, err)
	}
	if f.Count("phonecalls") != 0 {
		t.Error("a refused row was stored")
	}

	_, err = tg.Deliver(t.Context(), connector.Delivery{Key: "k", Body: activity(t, connector.Activity{Object: "new_chat"})})
	if de := deliveryError(t, err); !de.Permanent() || !strings.Contains(err.Error(), "entity_sets") {
		t.Errorf("unknown table: %v", err)
	}
	for _, body := range []string{`{`, `[]`} {
		if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k", Body: []byte(body)}); !deliveryError(t, err).Permanent() {
			t.Errorf("body %s: %v, want permanent", body, err)
		}
	}
}

func TestDeliver_TransientFailuresRetry(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	tg, _ := newTarget(t, f, config(f))
	for _, fault := range []connectortest.RequestFault{
		{Response: connectortest.Response{Status: 503, Body: `{"error":{"code":"0x80040216","message":"An unexpected error occurred."}}`}},
		{Response: connectortest.Response{Delay: 3 * time.Second}}, // beyond the client's 2 s
		{Response: connectortest.Response{Status: 204}},            // a create that says nothing of its row
	} {
		f.FailRequest(fault)
		_, err := tg.Deliver(t.Context(), inboundCall(t))
		if de := deliveryError(t, err); de.Permanent() {
			t.Errorf("%+v: %v is permanent", fault.Response, err)
		}
	}
	if _, err := tg.Deliver(t.Context(), inboundCall(t)); err != nil || f.Count("phonecalls") != 1 {
		t.Errorf("after the failures: %v, %d rows", err, f.Count("phonecalls"))
	}
}

func TestDeliver_LeaveOpen(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	cfg := config(f)
	cfg.LeaveOpen = true
	tg, _ := newTarget(t, f, cfg)
	d := inboundCall(t)
	if _, err := tg.Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if rec := f.Record("phonecalls", ActivityID(d.Key)); rec["statecode"] != 0.0 || len(methods(f)) != 1 {
		t.Errorf("statecode %v after %v, want an open call and one request", rec["statecode"], methods(f))
	}
}

func TestCheck(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	tg, _ := newTarget(t, f, config(f))
	if err := tg.Check(t.Context()); err != nil {
		t.Errorf("Check = %v", err)
	}
	if err := tg.Check(t.Context(), "new_chat"); err == nil || !strings.Contains(err.Error(), "entity_sets") {
		t.Errorf("Check(unknown object) = %v", err)
	}
	cfg := config(f)
	cfg.ClientSecret = "wrong"
	tg, _ = newTarget(t, f, cfg)
	if err := tg.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "Invalid client secret") {
		t.Errorf("Check with a wrong secret = %v, want the token endpoint's explanation", err)
	}
}
