package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/access"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/dial"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/ingest"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/metrics"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/server"
	"github.com/ctibridge/ctibridge/connector/brightpattern"
	"github.com/ctibridge/ctibridge/connector/genesys/cometd"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// t0 is the tests' fixed "now", far from any day the tests run on.
var t0 = time.Date(2001, 2, 3, 9, 0, 0, 0, time.UTC)

// callMapping maps every Bright Pattern call to one activity for "crm".
const callMapping = `
[[rule]]
name   = "calls"
target = "crm"
object = "Task"
when   = 'channel == "voice"'

[rule.fields]
Subject = '"Call from " + ani'
`

// exampleID is the interactionId of the example event.
const exampleID = "7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D"

// fixture is a Server open on loopback with what it serves from.
type fixture struct {
	*server.Server
	url string

	mu       sync.Mutex
	notified []string
}

func (f *fixture) notifiedTargets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.notified...)
}

// open starts a Server on 127.0.0.1:0 with a real outbox, the Bright
// Pattern decoder and a mapping set of one rule; edit adjusts its fields
// before Open.
func open(t testing.TB, edit func(*server.Server)) *fixture {
	t.Helper()
	db := outbox.NewDB(filepath.Join(t.TempDir(), "outbox.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := &mapping.Store{Fixed: []mapping.File{{Name: "crm.toml", Data: []byte(callMapping)}},
		Options: mapping.Options{Targets: []string{"crm"}}}
	if _, err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	targets := func() map[string]outbox.TargetStatus {
		return map[string]outbox.TargetStatus{"crm": {Breaker: outbox.BreakerClosed}}
	}
	noGWS := func() *cometd.Status { return nil }
	m := metrics.New(metrics.Sources{DB: db, Targets: targets, Mappings: store.Status, GWS: noGWS})
	relay := &dial.Relay{StorePath: db.Path, KeyFile: db.Path + ".dial-key", Logger: logger}
	if err := relay.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	f := &fixture{}
	f.Server = &server.Server{
		Pipeline: &ingest.Pipeline{
			DB:       db,
			Decoders: map[string]ingest.Decoder{brightpattern.Platform: brightpattern.Decoder{}},
			Mappings: store.Current,
			Notify: func(target string) {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.notified = append(f.notified, target)
			},
			Logger:  logger,
			Now:     func() time.Time { return t0 },
			OnEvent: m.Event,
		},
		Dial:         relay,
		DB:           db,
		Mappings:     store,
		Metrics:      m,
		Targets:      targets,
		GWS:          noGWS,
		MaxBodyBytes: 64 << 10,
		MaxInFlight:  4,
		Logger:       logger,
		Now:          func() time.Time { return t0 },
	}
	if edit != nil {
		edit(f.Server)
	}
	if err := f.Open("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(context.Background()) })
	f.url = "http://" + f.Addr()
	return f
}

func readExample(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../../../../examples/events/brightpattern-call.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// do sends a request and returns its status, headers and JSON body.
func do(t *testing.T, method, url string, body io.Reader, header http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if b, _ := io.ReadAll(resp.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, url, b, err)
		}
	}
	return resp.StatusCode, resp.Header, out
}

func postEvent(t *testing.T, f *fixture, platform string, body []byte) (int, http.Header, map[string]any) {
	t.Helper()
	return do(t, http.MethodPost, f.url+"/v1/events/"+platform, bytes.NewReader(body), nil)
}

// deliveries lists the outbox's deliveries.
func deliveries(t *testing.T, db *outbox.DB) []outbox.Delivery {
	t.Helper()
	ds, err := db.List(context.Background(), outbox.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// metric returns the sample line of name{labels} in the server's /metrics,
// or "".
func metric(t *testing.T, f *fixture, sample string) string {
	t.Helper()
	resp, err := http.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		if strings.HasPrefix(sc.Text(), sample+" ") {
			return sc.Text()
		}
	}
	return ""
}

func TestEvents_AcceptedThenDuplicate(t *testing.T) {
	f := open(t, nil)
	status, _, body := postEvent(t, f, "brightpattern", readExample(t))
	if status != http.StatusAccepted || body["id"] != 1.0 || body["duplicate"] != false || body["activities"] != 1.0 {
		t.Fatalf("first post = %d %v, want 202 {id 1, duplicate false, activities 1}", status, body)
	}
	ds := deliveries(t, f.DB)
	if len(ds) != 1 || ds[0].Target != "crm" || ds[0].Key != "brightpattern:"+exampleID+":jane.doe:calls" || !ds[0].CreatedAt.Equal(t0) {
		t.Fatalf("outbox = %+v, want one delivery to crm of the call, created at t0", ds)
	}
	if got := f.notifiedTargets(); len(got) != 1 || got[0] != "crm" {
		t.Errorf("notified %v, want crm once", got)
	}

	status, _, body = postEvent(t, f, "brightpattern", readExample(t))
	if status != http.StatusOK || body["id"] != 1.0 || body["duplicate"] != true {
		t.Fatalf("second post = %d %v, want 200 {id 1, duplicate true}", status, body)
	}
	if n := len(deliveries(t, f.DB)); n != 1 {
		t.Errorf("after the duplicate the outbox has %d deliveries, want 1", n)
	}
	if got := f.notifiedTargets(); len(got) != 1 {
		t.Errorf("a duplicate notified targets again: %v", got)
	}
	for _, s := range []string{
		`ctibridge_events_total{outcome="accepted",platform="brightpattern"} 1`,
		`ctibridge_events_total{outcome="duplicate",platform="brightpattern"} 1`,
	} {
		if got := metric(t, f, s[:strings.LastIndexByte(s, ' ')]); got != s {
			t.Errorf("/metrics has %q, want %q", got, s)
		}
	}
}

func TestEvents_Refusals(t *testing.T) {
	f := open(t, func(s *server.Server) { s.MaxBodyBytes = 1 << 10 })
	tests := []struct {
		name, platform, body string
		want                 int
		inError              string // part of the error message
	}{
		{"unknown platform", "avaya", `{}`, http.StatusNotFound, "brightpattern"},
		{"body over max_body_bytes", "brightpattern", `{"event":"` + strings.Repeat("x", 2<<10) + `"}`,
			http.StatusRequestEntityTooLarge, "1024 bytes"},
		{"not JSON", "brightpattern", `not json`, http.StatusBadRequest, ""},
		{"unknown event", "brightpattern", `{"event":"ON_COFFEE_BREAK","data":{}}`, http.StatusUnprocessableEntity, "ON_COFFEE_BREAK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := postEvent(t, f, tt.platform, []byte(tt.body))
			msg, _ := body["error"].(string)
			if status != tt.want || msg == "" || !strings.Contains(msg, tt.inError) {
				t.Errorf("post = %d %v, want %d with an error naming %q", status, body, tt.want, tt.inError)
			}
		})
	}
	if ds := deliveries(t, f.DB); len(ds) != 0 {
		t.Errorf("refused posts left deliveries: %+v", ds)
	}
	evs, err := f.DB.Events(context.Background(), outbox.EventFilter{})
	if err != nil || len(evs) != 0 {
		t.Errorf("refused posts left events: %+v, %v", evs, err)
	}
	if got := metric(t, f, `ctibridge_events_total{outcome="refused",platform="brightpattern"}`); !strings.HasSuffix(got, " 1") {
		t.Errorf("the oversized post counted as %q, want refused 1", got)
	}
}

func TestEvents_SourceToken(t *testing.T) {
	f := open(t, func(s *server.Server) {
		s.Access = access.Sources{brightpattern.Platform: {Token: "bp-token", AllowedOrigins: []string{"https://crm.example"}}}
	})
	status, h, _ := postEvent(t, f, "brightpattern", readExample(t))
	if status != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
		t.Errorf("post without the token = %d, want 401 with WWW-Authenticate", status)
	}
	status, _, _ = do(t, http.MethodPost, f.url+"/v1/events/brightpattern", bytes.NewReader(readExample(t)),
		http.Header{"Authorization": {"Bearer bp-token"}, "Origin": {"https://evil.example"}})
	if status != http.StatusForbidden {
		t.Errorf("post from a foreign origin = %d, want 403", status)
	}
	if n := len(deliveries(t, f.DB)); n != 0 {
		t.Fatalf("refused posts stored %d deliveries", n)
	}
	status, h, _ = do(t, http.MethodPost, f.url+"/v1/events/brightpattern", bytes.NewReader(readExample(t)),
		http.Header{"Authorization": {"Bearer bp-token"}, "Origin": {"https://crm.example"}})
	if status != http.StatusAccepted || h.Get("Access-Control-Allow-Origin") != "https://crm.example" {
		t.Errorf("post with the token from the allowed origin = %d (CORS %q), want 202 readable by the page",
			status, h.Get("Access-Control-Allow-Origin"))
	}
	status, h, _ = do(t, http.MethodOptions, f.url+"/v1/events/brightpattern", nil, http.Header{"Origin": {"https://crm.example"}})
	if status != http.StatusNoContent || h.Get("Access-Control-Allow-Methods") != "POST" {
		t.Errorf("preflight = %d (%v), want 204 allowing POST", status, h)
	}
	if got := metric(t, f, `ctibridge_events_total{outcome="refused",platform="brightpattern"}`); !strings.HasSuffix(got, " 2") {
		t.Errorf("refusals counted as %q, want 2", got)
	}
}

