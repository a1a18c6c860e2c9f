package servicenow

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/connector/connectortest/spectest"
)

// t0 is the tests' clock: any fixed time works.
var t0 = time.Date(2026, 3, 14, 17, 2, 11, 0, time.UTC)

func basic(f *connectortest.FakeServiceNow) Config {
	return Config{URL: f.URL, Username: connectortest.ServiceNowUser, Password: connectortest.ServiceNowPassword, Table: "incident"}
}

func newTarget(t *testing.T, f *connectortest.FakeServiceNow, cfg Config) (*Target, *time.Time) {
	t.Helper()
	return newTargetTimeout(t, f, cfg, 2*time.Second)
}

// newTargetTimeout is newTarget with a client timeout.
func newTargetTimeout(t *testing.T, f *connectortest.FakeServiceNow, cfg Config, timeout time.Duration) (*Target, *time.Time) {
	t.Helper()
	tg, err := New(cfg, spectest.Client(t, "testdata/servicenow.yaml", f.URL, timeout))
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	tg.now = func() time.Time { return now }
	return tg, &now
}

func call(t *testing.T, key string) connector.Delivery {
	b, err := json.Marshal(connector.Activity{Key: key, Fields: map[string]any{
		"short_description": "Call from +14155550100", "contact_type": "phone",
	}})
	if err != nil {
		t.Fatal(err)
	}
	return connector.Delivery{Key: key, Body: b, Attempt: 1}
}

func deliveryError(t *testing.T, err error) *connector.DeliveryError {
	t.Helper()
	var de *connector.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *connector.DeliveryError", err, err)
	}
	return de
}

func TestDeliver_InsertsOnceWithTheKey(t *testing.T) {
	f := connectortest.NewFakeServiceNow(t)
	tg, _ := newTarget(t, f, basic(f))
	d := call(t, "genesys:0001:calls")
	res, err := tg.Deliver(t.Context(), d)
	if err != nil || res.Status != 201 {
		t.Fatalf("Deliver = %+v, %v", res, err)
	}
	rows := f.Rows("incident", "correlation_id", d.Key)
	if len(rows) != 1 || rows[0]["sys_id"] != res.RecordID || rows[0]["short_description"] != "Call from +14155550100" {
		t.Fatalf("rows = %v, RecordID %s", rows, res.RecordID)
	}
	d.Attempt = 2
	again, err := tg.Deliver(t.Context(), d)
	if err != nil || again.RecordID != res.RecordID || again.Status != 200 {
		t.Errorf("again: %+v, %v; want the same row found", again, err)
	}
	if n := len(f.Rows("incident", "", "")); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
}

func TestDeliver_ConcurrentSameKeyFindsTheFirst(t *testing.T) {
	f := connectortest.NewFakeServiceNow(t)
	tg, _ := newTarget(t, f, basic(f))
	ids := make([]string, 20)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := tg.Deliver(t.Context(), call(t, "five9:77:calls"))
			if err != nil {
				t.Error(err)
			}
			ids[i] = res.RecordID
		}()
	}
	wg.Wait()
	if n := len(f.Rows("incident", "", "")); n != 1 {
		t.Fatalf("%d rows for one key delivered 20 times at once, want 1", n)
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Errorf("record ids %v, want all the same", ids)
			break
		}
	}
}

func TestDeliver_OAuth(t *testing.T) {
	for _, tc := range []struct {
		grant string
		cfg   func(*connectortest.FakeServiceNow) Config
	}{
		{"password", func(f *connectortest.FakeServiceNow) Config {
			c := basic(f)
			c.ClientID, c.ClientSecret = connectortest.ServiceNowClientID, connectortest.ServiceNowClientSecret
			return c
		}},
		{"client_credentials", func(f *connectortest.FakeServiceNow) Config {
			return Config{URL: f.URL, Table: "incident", ClientID: connectortest.ServiceNowClientID, ClientSecret: connectortest.ServiceNowClientSecret}
		}},
	} {
		t.Run(tc.grant, func(t *testing.T) {
			f := connectortest.NewFakeServiceNow(t)
			tg, _ := newTarget(t, f, tc.cfg(f))
			for _, key := range []string{"a", "b"} {
				if _, err := tg.Deliver(t.Context(), call(t, key)); err != nil {
					t.Fatal(err)
				}
			}
			f.ExpireTokens()
			if _, err := tg.Deliver(t.Context(), call(t, "c")); err != nil {
				t.Fatal(err)
			}
			if n := len(f.Tokens()); n != 2 {
				t.Errorf("%d tokens, want 1 cached for two deliveries and 1 after the 401", n)
			}
			for _, r := range f.Requests() {
				if strings.HasPrefix(r.Header.Get("Authorization"), "Basic") {
					t.Error("basic auth sent with OAuth configured")
				}
			}
			if n := len(f.Rows("incident", "", "")); n != 3 {
				t.Errorf("%d rows, want 3", n)
			}
		})
	}
}

