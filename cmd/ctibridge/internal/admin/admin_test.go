package admin_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/admin"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/ingest"
	"github.com/ctibridge/ctibridge/connector/brightpattern"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// t0 is the tests' fixed "now", far from any day the tests run on.
var t0 = time.Date(2001, 2, 3, 9, 0, 0, 0, time.UTC)

const adminToken = "admin-token-for-tests"

const callMapping = `
[[rule]]
name   = "calls"
target = "crm"
object = "Task"
when   = 'channel == "voice"'

[rule.fields]
Subject = '"Call from " + ani'
`

// fixture is an admin Server open on loopback over a real outbox.
type fixture struct {
	*admin.Server
	url  string
	logs *syncBuffer

	mu       sync.Mutex
	notified []string
}

func (f *fixture) takeNotified() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.notified
	f.notified = nil
	slices.Sort(n)
	return n
}

// open starts an admin Server on 127.0.0.1:0, its clock at "now"; edit
// adjusts its fields before Open.
func open(t *testing.T, now time.Time, edit func(*admin.Server)) *fixture {
	t.Helper()
	db := outbox.NewDB(filepath.Join(t.TempDir(), "outbox.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := &mapping.Store{Fixed: []mapping.File{{Name: "crm.toml", Data: []byte(callMapping)}},
		Options: mapping.Options{Targets: []string{"crm", "erp"}}}
	if _, err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	f := &fixture{logs: &syncBuffer{}}
	f.Server = &admin.Server{
		Token:   adminToken,
		DB:      db,
		Targets: []string{"crm", "erp"},
		Notify: func(target string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.notified = append(f.notified, target)
		},
		Mappings: store,
		Decoders: map[string]ingest.Decoder{brightpattern.Platform: brightpattern.Decoder{}},
		Logger:   slog.New(slog.NewTextHandler(f.logs, nil)),
		Now:      func() time.Time { return now },
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

// settle enqueues key for target at "at", claims it and records an
// attempt with outcome o; it returns the delivery's id.
func settle(t *testing.T, db *outbox.DB, target, key string, at time.Time, o outbox.Outcome) int64 {
	t.Helper()
	ctx := context.Background()
	ev := outbox.Event{Platform: "test", Key: key, Type: "END", ReceivedAt: at, Body: []byte(`{}`)}
	if _, err := db.Accept(ctx, ev, []outbox.NewDelivery{{Target: target, Key: key, Payload: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	msgs, err := db.Claim(ctx, target, 1, at, time.Minute)
	if err != nil || len(msgs) != 1 || msgs[0].Key != key {
		t.Fatalf("claim %s = %+v, %v; want only %s", target, msgs, err, key)
	}
	a := outbox.Attempt{Outcome: o, StartedAt: at, Status: 422, Error: "HTTP 422: REQUIRED_FIELD_MISSING"}
	if err := db.Record(ctx, msgs[0], a, at); err != nil {
		t.Fatal(err)
	}
	return msgs[0].ID
}

// call sends an admin request with the bearer token (none when token is
// empty) and extra headers, and returns its status, headers and JSON body.
func call(t *testing.T, method, url, token string, header http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json (body %q)", method, url, ct, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, url, b, err)
	}
	return resp.StatusCode, resp.Header, out
}

func state(t *testing.T, db *outbox.DB, id int64) outbox.Delivery {
	t.Helper()
	res, err := db.Show(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return res.Delivery
}

func TestGuard_TokenAndOrigin(t *testing.T) {
	f := open(t, t0, nil)
	stats := f.url + "/admin/api/stats"
	_, port, _ := net.SplitHostPort(f.Addr())
	tests := []struct {
		name, token, origin string
		want                int
	}{
		{"no token", "", "", http.StatusUnauthorized},
		{"wrong token", "admin-token-for-test", "", http.StatusUnauthorized},
		{"right token", adminToken, "", http.StatusOK},
		{"right token, foreign origin", adminToken, "http://evil.example", http.StatusForbidden},
		{"right token, https of our own address", adminToken, "https://" + f.Addr(), http.StatusForbidden},
		{"right token, own origin", adminToken, "http://" + f.Addr(), http.StatusOK},
		{"right token, own origin as localhost", adminToken, "http://localhost:" + port, http.StatusOK},
		{"no token, own origin", "", "http://" + f.Addr(), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h http.Header
			if tt.origin != "" {
				h = http.Header{"Origin": {tt.origin}}
			}
			status, hdr, body := call(t, http.MethodGet, stats, tt.token, h)
			if status != tt.want {
				t.Fatalf("GET stats = %d %v, want %d", status, body, tt.want)
			}
			if status != http.StatusOK {
				if msg, _ := body["error"].(string); msg == "" || strings.Contains(msg, adminToken) {
					t.Errorf("refusal %v: want an error that does not show the token", body)
				}
			}
			if status == http.StatusUnauthorized && !strings.Contains(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 with WWW-Authenticate %q, want Bearer", hdr.Get("WWW-Authenticate"))
			}
		})
	}
	if strings.Contains(f.logs.String(), adminToken) {
		t.Errorf("the log shows the admin token:\n%s", f.logs)
	}
}

func TestStats(t *testing.T) {
	now := t0.Add(time.Hour)
	f := open(t, now, nil)
	settle(t, f.DB, "crm", "delivered", t0, outbox.OutcomeDelivered)
	settle(t, f.DB, "crm", "dead", t0, outbox.OutcomeDead)
	settle(t, f.DB, "erp", "retrying", t0, outbox.OutcomeRetry)

	status, _, body := call(t, http.MethodGet, f.url+"/admin/api/stats", adminToken, nil)
	if status != http.StatusOK || body["dead"] != 1.0 || body["events"] != 3.0 {
		t.Fatalf("stats = %d %v, want 200 with 1 dead of 3 events", status, body)
	}
	targets, _ := body["targets"].([]any)
	if len(targets) != 2 {
		t.Fatalf("stats targets = %v, want crm and erp", body["targets"])
	}
	crm, erp := targets[0].(map[string]any), targets[1].(map[string]any)
	if crm["target"] != "crm" || crm["delivered"] != 1.0 || crm["dead"] != 1.0 {
		t.Errorf("crm stats = %v, want 1 delivered, 1 dead", crm)
	}
	// The retrying delivery was created at t0; the admin clock reads t0+1h.
	if erp["target"] != "erp" || erp["retrying"] != 1.0 || erp["oldestWaitingSeconds"] != 3600.0 {
		t.Errorf("erp stats = %v, want 1 retrying, oldest waiting 3600 s", erp)
	}
}

func TestRetry_DeadDeliveryNotifiesItsTarget(t *testing.T) {
	now := t0.Add(time.Hour)
	f := open(t, now, nil)
	dead := settle(t, f.DB, "erp", "dead", t0, outbox.OutcomeDead)
	delivered := settle(t, f.DB, "crm", "delivered", t0, outbox.OutcomeDelivered)
	retry := func(id string) (int, map[string]any) {
		status, _, body := call(t, http.MethodPost, f.url+"/admin/api/deliveries/"+id+"/retry", adminToken, nil)
		return status, body
	}

	status, body := retry(strconv.FormatInt(dead, 10))
	if status != http.StatusOK || body["retried"] != 1.0 || body["target"] != "erp" || body["id"] != float64(dead) {
		t.Fatalf("retry of the dead delivery = %d %v, want 200 {retried 1, target erp}", status, body)
	}
	if got := f.takeNotified(); !slices.Equal(got, []string{"erp"}) {
		t.Errorf("notified %v, want erp", got)
	}
	if d := state(t, f.DB, dead); d.State != outbox.StateRetrying || !d.NextAttemptAt.Equal(now) {
		t.Errorf("retried delivery = %s, next at %v; want retrying, due at %v", d.State, d.NextAttemptAt, now)
	}

	for _, tt := range []struct {
		id   string
		want int
	}{
		{strconv.FormatInt(delivered, 10), http.StatusConflict},
		{"999", http.StatusNotFound},
		{"abc", http.StatusBadRequest},
	} {
		if status, body := retry(tt.id); status != tt.want || body["error"] == nil {
			t.Errorf("retry of %s = %d %v, want %d with an error", tt.id, status, body, tt.want)
		}
	}
	if got := f.takeNotified(); len(got) != 0 {
		t.Errorf("refused retries notified %v", got)
	}
	if d := state(t, f.DB, delivered); d.State != outbox.StateDelivered {
		t.Errorf("the delivered delivery is now %s", d.State)
	}
}

func TestRetryDead(t *testing.T) {
	f := open(t, t0.Add(time.Hour), nil)
	crmDead := settle(t, f.DB, "crm", "crm-dead", t0, outbox.OutcomeDead)
	erpDead := settle(t, f.DB, "erp", "erp-dead", t0, outbox.OutcomeDead)

	status, _, body := call(t, http.MethodPost, f.url+"/admin/api/deliveries/retry-dead?target=erp", adminToken, nil)
	if status != http.StatusOK || body["retried"] != 1.0 {
		t.Fatalf("retry-dead of erp = %d %v, want 200 {retried 1}", status, body)
	}
	if got := f.takeNotified(); !slices.Equal(got, []string{"erp"}) {
		t.Errorf("retry-dead of erp notified %v, want erp", got)
	}
	if state(t, f.DB, crmDead).State != outbox.StateDead || state(t, f.DB, erpDead).State != outbox.StateRetrying {
		t.Error("retry-dead of erp did not move only erp's dead delivery")
	}

	status, _, body = call(t, http.MethodPost, f.url+"/admin/api/deliveries/retry-dead", adminToken, nil)
	if status != http.StatusOK || body["retried"] != 1.0 {
		t.Fatalf("retry-dead = %d %v, want 200 {retried 1}", status, body)
	}
	if got := f.takeNotified(); !slices.Equal(got, []string{"crm", "erp"}) {
		t.Errorf("retry-dead of every target notified %v, want crm and erp", got)
	}
}

func TestPurge(t *testing.T) {
	f := open(t, t0.Add(48*time.Hour), nil)
	old := settle(t, f.DB, "crm", "old", t0, outbox.OutcomeDelivered)
	recent := settle(t, f.DB, "crm", "recent", t0.Add(36*time.Hour), outbox.OutcomeDelivered)
	dead := settle(t, f.DB, "crm", "dead", t0, outbox.OutcomeDead)

	status, _, body := call(t, http.MethodPost, f.url+"/admin/api/purge?older_than=24h", adminToken, nil)
	if status != http.StatusOK || body["purged"] != 1.0 {
		t.Fatalf("purge = %d %v, want 200 {purged 1}", status, body)
	}
	if _, err := f.DB.Show(context.Background(), old); err == nil {
		t.Error("the delivery delivered 48h ago is still there")
	}
	for _, id := range []int64{recent, dead} {
		if _, err := f.DB.Show(context.Background(), id); err != nil {
			t.Errorf("delivery %d: %v; only delivered rows older than 24h may go", id, err)
		}
	}
	for _, v := range []string{"", "-1h", "0s", "soon"} {
		status, _, body := call(t, http.MethodPost, f.url+"/admin/api/purge?older_than="+v, adminToken, nil)
		if msg, _ := body["error"].(string); status != http.StatusBadRequest || !strings.Contains(msg, "older_than") {
			t.Errorf("purge older_than=%q = %d %v, want 400 naming older_than", v, status, body)
		}
	}
}

func TestListAndShow(t *testing.T) {
	f := open(t, t0, nil)
	dead := settle(t, f.DB, "crm", "dead", t0, outbox.OutcomeDead)
	settle(t, f.DB, "crm", "delivered", t0, outbox.OutcomeDelivered)

	status, _, body := call(t, http.MethodGet, f.url+"/admin/api/deliveries?state=dead", adminToken, nil)
	ds, _ := body["deliveries"].([]any)
	if status != http.StatusOK || len(ds) != 1 || ds[0].(map[string]any)["key"] != "dead" {
		t.Fatalf("list of dead = %d %v, want only the dead delivery", status, body)
	}
	status, _, body = call(t, http.MethodGet, f.url+"/admin/api/deliveries?target=nobody", adminToken, nil)
	if ds, ok := body["deliveries"].([]any); status != http.StatusOK || !ok || len(ds) != 0 {
		t.Errorf("list of no deliveries = %d %v, want 200 with an empty list", status, body)
	}
	for _, q := range []string{"state=lost", "limit=0", "limit=x"} {
		if status, _, _ := call(t, http.MethodGet, f.url+"/admin/api/deliveries?"+q, adminToken, nil); status != http.StatusBadRequest {
			t.Errorf("list ?%s = %d, want 400", q, status)
		}
	}

	status, _, body = call(t, http.MethodGet, f.url+"/admin/api/deliveries/"+strconv.FormatInt(dead, 10), adminToken, nil)
	d, _ := body["delivery"].(map[string]any)
	if status != http.StatusOK || d["state"] != "dead" || d["lastStatus"] != 422.0 {
		t.Errorf("show = %d %v, want the dead delivery with its last status 422", status, body)
	}
}

func TestUnknownRoutesAnswerJSON(t *testing.T) {
	f := open(t, t0, nil)
	status, _, body := call(t, http.MethodGet, f.url+"/admin/api/nothing", adminToken, nil)
	if msg, _ := body["error"].(string); status != http.StatusNotFound || !strings.Contains(msg, "/admin/api/nothing") {
		t.Errorf("unknown route = %d %v, want 404 naming the path", status, body)
	}
	status, _, body = call(t, http.MethodDelete, f.url+"/admin/api/stats", adminToken, nil)
	if msg, _ := body["error"].(string); status != http.StatusMethodNotAllowed || !strings.Contains(msg, "GET") {
		t.Errorf("DELETE stats = %d %v, want 405 naming GET", status, body)
	}
	// Unknown routes are behind the token too: they tell nothing.
	if status, _, _ := call(t, http.MethodGet, f.url+"/admin/api/nothing", "", nil); status != http.StatusUnauthorized {
		t.Errorf("unknown route without the token = %d, want 401", status)
	}
}

// TestTokenFile: without a configured token, Open generates one into a
// file only its owner reads, never logs it, and keeps it across restarts.
func TestTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctibridge.db.admin-token")
	f := open(t, t0, func(s *admin.Server) { s.Token, s.TokenFile = "", path })
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	if raw, err := hex.DecodeString(token); err != nil || len(raw) != 32 {
		t.Fatalf("token file holds %q, want 32 random bytes in hex", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode = %v, want 0600", fi.Mode().Perm())
	}
	if status, _, _ := call(t, http.MethodGet, f.url+"/admin/api/stats", token, nil); status != http.StatusOK {
		t.Errorf("stats with the generated token = %d, want 200", status)
	}
	if logs := f.logs.String(); strings.Contains(logs, token) || !strings.Contains(logs, path) {
		t.Errorf("the log should name the token file, never the token:\n%s", logs)
	}
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	again := open(t, t0, func(s *admin.Server) { s.Token, s.TokenFile = "", path })
	if status, _, _ := call(t, http.MethodGet, again.url+"/admin/api/stats", token, nil); status != http.StatusOK {
		t.Errorf("stats with the token after a restart = %d, want 200: the token must be kept", status)
	}
}

func TestOpen_AddressTaken(t *testing.T) {
	f := open(t, t0, nil)
	s := &admin.Server{Token: adminToken, DB: f.DB, Logger: slog.New(slog.DiscardHandler)}
	if err := s.Open(f.Addr()); err == nil {
		s.Close(context.Background())
		t.Fatalf("Open on %s, already taken = nil, want an error", f.Addr())
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
