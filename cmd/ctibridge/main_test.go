package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/outbox"
)

// TestMain lets a test run this binary as the daemon in a child process,
// which it can kill: with TEST_CTIBRIDGE_CHILD set, the binary is
// `ctibridge` with the arguments in TEST_CTIBRIDGE_ARGS.
func TestMain(m *testing.M) {
	if os.Getenv("TEST_CTIBRIDGE_CHILD") != "" {
		main2(strings.Fields(os.Getenv("TEST_CTIBRIDGE_ARGS")))
	}
	os.Exit(m.Run())
}

func main2(args []string) {
	os.Args = append([]string{"ctibridge"}, args...)
	main()
}

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// testMapping maps every Bright Pattern call to a "crm" target.
const testMapping = `
[[rule]]
name   = "calls"
target = "crm"
object = "Task"
when   = 'channel == "voice"'

[rule.fields]
Subject     = '"Call " + (direction == "inbound" ? "from " + ani : "to " + dnis)'
Duration    = 'duration'
Disposition = 'lookup("dispositions", disposition?.name, "Other")'
WhoId       = 'who?.id'
Notes       = 'notes'

[lookups.dispositions]
"Sale Closed" = "Sale"
`

// writeConfig writes a config delivering to crmURL, mapped by testMapping,
// and returns its path.
func writeConfig(tb testing.TB, dir, crmURL string) string {
	tb.Helper()
	return writeConfigWith(tb, dir, testMapping, `
[targets.crm]
type = "webhook"
url = "`+crmURL+`"
secret = "${CRM_SECRET}"
timeout = "2s"
`)
}

// writeConfigWith writes a config with the given mapping file and targets
// sections, and returns its path.
func writeConfigWith(tb testing.TB, dir, mappingText, targets string) string {
	tb.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "mappings"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mappings", "crm.toml"), []byte(mappingText), 0o644); err != nil {
		tb.Fatal(err)
	}
	cfg := `
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[store]
path = "` + filepath.Join(dir, "ctibridge.db") + `"

[mapping]
dir = "` + filepath.Join(dir, "mappings") + `"
` + targets
	path := filepath.Join(dir, "ctibridge.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

var testEnviron = []string{"CRM_SECRET=" + testSecret}

// MustRunMain starts the daemon in process with the config at path.
func MustRunMain(tb testing.TB, path string) *Main {
	tb.Helper()
	cfg, err := config.Load(path, testEnviron)
	if err != nil {
		tb.Fatal(err)
	}
	return MustRunMainConfig(tb, cfg)
}

// MustRunMainConfig starts the daemon in process with cfg.
func MustRunMainConfig(tb testing.TB, cfg config.Config, opts ...func(*Main)) *Main {
	tb.Helper()
	m := NewMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, o := range opts {
		o(m)
	}
	if err := m.Open(); err != nil {
		m.Close(context.Background())
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return m
}

func post(tb testing.TB, addr, platform string, body []byte) (int, map[string]any) {
	tb.Helper()
	resp, err := http.Post("http://"+addr+"/v1/events/"+platform, "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatalf("response body is not JSON: %v", err)
	}
	return resp.StatusCode, out
}

func readExample(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile("../../examples/events/brightpattern-call.json")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestServe_BrightPatternCallReachesCRMOnce(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	m := MustRunMain(t, writeConfig(t, t.TempDir(), crm.URL+"/activities"))

	status, body := post(t, m.Addr(), "brightpattern", readExample(t))
	if status != http.StatusAccepted || body["duplicate"] != false || body["id"] != float64(1) {
		t.Fatalf("POST = %d %v, want 202 {id:1, duplicate:false}", status, body)
	}
	key := callKey("7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D")
	crm.WaitAccepted(t, 10*time.Second, key)

	reqs := crm.Requests()
	want := `{"key":"` + key + `","rule":"calls","target":"crm","object":"Task","platform":"brightpattern",` +
		`"interactionId":"7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D","fields":{"Disposition":"Sale","Duration":385,` +
		`"Notes":"Customer upgraded to Premium, annual billing. Send welcome kit.","Subject":"Call from +14155550142",` +
		`"WhoId":"0035g00000XyZ12AAB"},"who":{"type":"contact","id":"0035g00000XyZ12AAB","name":"Maria Lopez"},` +
		`"phone":"+14155550142"}`
	if got := string(reqs[0].Body); got != want {
		t.Errorf("CRM received\n%s\nwant\n%s", got, want)
	}
	h := reqs[0].Header
	if h.Get("Idempotency-Key") != key || h.Get("webhook-id") != key {
		t.Errorf("Idempotency-Key %q, webhook-id %q; want both %q", h.Get("Idempotency-Key"), h.Get("webhook-id"), key)
	}
	secret, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(testSecret, "whsec_"))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(key + "." + h.Get("webhook-timestamp") + "." + want))
	if sig := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)); h.Get("webhook-signature") != sig {
		t.Errorf("webhook-signature = %q, want %q", h.Get("webhook-signature"), sig)
	}

	status, body = post(t, m.Addr(), "brightpattern", readExample(t))
	if status != http.StatusOK || body["duplicate"] != true || body["id"] != float64(1) {
		t.Fatalf("second POST = %d %v, want 200 {id:1, duplicate:true}", status, body)
	}
	// The CRM has the record a moment before the outbox records the
	// attempt: wait for that, then check there is exactly one delivery.
	var ds []outbox.Delivery
	waitFor(t, "the delivery to be recorded", func() bool {
		ds, _ = m.DB.List(context.Background(), outbox.Filter{})
		return len(ds) > 0 && ds[0].State == outbox.StateDelivered
	})
	if len(ds) != 1 || ds[0].Attempts != 1 {
		t.Fatalf("deliveries = %+v, want one, delivered in one attempt", ds)
	}
	time.Sleep(100 * time.Millisecond) // a second delivery would have started by now
	if n := len(crm.Requests()); n != 1 {
		t.Fatalf("CRM received %d requests, want 1", n)
	}
}

