package salesforce

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// Ids with valid 18-character suffixes.
const (
	contactID = "003000000000001AAA"
	leadID    = "00Q000000000002EAA"
	accountID = "001000000000003AAA"
	caseID    = "500000000000004AAA"
)

// config returns a client credentials Config for fake.
func config(fake *connectortest.Salesforce) Config {
	return Config{
		LoginURL:        fake.URL,
		ClientID:        fake.ClientID,
		ClientSecret:    fake.ClientSecret,
		ExternalIDField: "CallLogKey__c",
	}
}

// newTarget builds a target against fake whose requests are validated
// against the OpenAPI document.
func newTarget(t *testing.T, cfg Config, timeout time.Duration) *Target {
	t.Helper()
	tg, err := New(cfg, validating(t, &http.Client{Timeout: timeout}))
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// activity returns the JSON of a call activity with key.
func activity(key string, edit ...func(*connector.Activity)) []byte {
	a := connector.Activity{
		Key: key, Rule: "log-call", Target: "salesforce", Platform: "genesys", InteractionID: "7f3c9c2e",
		Fields: map[string]any{
			"Subject":               "Inbound call from +1 415 555 0100",
			"CallType":              "Inbound",
			"CallDurationInSeconds": 312,
			"CallObject":            "7f3c9c2e",
			"Status":                "Completed",
			"ActivityDate":          "2026-03-14",
		},
		Who:   &connector.CRMObject{Type: "Contact", ID: contactID},
		What:  &connector.CRMObject{Type: "Case", ID: caseID},
		Phone: "+14155550100",
	}
	for _, e := range edit {
		e(&a)
	}
	b, _ := json.Marshal(a)
	return b
}

func deliverFunc(tg *Target) connectortest.DeliverFunc {
	return func(ctx context.Context, key string, body []byte, attempt int) (string, error) {
		r, err := tg.Deliver(ctx, connector.Delivery{Key: key, Body: body, Attempt: attempt})
		return r.RecordID, err
	}
}

func TestConformance(t *testing.T) {
	connectortest.RunTargetSuite(t, connectortest.TargetSuite{
		Setup: func(t *testing.T, timeout time.Duration) (connectortest.CRM, connectortest.DeliverFunc) {
			fake := connectortest.NewSalesforce(t)
			return fake, deliverFunc(newTarget(t, config(fake), timeout))
		},
		Activity: func(key string) []byte { return activity(key) },
		// Every fake has the same client secret.
		Secrets: []string{connectortest.NewSalesforce(t).ClientSecret},
	})
}

// rsaKey is one key for the JWT tests: generating one takes a while.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// keyFile writes the test key as PKCS #8 PEM and returns its path.
func keyFile(t *testing.T) (path string, pemText string) {
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey())
	if err != nil {
		t.Fatal(err)
	}
	pemText = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	path = filepath.Join(t.TempDir(), "sf.key")
	if err := os.WriteFile(path, []byte(pemText), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, pemText
}

func jwtConfig(t *testing.T, fake *connectortest.Salesforce) Config {
	path, _ := keyFile(t)
	fake.TrustJWT("integration@acme.example", &rsaKey().PublicKey)
	return Config{
		LoginURL:        fake.URL,
		ClientID:        fake.ClientID,
		PrivateKeyFile:  path,
		Username:        "integration@acme.example",
		ExternalIDField: "CallLogKey__c",
	}
}

func TestConformanceJWT(t *testing.T) {
	_, pemText := keyFile(t)
	body := strings.Split(strings.TrimSpace(pemText), "\n")[1] // a line of the key material
	connectortest.RunTargetSuite(t, connectortest.TargetSuite{
		Setup: func(t *testing.T, timeout time.Duration) (connectortest.CRM, connectortest.DeliverFunc) {
			fake := connectortest.NewSalesforce(t)
			return fake, deliverFunc(newTarget(t, jwtConfig(t, fake), timeout))
		},
		Activity: func(key string) []byte { return activity(key) },
		Secrets:  []string{body},
	})
}

func TestNewNamesTheKey(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	keyPath, _ := keyFile(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	os.WriteFile(notPEM, []byte("SECRETMATERIAL"), 0o600)
	base := config(fake)
	cases := []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.LoginURL = "" }, "login_url: required"},
		{func(c *Config) { c.LoginURL = "acme.my.salesforce.com" }, "login_url: not an http(s) URL"},
		{func(c *Config) { c.ClientID = "" }, "client_id: required"},
		{func(c *Config) { c.ClientSecret = "" }, "client_secret or private_key_file: one is required"},
		{func(c *Config) { c.PrivateKeyFile = keyPath }, "client_secret and private_key_file: set one"},
		{func(c *Config) { c.ClientSecret, c.PrivateKeyFile = "", keyPath }, "username: required with private_key_file"},
		{func(c *Config) { c.ClientSecret, c.PrivateKeyFile, c.Username = "", "/nonexistent/sf.key", "u" }, "private_key_file: open /nonexistent/sf.key"},
		{func(c *Config) { c.ClientSecret, c.PrivateKeyFile, c.Username = "", notPEM, "u" }, "private_key_file: no PEM block"},
		{func(c *Config) { c.ExternalIDField = "" }, "external_id_field: required"},
		{func(c *Config) { c.ExternalIDField = "Call Log Key" }, "external_id_field: \"Call Log Key\" is not"},
		{func(c *Config) { c.Object = "Task/x" }, "object: "},
		{func(c *Config) { c.APIVersion = "v62" }, "api_version: "},
		{func(c *Config) { c.APIVersion = "45.0" }, "api_version: 45.0, want 46.0 or later"},
		{func(c *Config) { c.LimitThreshold = 90 }, "limit_threshold: "},
		{func(c *Config) { c.FieldLimits = map[string]int{"Notes__c": 0} }, "field_limits: "},
		{func(c *Config) { c.MatchRules, c.MatchMultiple = []string{"*"}, "all" }, "match_multiple: "},
		{func(c *Config) { c.MatchRules, c.MatchFlagField = []string{"*"}, "flag field" }, "match_flag_field: "},
	}
	for _, c := range cases {
		cfg := base
		c.edit(&cfg)
		_, err := New(cfg, nil)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("New = %v, want an error starting %q", err, c.want)
			continue
		}
		if strings.Contains(err.Error(), fake.ClientSecret) || strings.Contains(err.Error(), "SECRETMATERIAL") {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
}

