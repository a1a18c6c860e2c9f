package dial

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/access"
	"github.com/ctibridge/ctibridge/connector"
)

// stream reads a Server-Sent Events response an event at a time.
type stream struct {
	resp  *http.Response
	lines chan string
}

func openStream(t *testing.T, url string, header http.Header) *stream {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if header != nil {
		req.Header = header
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	s := &stream{resp: resp, lines: make(chan string, 100)}
	go func() {
		defer close(s.lines)
		for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
			s.lines <- sc.Text()
		}
	}()
	return s
}

// next returns the next event's lines; ok is false at the end of the
// stream. It fails the test after timeout.
func (s *stream) next(t *testing.T, timeout time.Duration) (lines []string, ok bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, open := <-s.lines:
			if !open || l == "" {
				return lines, open
			}
			lines = append(lines, l)
		case <-deadline:
			t.Fatalf("no event within %v (got %q)", timeout, lines)
		}
	}
}

// nextDial returns the next dial event's id line and data, skipping
// comments; ok is false when none comes within timeout.
func (s *stream) nextDial(timeout time.Duration) (seq string, data map[string]any, ok bool) {
	deadline := time.After(timeout)
	var lines []string
	for {
		select {
		case l, open := <-s.lines:
			if !open {
				return "", nil, false
			}
			if l != "" {
				lines = append(lines, l)
				continue
			}
			if len(lines) == 3 && lines[1] == "event: dial" {
				_ = json.Unmarshal([]byte(strings.TrimPrefix(lines[2], "data: ")), &data)
				return strings.TrimPrefix(lines[0], "id: "), data, true
			}
			lines = nil
		case <-deadline:
			return "", nil, false
		}
	}
}

// relayEnv is a relay on a loopback server, with its store in a temporary
// SQLite file.
type relayEnv struct {
	rl  *Relay
	srv *httptest.Server
	dir string
}