func TestServe_InteractionEndIsStoredWithoutActivity(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	m := MustRunMain(t, writeConfig(t, t.TempDir(), crm.URL))
	ev := bytes.Replace(readExample(t), []byte("ON_SAVE_ACTIVITY_RECORD"), []byte("ON_INTERACTION_END"), 1)
	status, body := post(t, m.Addr(), "brightpattern", ev)
	if status != http.StatusAccepted || body["activities"] != float64(0) {
		t.Fatalf("POST ON_INTERACTION_END = %d %v, want 202 with 0 activities", status, body)
	}
	if n := countRows(t, m, "events"); n != 1 {
		t.Fatalf("events stored = %d, want 1", n)
	}
}

func TestServe_BadInputStoresNothing(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	m := MustRunMain(t, writeConfig(t, t.TempDir(), crm.URL))
	example := readExample(t)
	tests := []struct {
		name     string
		platform string
		body     []byte
		status   int
		msg      string
	}{
		{"MalformedJSON", "brightpattern", []byte(`{"event":`), 400, "malformed JSON"},
		{"NoInteractionID", "brightpattern", []byte(`{"event":"ON_SAVE_ACTIVITY_RECORD","data":{"type":"voice"}}`), 400, "data.interactionId"},
		{"WrongType", "brightpattern", []byte(`{"event":"ON_SAVE_ACTIVITY_RECORD","data":{"interactionId":7,"type":"voice"}}`), 400, "data.interactionId: want string, got number"},
		{"UnknownEvent", "brightpattern", []byte(`{"event":"ON_CALL_MUTED","data":{}}`), 422, `unknown event "ON_CALL_MUTED"`},
		{"TooLarge", "brightpattern", append(example[:len(example)-2], append(bytes.Repeat([]byte(" "), 1<<20), '}')...), 413, "larger than the limit of 1048576 bytes"},
		{"UnknownPlatform", "avaya", example, 404, `unknown platform "avaya" (known: brightpattern, five9, genesys)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, m.Addr(), tt.platform, tt.body)
			msg, _ := body["error"].(string)
			if status != tt.status || !strings.Contains(msg, tt.msg) {
				t.Errorf("POST = %d %q, want %d with %q", status, msg, tt.status, tt.msg)
			}
		})
	}
	if n := countRows(t, m, "events"); n != 0 {
		t.Errorf("%d events stored after rejected requests, want 0", n)
	}
}

func TestServe_MappingFailureKeepsEvent(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	dir := t.TempDir()
	path := writeConfig(t, dir, crm.URL)
	bad := strings.Replace(testMapping, `Notes       = 'notes'`, `Notes       = 'attached.missing.deeper'`, 1)
	if err := os.WriteFile(filepath.Join(dir, "mappings", "crm.toml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	m := MustRunMain(t, path)
	status, body := post(t, m.Addr(), "brightpattern", readExample(t))
	if status != http.StatusAccepted || !strings.Contains(body["mappingError"].(string), `rule "calls": field Notes`) {
		t.Fatalf("POST = %d %v, want 202 and the mapping error", status, body)
	}
	var state string
	if err := rawDB(t, m).QueryRow(`SELECT state FROM events`).Scan(&state); err != nil || state != "mapping_failed" {
		t.Fatalf("event state = %q, %v; want mapping_failed", state, err)
	}
}

func TestServe_Health(t *testing.T) {
	m := MustRunMain(t, writeConfig(t, t.TempDir(), connectortest.NewFakeCRM(t).URL))
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + m.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d, want 200", path, resp.StatusCode)
		}
	}
	m.DB.Close() // the database goes away
	resp, err := http.Get("http://" + m.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with the database closed = %d, want 503", resp.StatusCode)
	}
}

func rawDB(tb testing.TB, m *Main) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+m.Config.Store.Path+"?mode=ro")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func countRows(tb testing.TB, m *Main, table string) int {
	tb.Helper()
	var n int
	if err := rawDB(tb, m).QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}