func TestDeliver_Throttled(t *testing.T) {
	f := connectortest.NewFakeServiceNow(t)
	tg, now := newTarget(t, f, basic(f))
	body := `{"error":{"message":"Rate limit exceeded","detail":"Rate limit of 100 requests per hour for Table API exceeded"},"status":"failure"}`
	for _, tc := range []struct {
		header http.Header
		want   time.Duration
	}{
		{http.Header{"Retry-After": {"30"}}, 30 * time.Second},
		{http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(t0.Add(45*time.Minute).Unix(), 10)}, "X-Ratelimit-Rule": {"table-api"}}, 45 * time.Minute},
		{nil, 0},
	} {
		*now = t0
		tg.pause = connector.Pause{}
		f.FailRequest(connectortest.RequestFault{Response: connectortest.Response{Status: 429, Header: tc.header, Body: body}})
		_, err := tg.Deliver(t.Context(), call(t, "k"))
		de := deliveryError(t, err)
		if de.Permanent() || de.RetryAfter() != tc.want || de.Body != "Rate limit exceeded: Rate limit of 100 requests per hour for Table API exceeded" {
			t.Errorf("%v: %v, retry after %v; want a retry after %v with ServiceNow's message", tc.header, err, de.RetryAfter(), tc.want)
		}
		if tc.want == 0 {
			continue
		}
		sent := len(f.Requests())
		*now = t0.Add(tc.want - time.Second)
		if _, err := tg.Deliver(t.Context(), call(t, "k2")); deliveryError(t, err).RetryAfter() != time.Second || len(f.Requests()) != sent {
			t.Errorf("during the pause: %v, %d requests sent", err, len(f.Requests())-sent)
		}
	}
	*now = t0.Add(time.Hour)
	if _, err := tg.Deliver(t.Context(), call(t, "k")); err != nil {
		t.Error(err)
	}
}

func TestDeliver_RejectedKeepsServiceNowsMessage(t *testing.T) {
	f := connectortest.NewFakeServiceNow(t)
	tg, _ := newTarget(t, f, basic(f))
	b, _ := json.Marshal(connector.Activity{Fields: map[string]any{"description": "no short description"}})
	res, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k", Body: b})
	de := deliveryError(t, err)
	if !de.Permanent() || res.Status != 403 || de.Body != "Operation Failed: Data Policy Exception: \n\tShort description is mandatory" {
		t.Errorf("Deliver = %+v, %v (body %q); want dead with message: detail", res, err, de.Body)
	}

	b, _ = json.Marshal(connector.Activity{Object: "u_nope", Fields: map[string]any{"a": "b"}})
	if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k", Body: b}); !deliveryError(t, err).Permanent() || !strings.Contains(err.Error(), "Invalid table u_nope") {
		t.Errorf("unknown table: %v", err)
	}
	b, _ = json.Marshal(connector.Activity{Object: "Bad Table"})
	if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k", Body: b}); !deliveryError(t, err).Permanent() {
		t.Errorf("bad table name: %v", err)
	}
	b, _ = json.Marshal(connector.Activity{Fields: map[string]any{"correlation_id": "mine"}})
	if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k", Body: b}); !deliveryError(t, err).Permanent() {
		t.Errorf("a rule that sets the correlation field: %v", err)
	}
}