func TestHealthzAndReadyz(t *testing.T) {
	f := open(t, nil)
	status, _, body := do(t, http.MethodGet, f.url+"/healthz", nil, nil)
	if status != http.StatusOK || body["status"] != "ok" {
		t.Errorf("/healthz = %d %v, want 200 {status: ok}", status, body)
	}

	resp, err := http.Get(f.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready server.Readiness
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || ready.Database != "ok" || ready.Mappings != "ok" ||
		ready.MappingStatus.Rules != 1 || ready.Targets["crm"].Breaker != outbox.BreakerClosed || ready.GWS != nil {
		t.Errorf("/readyz = %d %+v, want 200 with database and mappings ok, 1 rule, crm closed, no gws", resp.StatusCode, ready)
	}
}

func TestReadyz_NoMappingSet(t *testing.T) {
	f := open(t, func(s *server.Server) { s.Mappings = &mapping.Store{} }) // never loaded
	status, _, body := do(t, http.MethodGet, f.url+"/readyz", nil, nil)
	if status != http.StatusServiceUnavailable || body["mappings"] != "no mapping set loaded" || body["database"] != "ok" {
		t.Errorf("/readyz = %d %v, want 503 for mappings only", status, body)
	}
}

// TestReadyz_FailedReload: after a failed reload the previous mappings
// serve, so the daemon stays ready; /readyz, open to anyone who reaches
// the ingest port, says so without the error, which quotes mapping text,
// or the directory.
func TestReadyz_FailedReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "crm.toml")
	if err := os.WriteFile(file, []byte(callMapping), 0o644); err != nil {
		t.Fatal(err)
	}
	store := &mapping.Store{Dir: dir, Options: mapping.Options{Targets: []string{"crm"}}}
	if _, err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	f := open(t, func(s *server.Server) { s.Mappings = store })
	const customerText = "Maria Lopez +14155550142"
	if err := os.WriteFile(file, []byte(callMapping+"\nSubject = '\""+customerText+"\" +'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Reload(); err == nil || !strings.Contains(err.Error(), customerText) {
		t.Fatalf("reload of the broken file = %v, want an error quoting it", err)
	}
	resp, err := http.Get(f.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ready server.Readiness
	if err := json.Unmarshal(raw, &ready); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(ready.Mappings, "ok, but the last reload failed") ||
		ready.MappingStatus.Failures != 1 || ready.MappingStatus.LastErrorAt.IsZero() {
		t.Errorf("/readyz = %d %s, want 200 saying the last reload failed", resp.StatusCode, raw)
	}
	if strings.Contains(string(raw), customerText) || strings.Contains(string(raw), dir) {
		t.Errorf("/readyz shows the mapping error or directory: %s", raw)
	}
}

// TestStorageDown closes the outbox under the server: readiness fails, and
// a post is refused with 503 and Retry-After, so that it comes again.
func TestStorageDown(t *testing.T) {
	f := open(t, nil)
	if err := f.DB.Close(); err != nil {
		t.Fatal(err)
	}
	status, h, body := postEvent(t, f, "brightpattern", readExample(t))
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") != "5" {
		t.Errorf("post with the outbox closed = %d (Retry-After %q) %v, want 503 with Retry-After 5",
			status, h.Get("Retry-After"), body)
	}
	status, _, body = do(t, http.MethodGet, f.url+"/readyz", nil, nil)
	if status != http.StatusServiceUnavailable || body["database"] == "ok" || body["mappings"] != "ok" {
		t.Errorf("/readyz with the outbox closed = %d %v, want 503 naming the database", status, body)
	}
}

