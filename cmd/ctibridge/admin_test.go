package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// testKey is the idempotency key of the activity readExample's call makes.
var testKey = callKey("7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D")

// writeAdminConfig writes a config delivering to crmURL with the admin API
// on 127.0.0.1:0, with token when it is not empty (else the daemon
// generates one), and returns its path.
func writeAdminConfig(tb testing.TB, dir, crmURL, token string) string {
	tb.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "mappings"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mappings", "crm.toml"), []byte(testMapping), 0o644); err != nil {
		tb.Fatal(err)
	}
	cfg := `
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"
`
	if token != "" {
		cfg += `token = "` + token + `"
`
	}
	cfg += `
[store]
path = "` + filepath.Join(dir, "ctibridge.db") + `"

[mapping]
dir = "` + filepath.Join(dir, "mappings") + `"

[targets.crm]
type = "webhook"
url = "` + crmURL + `"
timeout = "2s"
`
	path := filepath.Join(dir, "ctibridge.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// adminRequest is a request to the admin API; the zero Header sends none.
type adminRequest struct {
	Method, Path string
	Token        string // sent as a bearer token when not empty
	Header       map[string]string
}

// adminDo sends req to m's admin API and returns the status and the JSON
// body, failing the test if the body is not JSON.
func adminDo(tb testing.TB, m *Main, req adminRequest) (int, map[string]any) {
	tb.Helper()
	r, err := http.NewRequest(cmpOr(req.Method, "GET"), "http://"+m.AdminAddr()+req.Path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if req.Token != "" {
		r.Header.Set("Authorization", "Bearer "+req.Token)
	}
	for k, v := range req.Header {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatalf("%s %s: body %q is not a JSON object: %v", r.Method, req.Path, b, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("%s %s: Content-Type %q, want application/json", r.Method, req.Path, ct)
	}
	return resp.StatusCode, out
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// waitState polls the admin API until delivery id is in state.
func waitState(tb testing.TB, m *Main, token string, id int, state string) map[string]any {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := adminDo(tb, m, adminRequest{Path: "/admin/api/deliveries/" + strconv.Itoa(id), Token: token})
		if d, _ := body["delivery"].(map[string]any); d != nil && d["state"] == state {
			return body
		}
		if time.Now().After(deadline) {
			tb.Fatalf("delivery %d never reached %s: %v", id, state, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a log sink that the daemon's goroutines and the test may
// use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAdmin_RefusesWithoutToken(t *testing.T) {
	m := MustRunMain(t, writeAdminConfig(t, t.TempDir(), connectortest.NewFakeCRM(t).URL, "t"))
	tests := []struct {
		name   string
		req    adminRequest
		status int
		msg    string
	}{
		{"NoToken", adminRequest{Path: "/admin/api/stats"}, 401, "admin token"},
		{"WrongToken", adminRequest{Path: "/admin/api/stats", Token: "tt"}, 401, "admin token"},
		{"NotBearer", adminRequest{Path: "/admin/api/stats", Header: map[string]string{"Authorization": "Basic dDp0"}}, 401, "admin token"},
		{"ForeignOrigin", adminRequest{Method: "POST", Path: "/admin/api/deliveries/retry-dead", Token: "t",
			Header: map[string]string{"Origin": "http://evil.example"}}, 403, `origin "http://evil.example" not allowed`},
		{"ForeignOriginSamePort", adminRequest{Path: "/admin/api/stats", Token: "t",
			Header: map[string]string{"Origin": "http://evil.example:" + portOf(m.AdminAddr())}}, 403, "not allowed"},
		{"ReboundOrigin", adminRequest{Path: "/admin/api/stats", Token: "t", Header: map[string]string{
			"Host": "evil.example:" + portOf(m.AdminAddr()), "Origin": "http://evil.example:" + portOf(m.AdminAddr())}}, 403, "not allowed"},
		{"HTTPSOrigin", adminRequest{Path: "/admin/api/stats", Token: "t",
			Header: map[string]string{"Origin": "https://" + m.AdminAddr()}}, 403, "not allowed"},
		{"UnknownEndpoint", adminRequest{Path: "/admin/api/nope", Token: "t"}, 404, "no admin endpoint GET /admin/api/nope"},
		{"WrongMethod", adminRequest{Method: "DELETE", Path: "/admin/api/stats", Token: "t"}, 405, "allowed: GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := adminDo(t, m, tt.req)
			msg, _ := body["error"].(string)
			if status != tt.status || !strings.Contains(msg, tt.msg) {
				t.Errorf("%s %s = %d %q, want %d with %q", cmpOr(tt.req.Method, "GET"), tt.req.Path, status, msg, tt.status, tt.msg)
			}
		})
	}
	// The right token with the admin's own origin is let in.
	for _, origin := range []string{"http://" + m.AdminAddr(), "http://localhost:" + portOf(m.AdminAddr())} {
		status, body := adminDo(t, m, adminRequest{Path: "/admin/api/stats", Token: "t", Header: map[string]string{"Origin": origin}})
		if status != 200 || body["events"] != float64(0) {
			t.Errorf("GET stats from %s = %d %v, want 200 with 0 events", origin, status, body)
		}
	}
}

func portOf(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

// TestAdmin_DeadDeliveryIsSeenAndRetried follows an operator: a CRM refuses
// a record (400), the delivery is dead at once with the CRM's message; the
// operator finds it, reads the CRM's answer, fixes the CRM side, and
// retries it through the API, which delivers it at once.
func TestAdmin_DeadDeliveryIsSeenAndRetried(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	const refusal = `{"message":"REQUIRED_FIELD_MISSING: Subject","errorCode":"REQUIRED_FIELD_MISSING"}`
	crm.Respond(func(connectortest.Request) connectortest.Response {
		return connectortest.Response{Status: 400, Body: refusal}
	})
	m := MustRunMain(t, writeAdminConfig(t, t.TempDir(), crm.URL, "t"))
	if status, _ := post(t, m.Addr(), "brightpattern", readExample(t)); status != http.StatusAccepted {
		t.Fatalf("POST event = %d, want 202", status)
	}
	shown := waitState(t, m, "t", 1, "dead")

	status, body := adminDo(t, m, adminRequest{Path: "/admin/api/deliveries?state=dead&target=crm", Token: "t"})
	list, _ := body["deliveries"].([]any)
	if status != 200 || len(list) != 1 {
		t.Fatalf("GET deliveries?state=dead = %d %v, want the one dead delivery", status, body)
	}
	if d := list[0].(map[string]any); d["key"] != testKey || !strings.Contains(d["lastError"].(string), "REQUIRED_FIELD_MISSING: Subject") ||
		d["lastStatus"] != float64(400) {
		t.Errorf("dead delivery = %v, want key %s with the CRM's message and status 400", d, testKey)
	}
	if _, body := adminDo(t, m, adminRequest{Path: "/admin/api/deliveries?state=delivered", Token: "t"}); len(body["deliveries"].([]any)) != 0 {
		t.Errorf("GET deliveries?state=delivered = %v, want none", body)
	}
	if status, body := adminDo(t, m, adminRequest{Path: "/admin/api/deliveries?state=lost", Token: "t"}); status != 400 ||
		!strings.Contains(body["error"].(string), `unknown state "lost"`) {
		t.Errorf("GET deliveries?state=lost = %d %v, want 400 naming the state", status, body)
	}

	attempts, _ := shown["attempts"].([]any)
	if len(attempts) != 1 {
		t.Fatalf("show = %v, want one attempt", shown)
	}
	a := attempts[0].(map[string]any)
	if a["responseBody"] != refusal || a["status"] != float64(400) || a["outcome"] != "dead" || a["attempt"] != float64(1) {
		t.Errorf("attempt = %v, want attempt 1, dead, 400 with the CRM's body", a)
	}
	if p, _ := shown["payload"].(map[string]any); p["key"] != testKey {
		t.Errorf("payload = %v, want the activity JSON with key %s", shown["payload"], testKey)
	}

	status, body = adminDo(t, m, adminRequest{Path: "/admin/api/stats", Token: "t"})
	targets, _ := body["targets"].([]any)
	if status != 200 || body["dead"] != float64(1) || body["events"] != float64(1) || body["mappingFailed"] != float64(0) ||
		len(targets) != 1 || targets[0].(map[string]any)["dead"] != float64(1) || targets[0].(map[string]any)["target"] != "crm" {
		t.Fatalf("stats = %d %v, want 1 event, 1 dead delivery to crm", status, body)
	}

	// The CRM is fixed; retrying through the API delivers at once.
	crm.Respond(func(connectortest.Request) connectortest.Response { return connectortest.Response{} })
	status, body = adminDo(t, m, adminRequest{Method: "POST", Path: "/admin/api/deliveries/1/retry", Token: "t"})
	if status != 200 || body["retried"] != float64(1) || body["target"] != "crm" {
		t.Fatalf("POST retry = %d %v, want 200 retried 1 of crm", status, body)
	}
	crm.WaitAccepted(t, 10*time.Second, testKey)
	shown = waitState(t, m, "t", 1, "delivered")
	if attempts, _ := shown["attempts"].([]any); len(attempts) != 2 || attempts[1].(map[string]any)["window"] != float64(2) {
		t.Errorf("after the retry, attempts = %v, want the dead one and the delivery in window 2", shown["attempts"])
	}

	for _, tt := range []struct {
		path   string
		status int
		msg    string
	}{
		{"/admin/api/deliveries/1/retry", 409, "delivery 1 is delivered, not dead"},
		{"/admin/api/deliveries/99/retry", 404, "delivery 99: not found"},
		{"/admin/api/deliveries/x/retry", 400, `invalid delivery ID "x"`},
		{"/admin/api/purge", 400, "older_than"},
	} {
		status, body := adminDo(t, m, adminRequest{Method: "POST", Path: tt.path, Token: "t"})
		if msg, _ := body["error"].(string); status != tt.status || !strings.Contains(msg, tt.msg) {
			t.Errorf("POST %s = %d %v, want %d with %q", tt.path, status, body, tt.status, tt.msg)
		}
	}
	if status, body := adminDo(t, m, adminRequest{Path: "/admin/api/deliveries/99", Token: "t"}); status != 404 {
		t.Errorf("GET deliveries/99 = %d %v, want 404", status, body)
	}
	if status, body := adminDo(t, m, adminRequest{Method: "POST", Path: "/admin/api/deliveries/retry-dead?target=crm", Token: "t"}); status != 200 ||
		body["retried"] != float64(0) {
		t.Errorf("POST retry-dead = %d %v, want 200 with 0 retried", status, body)
	}
	if status, body := adminDo(t, m, adminRequest{Method: "POST", Path: "/admin/api/purge?older_than=720h", Token: "t"}); status != 200 ||
		body["purged"] != float64(0) {
		t.Errorf("POST purge?older_than=720h = %d %v, want 0 purged: the delivery is recent", status, body)
	}
	time.Sleep(5 * time.Millisecond)
	if status, body := adminDo(t, m, adminRequest{Method: "POST", Path: "/admin/api/purge?older_than=1ms", Token: "t"}); status != 200 ||
		body["purged"] != float64(1) {
		t.Errorf("POST purge?older_than=1ms = %d %v, want the delivered row purged", status, body)
	}
}

// TestAdmin_RetryDeadDelivers checks POST retry-dead end to end.
func TestAdmin_RetryDeadDelivers(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	crm.Respond(func(connectortest.Request) connectortest.Response { return connectortest.Response{Status: 422} })
	m := MustRunMain(t, writeAdminConfig(t, t.TempDir(), crm.URL, "t"))
	post(t, m.Addr(), "brightpattern", readExample(t))
	waitState(t, m, "t", 1, "dead")
	crm.Respond(func(connectortest.Request) connectortest.Response { return connectortest.Response{} })
	status, body := adminDo(t, m, adminRequest{Method: "POST", Path: "/admin/api/deliveries/retry-dead", Token: "t"})
	if status != 200 || body["retried"] != float64(1) {
		t.Fatalf("POST retry-dead = %d %v, want 1 retried", status, body)
	}
	crm.WaitAccepted(t, 10*time.Second, testKey)
}

var hexToken = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestAdmin_GeneratedToken(t *testing.T) {
	dir := t.TempDir()
	path := writeAdminConfig(t, dir, connectortest.NewFakeCRM(t).URL, "")
	var logs syncBuffer
	start := func() *Main {
		t.Helper()
		cfg, err := config.Load(path, testEnviron)
		if err != nil {
			t.Fatal(err)
		}
		m := NewMain(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		if err := m.Open(); err != nil {
			m.Close(context.Background())
			t.Fatal(err)
		}
		return m
	}
	m := start()
	tokenFile := filepath.Join(dir, "ctibridge.db.admin-token")
	fi, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode = %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(tokenFile)
	token := strings.TrimSpace(string(b))
	if !hexToken.MatchString(token) {
		t.Fatalf("token = %q, want 64 hex digits (32 random bytes)", token)
	}
	if status, _ := adminDo(t, m, adminRequest{Path: "/admin/api/stats", Token: token}); status != 200 {
		t.Errorf("GET stats with the generated token = %d, want 200", status)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	m = start() // a restart keeps the token
	defer m.Close(context.Background())
	if b2, _ := os.ReadFile(tokenFile); string(b2) != string(b) {
		t.Errorf("token file after restart = %q, want it unchanged %q", b2, b)
	}
	if status, _ := adminDo(t, m, adminRequest{Path: "/admin/api/stats", Token: token}); status != 200 {
		t.Errorf("GET stats with the first start's token after restart = %d, want 200", status)
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the log contains the token:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "token_file="+tokenFile) {
		t.Errorf("the log does not say where the token is:\n%s", logs.String())
	}
}

func TestAdmin_ListenerTaken(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	first := MustRunMain(t, writeAdminConfig(t, t.TempDir(), crm.URL, "t"))
	cfg, err := config.Load(writeAdminConfig(t, t.TempDir(), crm.URL, "t"), testEnviron)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Admin.Listen = first.AdminAddr()
	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	err = m.Open()
	m.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "admin listen") {
		t.Fatalf("Open with the admin port taken = %v, want an admin listen error", err)
	}
}