func TestDeliver_TableWithoutTheCorrelationColumn(t *testing.T) {
	f := connectortest.NewFakeServiceNow(t)
	tg, _ := newTarget(t, f, basic(f))
	b, _ := json.Marshal(connector.Activity{Object: "u_call_log", Fields: map[string]any{"u_phone": "+14155550100"}})
	d := connector.Delivery{Key: "k", Body: b}
	for attempt := 1; attempt <= 3; attempt++ {
		_, err := tg.Deliver(t.Context(), d)
		if de := deliveryError(t, err); !de.Permanent() || !strings.Contains(err.Error(), "correlation_field") {
			t.Errorf("attempt %d: %v, want dead naming correlation_field", attempt, err)
		}
	}
	if n := len(f.Rows("u_call_log", "", "")); n != 1 {
		t.Errorf("%d rows: the first insert cannot be helped, later ones must not happen", n)
	}

	// With the table's own column, it works.
	cfg := basic(f)
	cfg.CorrelationField = "u_call_key"
	tg, _ = newTarget(t, f, cfg)
	d.Key = "k2"
	for range 2 {
		if _, err := tg.Deliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.Rows("u_call_log", "u_call_key", "k2")); n != 1 {
		t.Errorf("%d rows with u_call_key k2, want 1", n)
	}
}

func TestDeliver_TransientFailuresRetryWithoutDuplicates(t *testing.T) {
	f := connectortest.NewFakeServiceNow(t)
	tg, _ := newTarget(t, f, basic(f))
	for i, fault := range []connectortest.RequestFault{
		{Method: http.MethodPost, Commit: true, Response: connectortest.Response{Reset: true}},
		{Method: http.MethodPost, Commit: true, Response: connectortest.Response{Status: 502, Body: "<html>Bad Gateway</html>"}},
		{Method: http.MethodPost, Commit: true, Response: connectortest.Response{Delay: 3 * time.Second}},
		{Method: http.MethodGet, Response: connectortest.Response{Status: 503}},
		{Method: http.MethodGet, Response: connectortest.Response{Status: 200, Body: "<html>login</html>"}},
		{Method: http.MethodPost, Response: connectortest.Response{Status: 201, Body: `{"result":{}}`}},
	} {
		d := call(t, "genesys:"+strconv.Itoa(i)+":calls")
		f.FailRequest(fault)
		if _, err := tg.Deliver(t.Context(), d); deliveryError(t, err).Permanent() {
			t.Errorf("%+v: %v is permanent", fault.Response, err)
		}
		res, err := tg.Deliver(t.Context(), d)
		rows := f.Rows("incident", "correlation_id", d.Key)
		if err != nil || len(rows) != 1 || res.RecordID != rows[0]["sys_id"] {
			t.Errorf("%+v, then: %+v, %v, rows %v", fault.Response, res, err, rows)
		}
	}
}

func TestCorrelation(t *testing.T) {
	long := strings.Repeat("x", 101)
	for key, hashed := range map[string]bool{"genesys:1:r": false, strings.Repeat("x", 100): false, long: true, "a^b": true} {
		got := correlation(key)
		if hashed != strings.HasPrefix(got, "sha256:") || len(got) > maxCorrelation || hashed && got == correlation(key+"y") {
			t.Errorf("correlation(%q) = %q", key, got)
		}
	}
	f := connectortest.NewFakeServiceNow(t)
	tg, _ := newTarget(t, f, basic(f))
	for range 2 {
		if _, err := tg.Deliver(t.Context(), call(t, "a^b="+long)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.Rows("incident", "correlation_id", correlation("a^b="+long))); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
}

func TestNew_Errors(t *testing.T) {
	ok := Config{URL: "https://acme.service-now.com", Username: "u", Password: "p4ss"}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.URL = "" }, "url: required"},
		{func(c *Config) { c.Username = "" }, "username: required"},
		{func(c *Config) { c.Password = "" }, "password: required"},
		{func(c *Config) { c.ClientSecret = "s" }, "client_id: required"},
		{func(c *Config) { c.ClientID = "id" }, "client_secret: required"},
		{func(c *Config) { c.TokenURL = "https://x/oauth_token.do" }, "token_url:"},
		{func(c *Config) { c.Table = "Incident;" }, "table:"},
		{func(c *Config) { c.CorrelationField = "a b" }, "correlation_field:"},
		{func(c *Config) { *c = Config{URL: c.URL, ClientID: "id", ClientSecret: "s", TokenURL: "::"} }, "token_url:"},
	} {
		cfg := ok
		tc.edit(&cfg)
		_, err := New(cfg, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("New = %v, want %q…", err, tc.want)
		}
	}
	if _, err := New(ok, nil); err != nil {
		t.Error(err)
	}
}