// TestEvents_BusyAnswers503 holds the only slot with a post whose body is
// still arriving: the next post is refused at once with 503 and
// Retry-After, and the held one is accepted once its body is complete.
func TestEvents_BusyAnswers503(t *testing.T) {
	f := open(t, func(s *server.Server) { s.MaxInFlight = 1 })
	example := readExample(t)
	body, slow := io.Pipe()
	first := make(chan int, 1)
	go func() {
		resp, err := http.Post(f.url+"/v1/events/brightpattern", "application/json", body)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	slow.Write(example[:10]) // the handler now holds the only slot, reading
	for deadline := time.Now().Add(10 * time.Second); f.InFlight() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow post never held the slot")
		}
	}

	status, h, resp := postEvent(t, f, "brightpattern", bytes.Replace(example, []byte(exampleID), []byte("other"), 1))
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" || !strings.Contains(resp["error"].(string), "max_in_flight") {
		t.Errorf("post while saturated = %d (Retry-After %q) %v, want 503, Retry-After 1, naming server.max_in_flight",
			status, h.Get("Retry-After"), resp)
	}
	if got := metric(t, f, `ctibridge_events_total{outcome="busy",platform="brightpattern"}`); !strings.HasSuffix(got, " 1") {
		t.Errorf("busy posts counted as %q, want 1", got)
	}
	slow.Write(example[10:])
	slow.Close()
	select {
	case code := <-first:
		if code != http.StatusAccepted {
			t.Fatalf("the slow post = %d, want 202", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the slow post did not finish")
	}
	if ds := deliveries(t, f.DB); len(ds) != 1 || !strings.Contains(ds[0].Key, exampleID) {
		t.Errorf("outbox = %+v, want only the slow post's delivery", ds)
	}
	if f.InFlight() != 0 {
		t.Errorf("InFlight = %d after every post ended, want 0", f.InFlight())
	}
}

// TestClose_EndsCommandStreams: Close must not wait its whole deadline for
// a bridge's open command stream.
func TestClose_EndsCommandStreams(t *testing.T) {
	f := open(t, nil)
	resp, err := http.Get(f.url + "/v1/agents/jane/commands")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("commands stream = %d %s, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for deadline := time.Now().Add(10 * time.Second); f.Dial.Connected("jane") != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stream never registered")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatalf("Close with a command stream open = %v, want nil", err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Errorf("the stream did not end cleanly: %v", err)
	}
}