func deliver(t *testing.T, tg *Target, key string, body []byte) (connector.Result, error) {
	t.Helper()
	return tg.Deliver(t.Context(), connector.Delivery{Key: key, Body: body, Attempt: 1})
}

func permanent(err error) bool {
	var de *connector.DeliveryError
	return errors.As(err, &de) && de.Permanent()
}

func TestTaskFields(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	tg := newTarget(t, config(fake), 5*time.Second)
	long := strings.Repeat("é", 300)
	r, err := deliver(t, tg, "genesys:7f3c:log-call", activity("genesys:7f3c:log-call", func(a *connector.Activity) {
		a.Fields["Subject"] = long
		a.Fields["Description"] = strings.Repeat("x", 40000)
		a.Fields["CallLogKey__c"] = "from the rule" // the key goes in the URL only
	}))
	if err != nil || r.Status != 201 {
		t.Fatalf("Deliver = %+v, %v", r, err)
	}
	got := fake.Record(r.RecordID)
	want := map[string]any{
		"Subject": strings.Repeat("é", 255), "TaskSubtype": "Call", "WhoId": contactID, "WhatId": caseID,
		"CallType": "Inbound", "CallDurationInSeconds": float64(312), "CallLogKey__c": "genesys:7f3c:log-call",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("record %s = %.40v, want %.40v", k, got[k], v)
		}
	}
	if d, _ := got["Description"].(string); len(d) != 32000 {
		t.Errorf("Description has %d characters, want 32000", len(d))
	}
	reqs := fake.Requests()
	if p := reqs[len(reqs)-1].Path; p != "/sobjects/Task/CallLogKey__c/genesys:7f3c:log-call" {
		t.Errorf("path = %s", p)
	}
}