func TestSecretsStayOut(t *testing.T) {
	password := connectortest.ServiceNowPassword
	for _, tc := range []struct {
		oauth    bool
		status   int
		tokenURL bool // the fault is the token endpoint's
	}{
		{false, 400, false}, {false, 500, false}, {false, 200, false},
		{true, 400, false}, {true, 500, false}, {true, 200, false}, {true, 401, true},
	} {
		f := connectortest.NewFakeServiceNow(t)
		cfg := basic(f)
		secrets := []string{password, base64.StdEncoding.EncodeToString([]byte(connectortest.ServiceNowUser + ":" + password))}
		if tc.oauth {
			cfg.ClientID, cfg.ClientSecret = connectortest.ServiceNowClientID, connectortest.ServiceNowClientSecret
			secrets = []string{password, url.QueryEscape(password), connectortest.ServiceNowClientSecret}
		}
		tg, _ := newTarget(t, f, cfg)
		fault := connectortest.RequestFault{Response: connectortest.Response{Status: tc.status}}
		if tc.tokenURL {
			fault.Path = "/oauth_token.do"
		} else if tc.oauth {
			if _, err := tg.Deliver(t.Context(), call(t, "warm")); err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, f.Tokens()[0])
		}
		fault.Body = `{"error":{"message":"echo","detail":"` + strings.Join(secrets, " ") + `"}}`
		f.FailRequest(fault)
		res, err := tg.Deliver(t.Context(), call(t, "k"))
		if err == nil {
			t.Fatalf("%+v delivered", tc)
		}
		for _, s := range []string{err.Error(), deliveryError(t, err).Body, res.RecordID, fmt.Sprintf("%v %+v %#v", tg, tg, tg)} {
			for _, secret := range secrets {
				if strings.Contains(s, secret) {
					t.Errorf("%+v: %q shows %q", tc, s, secret)
				}
			}
		}
	}
}

// workNote is an activity that adds a work note to incident sysID.
func workNote(t *testing.T, key, sysID string) connector.Delivery {
	b, err := json.Marshal(connector.Activity{Key: key, Object: "incident", Fields: map[string]any{
		"sys_id": sysID, "work_notes": "Call from Maria Lopez (6 min)\n",
	}})
	if err != nil {
		t.Fatal(err)
	}
	return connector.Delivery{Key: key, Body: b, Attempt: 1}
}

func TestDeliver_WorkNoteOnce(t *testing.T) {
	f := connectortest.NewFakeServiceNow(t)
	tg, _ := newTarget(t, f, basic(f))
	inc := f.AddRow("incident", map[string]string{"short_description": "Printer on fire"})
	d := workNote(t, "genesys:3:notes", inc)
	for attempt := 1; attempt <= 3; attempt++ {
		res, err := tg.Deliver(t.Context(), d)
		if err != nil || res.RecordID != inc {
			t.Fatalf("attempt %d: %+v, %v", attempt, res, err)
		}
	}
	notes := f.Rows("sys_journal_field", "element_id", inc)
	if len(notes) != 1 || notes[0]["element"] != "work_notes" || notes[0]["value"] != "Call from Maria Lopez (6 min)\n\nctibridge key: genesys:3:notes" {
		t.Errorf("journal = %v, want one work note ending with the key", notes)
	}

	// The answer to the update lost after ServiceNow wrote it: the retry
	// finds the note.
	d = workNote(t, "genesys:4:notes", inc)
	f.FailRequest(connectortest.RequestFault{Method: http.MethodPatch, Commit: true, Response: connectortest.Response{Reset: true}})
	if _, err := tg.Deliver(t.Context(), d); deliveryError(t, err).Permanent() {
		t.Fatalf("lost answer: %v is permanent", err)
	}
	if _, err := tg.Deliver(t.Context(), d); err != nil || len(f.Records(d.Key)) != 1 {
		t.Errorf("retry: %v, %d notes with the key", err, len(f.Records(d.Key)))
	}

	// A row that is not there, a sys_id that is not one.
	_, err := tg.Deliver(t.Context(), workNote(t, "k5", strings.Repeat("0", 32)))
	if de := deliveryError(t, err); !de.Permanent() || de.Body != "No Record found: Record doesn't exist or ACL restricts the record retrieval" {
		t.Errorf("missing row: %v", err)
	}
	if _, err := tg.Deliver(t.Context(), workNote(t, "k6", "INC0010001")); !deliveryError(t, err).Permanent() || !strings.Contains(err.Error(), "sys_id") {
		t.Errorf("bad sys_id: %v", err)
	}
	b, _ := json.Marshal(connector.Activity{Object: "incident", Fields: map[string]any{"sys_id": 7, "short_description": "x"}})
	if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k7", Body: b}); !deliveryError(t, err).Permanent() || len(f.Rows("incident", "", "")) != 1 {
		t.Errorf("sys_id not a string: %v, want dead and no insert", err)
	}
}