func newRelay(t *testing.T, dir string, set func(*Relay)) *relayEnv {
	t.Helper()
	rl := &Relay{
		Access:      access.Sources{"five9": {Token: "tok", AllowedOrigins: []string{"https://crm.example"}}},
		Numbers:     Numbers{Region: "US", Extension: regexp.MustCompile(`^[0-9]{3,5}$`)},
		AckTimeout:  300 * time.Millisecond,
		ExpireAfter: 5 * time.Second,
		LinkWindow:  10 * time.Minute,
		StorePath:   filepath.Join(dir, "ctibridge.db"),
		KeyFile:     filepath.Join(dir, "ctibridge.db.dial-key"),
	}
	if set != nil {
		set(rl)
	}
	if err := rl.Open(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rl.Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.RegisterOnShutdown(rl.EndStreams)
	srv.Start()
	e := &relayEnv{rl: rl, srv: srv, dir: dir}
	t.Cleanup(e.stop)
	return e
}

func (e *relayEnv) stop() {
	e.rl.EndStreams()
	e.srv.Close()
	e.rl.Close()
}

var auth = http.Header{"Authorization": {"Bearer tok"}}

func (e *relayEnv) stream(t *testing.T, agent, lastID string) *stream {
	t.Helper()
	h := auth.Clone()
	if lastID != "" {
		h.Set("Last-Event-ID", lastID)
	}
	s := openStream(t, e.srv.URL+"/v1/agents/"+agent+"/commands", h)
	s.next(t, 5*time.Second) // retry and "connected"
	return s
}

func (e *relayEnv) post(t *testing.T, path, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	req.Header = auth.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

func (e *relayEnv) dial(t *testing.T, agent, to string) string {
	t.Helper()
	status, out, _ := e.post(t, "/v1/dial", fmt.Sprintf(`{"agent":%q,"to":%q,"object":{"type":"Contact","id":"003X"}}`, agent, to))
	if status != http.StatusAccepted {
		t.Fatalf("POST /v1/dial = %d %v, want 202", status, out)
	}
	return out["id"].(string)
}

func (e *relayEnv) state(t *testing.T, id string) Command {
	t.Helper()
	c, ok, err := e.rl.Status(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("status of %s: %v, found %v", id, err, ok)
	}
	return c
}

// TestNormalize: numbers become E.164, extensions pass, the rest is
// refused with a reason.
func TestNormalize(t *testing.T) {
	n := Numbers{Region: "US", Extension: regexp.MustCompile(`^[0-9]{3,5}$`)}
	for _, tt := range []struct{ in, want, err string }{
		{"+1 (415) 555-0100", "+14155550100", ""},
		{"(415) 555-0100", "+14155550100", ""},
		{"tel:+44 20 7946 0958", "+442079460958", ""},
		{"4711", "4711", ""},
		{"abc", "", "is not a phone number"},
		{"<script>alert(1)</script>", "", "is not a phone number"},
		{"1234567890123456789012", "", "too long"},
		{"+1 415 555", "", "cannot be dialed"},
		{"", "", "no number"},
	} {
		got, err := n.Normalize(tt.in)
		if got != tt.want || (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("Normalize(%q) = %q, %v; want %q, error with %q", tt.in, got, err, tt.want, tt.err)
		}
	}
	if _, err := (Numbers{}).Normalize("415 555 0100"); err == nil || !strings.Contains(err.Error(), "mapping.default_region") {
		t.Errorf("a national number without a default region: %v, want an error naming mapping.default_region", err)
	}
}

// TestLimiter: four dials a minute, then every dial is refused for the
// quarantine, after which the bucket has refilled.
func TestLimiter(t *testing.T) {
	l := newLimiter(4, 30*time.Second)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 4 {
		if ok, _ := l.allow("jdoe", t0.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("dial %d refused", i+1)
		}
	}
	if ok, wait := l.allow("jdoe", t0.Add(4*time.Second)); ok || wait != 30*time.Second {
		t.Fatalf("fifth dial = %v, wait %v; want refused for 30s", ok, wait)
	}
	if ok, wait := l.allow("jdoe", t0.Add(20*time.Second)); ok || wait != 14*time.Second {
		t.Fatalf("dial in quarantine = %v, wait %v; want refused for the 14s left", ok, wait)
	}
	if ok, _ := l.allow("other", t0.Add(20*time.Second)); !ok {
		t.Fatal("another agent's dial refused")
	}
	if ok, _ := l.allow("jdoe", t0.Add(35*time.Second)); !ok {
		t.Fatal("dial after the quarantine refused")
	}
	if ok, _ := newLimiter(0, 0).allow("jdoe", t0); !ok {
		t.Fatal("no limit refused a dial")
	}
}

func TestAgentCookie(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v := signAgent(key, "jane.doe", t0.Add(time.Hour))
	if a, ok := verifyAgent(key, v, t0); !ok || a != "jane.doe" {
		t.Fatalf("verify = %q %v", a, ok)
	}
	if _, ok := verifyAgent(key, v, t0.Add(2*time.Hour)); ok {
		t.Error("an expired cookie verified")
	}
	if _, ok := verifyAgent([]byte("another key, long enough for it.."), v, t0); ok {
		t.Error("a cookie signed with another key verified")
	}
	forged := signAgent(key, "jdoe", t0.Add(time.Hour))
	if _, ok := verifyAgent(key, strings.SplitN(forged, ".", 2)[0]+v[strings.Index(v, "."):], t0); ok {
		t.Error("a cookie with another agent's name verified")
	}
}

// TestRelay_OneTabDials: of two streams of an agent, only the newest gets
// the dial; a tab that takes it dials, any other tab is refused; the
// outcome is recorded.
func TestRelay_OneTabDials(t *testing.T) {
	// Long enough for the ack to come first however loaded the machine;
	// a taken dial offered again would be offered after it.
	e := newRelay(t, t.TempDir(), func(rl *Relay) { rl.AckTimeout = time.Second })
	old := e.stream(t, "jdoe", "")
	newest := e.stream(t, "jdoe", "")
	id := e.dial(t, "jdoe", "(415) 555-0100")
	_, data, ok := newest.nextDial(5 * time.Second)
	if !ok || data["id"] != id || data["to"] != "+14155550100" {
		t.Fatalf("newest stream got %v %v, want dial %s to +14155550100", data, ok, id)
	}
	if _, _, ok := old.nextDial(100 * time.Millisecond); ok {
		t.Fatal("the older stream got the dial too")
	}
	if status, out, _ := e.post(t, "/v1/dial/"+id+"/ack", `{"tab":"A"}`); status != http.StatusOK || out["dial"] != true {
		t.Fatalf("first ack = %d %v", status, out)
	}
	if status, _, _ := e.post(t, "/v1/dial/"+id+"/ack", `{"tab":"A"}`); status != http.StatusOK {
		t.Fatalf("the same tab's repeated ack = %d, want 200", status)
	}
	if status, _, _ := e.post(t, "/v1/dial/"+id+"/ack", `{"tab":"B"}`); status != http.StatusConflict {
		t.Fatalf("another tab's ack = %d, want 409", status)
	}
	if _, _, ok := old.nextDial(e.rl.AckTimeout + 500*time.Millisecond); ok {
		t.Fatal("a taken dial was offered again")
	}
	if status, _, _ := e.post(t, "/v1/dial/"+id+"/outcome", `{"tab":"B","state":"dialing"}`); status != http.StatusConflict {
		t.Fatalf("outcome from a tab that did not take it = %d, want 409", status)
	}
	if status, _, _ := e.post(t, "/v1/dial/"+id+"/outcome", `{"tab":"A","state":"failed","reason":"no line"}`); status != http.StatusNoContent {
		t.Fatalf("outcome = %d, want 204", status)
	}
	if c := e.state(t, id); c.State != StateFailed || c.Reason != "no line" {
		t.Errorf("dial = %+v, want failed: no line", c)
	}
}

// TestRelay_UntakenDialMovesOn: a tab that does not take a dial in time
// loses it to the next tab; an agent with no stream gets 409.
func TestRelay_UntakenDialMovesOn(t *testing.T) {
	e := newRelay(t, t.TempDir(), nil)
	other := e.stream(t, "jdoe", "")
	frozen := e.stream(t, "jdoe", "")
	start := time.Now()
	id := e.dial(t, "jdoe", "+14155550100")
	if _, data, ok := frozen.nextDial(5 * time.Second); !ok || data["id"] != id {
		t.Fatal("the newest stream did not get the dial")
	}
	if _, data, ok := other.nextDial(5 * time.Second); !ok || data["id"] != id {
		t.Fatal("the dial did not move to the other stream")
	}
	if took := time.Since(start); took < e.rl.AckTimeout {
		t.Errorf("the dial moved %v after it was placed, before the ack timeout %v", took, e.rl.AckTimeout)
	}
	if status, out, _ := e.post(t, "/v1/dial", `{"agent":"nobody","to":"+14155550100"}`); status != http.StatusConflict ||
		!strings.Contains(out["error"].(string), "no desktop connected") {
		t.Errorf("dial for an agent without a stream = %d %v, want 409", status, out)
	}
}

// TestRelay_ReconnectAndRestart: a stream that reconnects with
// Last-Event-ID does not get again what it had; one without it gets what
// is still queued; a restarted daemon still has the queued dial, and
// gives up on it at its expiry.
func TestRelay_ReconnectAndRestart(t *testing.T) {
	dir := t.TempDir()
	e := newRelay(t, dir, func(rl *Relay) { rl.ExpireAfter = 8 * time.Second })
	s := e.stream(t, "jdoe", "")
	id := e.dial(t, "jdoe", "+14155550100")
	seq, _, ok := s.nextDial(5 * time.Second)
	if !ok {
		t.Fatal("no dial")
	}
	s.resp.Body.Close()
	waitFor(t, "the stream to go", func() bool { return e.rl.Connected("jdoe") == 0 })
	again := e.stream(t, "jdoe", seq)
	if _, _, ok := again.nextDial(200 * time.Millisecond); ok {
		t.Fatal("a stream that had the dial got it again after reconnecting")
	}
	again.resp.Body.Close()
	waitFor(t, "the stream to go", func() bool { return e.rl.Connected("jdoe") == 0 })

	e.stop() // the daemon stops with the dial queued
	e2 := newRelay(t, dir, func(rl *Relay) { rl.ExpireAfter = 8 * time.Second })
	fresh := e2.stream(t, "jdoe", "")
	if _, data, ok := fresh.nextDial(5 * time.Second); !ok || data["id"] != id {
		t.Fatalf("after the restart the queued dial did not come (%v)", data)
	}
	waitFor(t, "the dial to expire", func() bool { return e2.state(t, id).State == StateExpired })
	if status, _, _ := e2.post(t, "/v1/dial/"+id+"/ack", `{"tab":"late"}`); status != http.StatusGone {
		t.Errorf("ack of an expired dial = %d, want 410", status)
	}
}

// TestRelay_RateLimit: past the agent's limit, 429 with Retry-After.
func TestRelay_RateLimit(t *testing.T) {
	e := newRelay(t, t.TempDir(), func(rl *Relay) { rl.PerMinute, rl.Quarantine = 2, 30*time.Second })
	e.stream(t, "jdoe", "")
	e.dial(t, "jdoe", "+14155550100")
	e.dial(t, "jdoe", "+14155550100")
	status, out, h := e.post(t, "/v1/dial", `{"agent":"jdoe","to":"+14155550100"}`)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") != "30" || !strings.Contains(out["error"].(string), "limit of 2 dials a minute") {
		t.Errorf("third dial = %d %v Retry-After %q, want 429 for 30 s", status, out, h.Get("Retry-After"))
	}
	status, out, _ = e.post(t, "/v1/dial", `{"agent":"jdoe","to":"abc"}`)
	if status != http.StatusBadRequest || !strings.Contains(out["error"].(string), "is not a phone number") {
		t.Errorf("dial of abc = %d %v, want 400", status, out)
	}
}

// TestRelay_Page: GET /dial with the agent from the link, from the
// config's CRM user, or from the bridge's cookie; refusals say why.
func TestRelay_Page(t *testing.T) {
	e := newRelay(t, t.TempDir(), func(rl *Relay) { rl.Users = map[string]string{"005U": "jdoe"} })
	e.stream(t, "jdoe", "")
	get := func(query string, cookie *http.Cookie, referer string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/dial?"+query, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		if referer != "" {
			req.Header.Set("Referer", referer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		return resp.StatusCode, b.String()
	}
	// The bridge's session request sets the cookie.
	status, _, h := e.post(t, "/v1/agents/jdoe/session", ``)
	cookies := (&http.Response{Header: h}).Cookies()
	if status != http.StatusNoContent || len(cookies) != 1 || !cookies[0].HttpOnly {
		t.Fatalf("session = %d %v, want 204 and an HttpOnly cookie", status, cookies)
	}
	const crm = "https://crm.example/lightning/r/Contact/003X/view"
	for _, tt := range []struct {
		name, query string
		cookie      *http.Cookie
		referer     string
		status      int
		text        string
	}{
		{"Agent", "to=4155550100&object=Contact:003X&agent=jdoe&token=tok", nil, "", http.StatusAccepted, "data-id="},
		{"User", "to=4155550100&user=005U&token=tok", nil, "", http.StatusAccepted, "data-id="},
		{"Cookie", "to=4155550100&object=Case:500X", cookies[0], crm, http.StatusAccepted, "data-id="},
		{"CookieFromAnotherSite", "to=4155550100", cookies[0], "https://evil.example/", http.StatusForbidden, "https://evil.example are not accepted"},
		{"CookieWithoutReferer", "to=4155550100", cookies[0], "", http.StatusForbidden, "sends no Referer"},
		{"NoCredential", "to=4155550100&agent=jdoe", nil, crm, http.StatusUnauthorized, "not signed in"},
		{"ForgedCookie", "to=4155550100", &http.Cookie{Name: cookieName, Value: "amRvZQ.9999999999.AAAA"}, crm, http.StatusUnauthorized, "not signed in"},
		{"UnknownUser", "to=4155550100&user=005Z&token=tok", nil, "", http.StatusBadRequest, "mapped to no agent"},
		{"BadObject", "to=4155550100&object=003X&agent=jdoe&token=tok", nil, "", http.StatusBadRequest, "want Type:ID"},
		{"BadNumber", "to=%3Cscript%3E&agent=jdoe&token=tok", nil, "", http.StatusBadRequest, "is not a phone number"},
		{"NotConnected", "to=4155550100&agent=nobody&token=tok", nil, "", http.StatusConflict, "no desktop connected"},
	} {
		status, body := get(tt.query, tt.cookie, tt.referer)
		if status != tt.status || !strings.Contains(body, tt.text) {
			t.Errorf("%s: GET /dial?%s = %d, want %d with %q:\n%s", tt.name, tt.query, status, tt.status, tt.text, body)
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("%s: the page repeats the number unescaped", tt.name)
		}
	}
}

// TestLink: an outbound call without a record, of the agent, to the
// number dialed, within the window, gets the record clicked from.
func TestLink(t *testing.T) {
	e := newRelay(t, t.TempDir(), nil)
	s := e.stream(t, "jane.doe", "")
	status, out, _ := e.post(t, "/v1/dial", `{"agent":"jane.doe","to":"+14155550100","object":{"type":"Case","id":"500X","name":"Broken","isWhat":true}}`)
	if status != http.StatusAccepted {
		t.Fatalf("dial = %d %v", status, out)
	}
	id := out["id"].(string)
	if _, _, ok := s.nextDial(5 * time.Second); !ok {
		t.Fatal("no dial")
	}
	start := time.Now().Add(2 * time.Second)
	call := func(agent, phone string, start time.Time) *connector.Interaction {
		in := &connector.Interaction{Direction: connector.DirectionOutbound, DNIS: phone, Agent: connector.Agent{ID: agent}, Start: &start}
		e.rl.Link(context.Background(), in)
		return in
	}
	if in := call("jane.doe", "+14155550100", start); in.What != nil {
		t.Fatal("a dial no tab took linked a call")
	}
	if status, _, _ := e.post(t, "/v1/dial/"+id+"/ack", `{"tab":"A"}`); status != http.StatusOK {
		t.Fatal("ack refused")
	}
	if in := call("jane.doe", "4155550100", start); in.What == nil || in.What.ID != "500X" || in.Who != nil {
		t.Errorf("linked call: who %v what %v, want what Case 500X", in.Who, in.What)
	}
	for name, in := range map[string]*connector.Interaction{
		"OtherAgent":  call("jdoe", "+14155550100", start),
		"OtherNumber": call("jane.doe", "+14155550101", start),
		"TooLate":     call("jane.doe", "+14155550100", start.Add(11*time.Minute)),
	} {
		if in.What != nil {
			t.Errorf("%s: linked to %v", name, in.What)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestCommands_StreamOutlivesServerTimeouts runs the stream on a server
// with short read and write timeouts, as a production server may have: the
// stream clears them, and heartbeats keep it going.
func TestCommands_StreamOutlivesServerTimeouts(t *testing.T) {
	rl := &Relay{Access: access.Sources{}, StorePath: filepath.Join(t.TempDir(), "db"), heartbeat: 50 * time.Millisecond}
	rl.KeyFile = rl.StorePath + ".key"
	if err := rl.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rl.Close() })
	mux := http.NewServeMux()
	rl.Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Config.RegisterOnShutdown(rl.EndStreams)
	srv.Start()
	t.Cleanup(srv.Close)

	s := openStream(t, srv.URL+"/v1/agents/jdoe/commands", nil)
	s.next(t, 5*time.Second)
	pings := 0
	for start := time.Now(); time.Since(start) < time.Second; {
		lines, ok := s.next(t, 2*time.Second)
		if !ok {
			t.Fatalf("the stream ended after %v, with %d heartbeats", time.Since(start), pings)
		}
		if len(lines) == 1 && lines[0] == ": ping" {
			pings++
		}
	}
	if pings < 5 {
		t.Errorf("%d heartbeats in a second at a 50ms interval", pings)
	}
	if _, err := rl.Place(context.Background(), Request{Agent: "jdoe", To: "+14155550100"}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.nextDial(2 * time.Second); !ok {
		t.Fatal("no dial after a second of heartbeats")
	}
}

// TestRelay_ConcurrentAcks: many tabs acking one dial at once; exactly one
// wins.
func TestRelay_ConcurrentAcks(t *testing.T) {
	e := newRelay(t, t.TempDir(), nil)
	e.stream(t, "jdoe", "")
	id := e.dial(t, "jdoe", "+14155550100")
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 8 {
		wg.Go(func() {
			status, _, _ := e.post(t, "/v1/dial/"+id+"/ack", fmt.Sprintf(`{"tab":"T%d"}`, i))
			if status == http.StatusOK {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d tabs took the dial, want 1", won)
	}
}

// TestStore_Purge: a dial older than a day is deleted by a later insert.
func TestStore_Purge(t *testing.T) {
	s, err := openStore(filepath.Join(t.TempDir(), "db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close() })
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, at := range []time.Time{t0, t0.Add(time.Minute), t0.Add(25 * time.Hour)} {
		if err := s.insert(ctx, &Command{ID: fmt.Sprint(i), Agent: "a", To: "+14155550100", Created: at}); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]bool{"0": false, "1": false, "2": true} {
		if _, ok, err := s.get(ctx, id); err != nil || ok != want {
			t.Errorf("dial %s kept = %v (%v), want %v", id, ok, err, want)
		}
	}
}