func TestWhoWhat(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	tg := newTarget(t, config(fake), 5*time.Second)
	cases := []struct {
		name      string
		who, what *connector.CRMObject
		wantWho   any
		wantWhat  any
	}{
		{"lead and account", &connector.CRMObject{Type: "Lead", ID: leadID}, &connector.CRMObject{Type: "Account", ID: accountID}, leadID, accountID},
		{"who is an account", &connector.CRMObject{Type: "Account", ID: accountID}, nil, nil, accountID},
		{"15-character id", &connector.CRMObject{Type: "contact", ID: contactID[:15]}, nil, contactID[:15], nil},
		{"person by prefix", &connector.CRMObject{ID: contactID}, nil, contactID, nil},
		{"what wins over a non-person who", &connector.CRMObject{Type: "Account", ID: accountID}, &connector.CRMObject{Type: "Case", ID: caseID}, nil, caseID},
	}
	for i, c := range cases {
		key := "ww" + string(rune('a'+i))
		r, err := deliver(t, tg, key, activity(key, func(a *connector.Activity) {
			a.Who, a.What = c.who, c.what
			// What a rule's WhoId = 'who?.id' gives without a who.
			a.Fields["WhoId"], a.Fields["WhatId"] = nil, ""
		}))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		rec := fake.Record(r.RecordID)
		if rec["WhoId"] != c.wantWho || rec["WhatId"] != c.wantWhat {
			t.Errorf("%s: WhoId %v WhatId %v, want %v %v", c.name, rec["WhoId"], rec["WhatId"], c.wantWho, c.wantWhat)
		}
	}

	bad := []struct {
		name string
		edit func(*connector.Activity)
		want string
	}{
		{"short id", func(a *connector.Activity) { a.Who.ID = "003abc" }, `who.id "003abc"`},
		{"bad checksum", func(a *connector.Activity) { a.What.ID = caseID[:15] + "ZZZ" }, "what.id"},
		{"punctuation", func(a *connector.Activity) { a.What.ID = "500000000000-04" }, "what.id"},
		{"field id", func(a *connector.Activity) { a.Fields["OwnerId"] = 5 }, "fields.OwnerId"},
		{"object", func(a *connector.Activity) { a.Object = "Task'; DROP" }, "object"},
	}
	before := fake.APICalls()
	for _, c := range bad {
		_, err := deliver(t, tg, "bad", activity("bad", c.edit))
		if !permanent(err) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `rule "log-call"`) {
			t.Errorf("%s: %v, want permanent naming %s and the rule", c.name, err, c.want)
		}
	}
	if n := fake.APICalls() - before; n != 0 {
		t.Errorf("%d API calls for records that cannot be sent, want 0", n)
	}
}