func TestCheck(t *testing.T) {
	f := connectortest.NewFakeServiceNow(t)
	tg, _ := newTarget(t, f, basic(f))
	if err := tg.Check(t.Context(), "incident", "u_call_log"); err != nil {
		t.Errorf("Check = %v", err)
	}
	if err := tg.Check(t.Context(), "u_nope"); err == nil || !strings.Contains(err.Error(), "table u_nope: HTTP 400: Invalid table u_nope") {
		t.Errorf("Check(unknown table) = %v", err)
	}
	cfg := basic(f)
	cfg.Password = "wrong"
	tg, _ = newTarget(t, f, cfg)
	if err := tg.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "User Not Authenticated") {
		t.Errorf("Check with a wrong password = %v", err)
	}
}

func TestDeliver_LinksTheCaller(t *testing.T) {
	f := connectortest.NewFakeServiceNow(t)
	cfg := basic(f)
	cfg.CallerField, cfg.MatchTable, cfg.MatchColumns = "caller_id", "sys_user", []string{"phone", "mobile_phone"}
	tg, _ := newTarget(t, f, cfg)
	maria := f.AddRow("sys_user", map[string]string{"name": "Maria Lopez", "mobile_phone": "14155550100"})
	f.AddRow("sys_user", map[string]string{"name": "Front desk", "phone": "+14155550188"})
	f.AddRow("sys_user", map[string]string{"name": "Back office", "mobile_phone": "4155550188"})
	who := strings.Repeat("ab", 16)
	for _, tc := range []struct {
		key, phone string
		who        *connector.CRMObject
		want       string
	}{
		{"k1", "+14155550100", nil, maria},                                           // digits only in the CRM
		{"k2", "+14155550188", nil, ""},                                              // two people: none
		{"k3", "+14155550199", nil, ""},                                              // nobody
		{"k4", "+14155550100", &connector.CRMObject{Type: "sys_user", ID: who}, who}, // the platform's who wins
	} {
		b, _ := json.Marshal(connector.Activity{Phone: tc.phone, Who: tc.who, Fields: map[string]any{"short_description": "Call"}})
		if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: tc.key, Body: b}); err != nil {
			t.Fatalf("%s: %v", tc.key, err)
		}
		rows := f.Rows("incident", "correlation_id", tc.key)
		if len(rows) != 1 || rows[0]["caller_id"] != tc.want {
			t.Errorf("%s: rows %v, want caller_id %q", tc.key, rows, tc.want)
		}
	}

	f.FailRequest(connectortest.RequestFault{Method: http.MethodGet, Path: connectortest.ServiceNowTablePath + "sys_user", Response: connectortest.Response{Status: 503}})
	b, _ := json.Marshal(connector.Activity{Phone: "+14155550100", Fields: map[string]any{"short_description": "Call"}})
	if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k5", Body: b}); deliveryError(t, err).Permanent() || len(f.Rows("incident", "correlation_id", "k5")) != 0 {
		t.Errorf("lookup 503: %v, want a retry before the insert", err)
	}

	for _, bad := range []Config{
		{URL: f.URL, Username: "u", Password: "p", MatchTable: "sys_user", MatchColumns: []string{"phone"}},
		{URL: f.URL, Username: "u", Password: "p", CallerField: "caller_id", MatchTable: "sys_user"},
		{URL: f.URL, Username: "u", Password: "p", CallerField: "caller_id", MatchColumns: []string{"phone"}},
		{URL: f.URL, Username: "u", Password: "p", CallerField: "caller id"},
	} {
		if _, err := New(bad, nil); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
}