func TestCustomObject(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	fake.SetExternalID("Call_Log__c", "CallLogKey__c")
	tg := newTarget(t, Config{LoginURL: fake.URL, ClientID: fake.ClientID, ClientSecret: fake.ClientSecret,
		ExternalIDField: "CallLogKey__c", FieldLimits: map[string]int{"Notes__c": 10}}, 5*time.Second)
	r, err := deliver(t, tg, "k/1 ü", activity("k/1 ü", func(a *connector.Activity) {
		a.Object = "Call_Log__c"
		a.Fields = map[string]any{"Notes__c": "0123456789abc"}
		a.Who, a.What = nil, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	rec := fake.Record(r.RecordID)
	if rec["Notes__c"] != "0123456789" || rec["TaskSubtype"] != nil {
		t.Errorf("record = %v, want Notes__c cut to 10 and no TaskSubtype", rec)
	}
	ext, _ := rec["CallLogKey__c"].(string)
	if !strings.HasPrefix(ext, "k_1___~") || ext != externalID("k/1 ü") {
		t.Errorf("external id = %q, want the key made safe for a URL, with a hash", ext)
	}
	if externalID("k/1 ü") == externalID("k_1 ü") || externalID(strings.Repeat("a", 300)) == externalID(strings.Repeat("a", 301)) {
		t.Error("two keys share an external id")
	}
	if n := len(externalID(strings.Repeat("a", 300))); n != maxExtID {
		t.Errorf("external id of a 300-character key has %d characters, want %d", n, maxExtID)
	}
}

func TestSeveralMatches(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	tg := newTarget(t, config(fake), 5*time.Second)
	if _, err := deliver(t, tg, "dup", activity("dup")); err != nil {
		t.Fatal(err)
	}
	fake.Duplicate("Task", "dup")
	r, err := deliver(t, tg, "dup", activity("dup"))
	if r.Status != 300 || !permanent(err) || !strings.Contains(err.Error(), `salesforce Task, rule "log-call", key "dup": several records hold this key in CallLogKey__c`) {
		t.Errorf("Deliver = %+v, %v, want 300 dead with a clear message", r, err)
	}
}

func TestValidationNamesRuleAndField(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	// Not validated: the OpenAPI check would catch the misspelt field
	// before Salesforce does.
	tg, err := New(config(fake), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = deliver(t, tg, "x", activity("x", func(a *connector.Activity) { a.Fields["CallDuration"] = 5 }))
	var de *connector.DeliveryError
	if !errors.As(err, &de) || !de.Permanent() || de.Status != 400 ||
		!strings.Contains(err.Error(), `rule "log-call"`) || !strings.Contains(de.Body, "No such column 'CallDuration'") {
		t.Errorf("Deliver = %v, want dead naming the rule, with Salesforce's message", err)
	}
	fake.Reject("y", "Calls need a disposition")
	_, err = deliver(t, tg, "y", activity("y"))
	if !permanent(err) || !strings.Contains(err.Error(), "FIELD_CUSTOM_VALIDATION_EXCEPTION: Calls need a disposition") {
		t.Errorf("Deliver = %v, want dead with the validation rule's message", err)
	}
}

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestSessionRefreshedBeforeExpiry(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	cfg := config(fake)
	cfg.SessionTimeout = time.Hour
	tg := newTarget(t, cfg, 5*time.Second)
	clk := &clock{now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
	tg.now = clk.Now
	for i, step := range []time.Duration{0, 50 * time.Minute, 5 * time.Minute} {
		clk.Add(step)
		if _, err := deliver(t, tg, "s", activity("s")); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	// The session of 9:00 is used at 9:50, and replaced at 9:55, before
	// the org's timeout at 10:00 (a margin of 5 minutes).
	if n := len(fake.Tokens()); n != 2 {
		t.Errorf("fetched %d sessions, want 2", n)
	}
	for _, r := range fake.Requests() {
		if r.Method != http.MethodPatch {
			t.Errorf("unexpected request %s %s", r.Method, r.Path)
		}
	}
}

func TestRefreshedOnlyOnce(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	tg := newTarget(t, config(fake), 5*time.Second)
	// A proxy that refuses every session: the target must not loop.
	refusing := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.Contains(r.URL.Path, "/services/data/") {
			r.Header.Set("Authorization", "Bearer revoked")
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	tg.client, tg.auth.client = refusing, refusing
	_, err := deliver(t, tg, "r", activity("r"))
	if !permanent(err) || !strings.Contains(err.Error(), "INVALID_SESSION_ID") {
		t.Errorf("Deliver = %v, want dead after one refresh", err)
	}
	if n := len(fake.Tokens()); n != 2 {
		t.Errorf("fetched %d sessions, want 2 (the first and one refresh)", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestThrottlingIsNeverDead(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	tg := newTarget(t, config(fake), 5*time.Second)
	fake.SetUsage(100000, 100000)
	for i := range 3 {
		_, err := deliver(t, tg, "t", activity("t"))
		var de *connector.DeliveryError
		if !errors.As(err, &de) || de.Permanent() {
			t.Fatalf("attempt %d = %v, want retryable", i, err)
		}
		if i == 0 && (de.Status != 403 || de.RetryAfter() != DefaultLimitWait) {
			t.Errorf("first attempt: %d, RetryAfter %v; want 403 with limit_wait %v (the org has no requests left)", de.Status, de.RetryAfter(), DefaultLimitWait)
		}
	}
	if n := fake.APICalls(); n != 1 {
		t.Errorf("%d API calls while over the limit, want 1: the target waits limit_wait", n)
	}
}

func TestSlowsDownBeforeTheLimit(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	var reported [][2]int
	var mu sync.Mutex
	cfg := config(fake)
	cfg.LimitThreshold, cfg.LimitWait = 0.9, 10*time.Minute
	cfg.OnUsage = func(used, max int) { mu.Lock(); reported = append(reported, [2]int{used, max}); mu.Unlock() }
	tg := newTarget(t, cfg, 5*time.Second)
	clk := &clock{now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
	tg.now = clk.Now

	fake.SetUsage(89000, 100000)
	if _, err := deliver(t, tg, "a", activity("a")); err != nil {
		t.Fatal(err)
	}
	if u, m := tg.Usage(); u != 89001 || m != 100000 {
		t.Errorf("Usage = %d/%d, want 89001/100000", u, m)
	}
	fake.SetUsage(90000, 100000)
	if _, err := deliver(t, tg, "b", activity("b")); err != nil {
		t.Fatalf("below the threshold when sent: %v", err)
	}
	// Usage is now 90001/100000, past 0.9: wait limit_wait.
	clk.Add(4 * time.Minute)
	_, err := deliver(t, tg, "c", activity("c"))
	var de *connector.DeliveryError
	if !errors.As(err, &de) || de.Permanent() || de.RetryAfter() != 6*time.Minute || !strings.Contains(err.Error(), "limit_threshold") {
		t.Fatalf("Deliver past the threshold = %v, want a retry in 6m naming limit_threshold", err)
	}
	if n := fake.APICalls(); n != 2 {
		t.Errorf("API calls = %d, want 2: the third delivery waits", n)
	}
	clk.Add(6 * time.Minute)
	if _, err := deliver(t, tg, "c", activity("c")); err != nil {
		t.Errorf("after limit_wait: %v, want one call to go through", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 3 || reported[2] != [2]int{90002, 100000} {
		t.Errorf("OnUsage saw %v, want 3 reports ending 90002/100000", reported)
	}
}
