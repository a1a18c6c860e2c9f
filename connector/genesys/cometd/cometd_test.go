package cometd_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/genesys/cometd"
	"github.com/ctibridge/ctibridge/connector/genesys/cometd/cometdtest"
)

const interactions = "/v2/me/interactions"

// received collects what a Handler was given.
type received struct {
	mu   sync.Mutex
	msgs []msg
}

type msg struct {
	channel string
	data    string
}

func (r *received) handle(ctx context.Context, channel string, data json.RawMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg{channel, string(data)})
	return nil
}

func (r *received) all() []msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func (r *received) len() int { return len(r.all()) }

// seqs returns the "seq" field of every message.
func (r *received) seqs(tb testing.TB) []int {
	tb.Helper()
	var out []int
	for _, m := range r.all() {
		var v struct{ Seq int }
		if err := json.Unmarshal([]byte(m.data), &v); err != nil {
			tb.Fatalf("message %s: %v", m.data, err)
		}
		out = append(out, v.Seq)
	}
	return out
}

// logBuffer is a log destination safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// open starts a client with cfg and closes it when the test ends.
func open(tb testing.TB, cfg cometd.Config) *cometd.Client {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = debugLogger(tbWriter{tb})
	}
	c := cometd.New(cfg)
	if err := c.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			tb.Error(err)
		}
	})
	return c
}

// tbWriter sends log lines to the test log.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// waitFor polls cond for at most 20 seconds.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recorder is a Transport that records each request's Bayeux channel,
// start and duration.
type recorder struct {
	mu    sync.Mutex
	calls []call
}

type call struct {
	channel string
	start   time.Time
	took    time.Duration
	err     error
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	var msgs []struct{ Channel string }
	_ = json.Unmarshal(body, &msgs)
	start := time.Now()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		// The server answers a held connect when it writes the body.
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body, err = io.NopCloser(bytes.NewReader(b)), rerr
	}
	r.mu.Lock()
	r.calls = append(r.calls, call{msgs[0].Channel, start, time.Since(start), err})
	r.mu.Unlock()
	return resp, err
}

func (r *recorder) of(channel string) []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []call
	for _, c := range r.calls {
		if channel == "" || c.channel == channel {
			out = append(out, c)
		}
	}
	return out
}

// TestCometD_HandshakeSubscribeReceive: the client handshakes, subscribes
// every channel and gets what is published on each, unchanged and in
// order, with Basic auth on its requests.
func TestCometD_HandshakeSubscribeReceive(t *testing.T) {
	srv := cometdtest.Start(t, cometdtest.Options{Timeout: time.Second, Auth: "agent7:pw"})
	var got received
	c := open(t, cometd.Config{URL: srv.URL, Username: "agent7", Password: "pw",
		Channels: []string{interactions, "/v2/me/calls"}, Handler: got.handle})
	srv.WaitSubscribed(interactions)
	srv.WaitSubscribed("/v2/me/calls")

	want := []msg{
		{interactions, `{"messageType":"InteractionStateChanged","interaction":{"id":"00001a","note":"a < b & c"}}`},
		{"/v2/me/calls", `{"seq":2}`},
		{interactions, `{"seq":3,"list":[1,2.5,null,true]}`},
	}
	for _, m := range want {
		if n := srv.Publish(m.channel, []byte(m.data)); n != 1 {
			t.Fatalf("published to %d subscribers, want 1", n)
		}
	}
	waitFor(t, "3 messages", func() bool { return got.len() >= 3 })
	if g := got.all(); !slices.Equal(g, want) {
		t.Errorf("got %q\nwant %q", g, want)
	}
	st := c.Status()
	if !st.Connected || st.State != "connected" || st.Handshakes != 1 || st.Received != 3 || st.LastConnect.IsZero() {
		t.Errorf("status = %+v", st)
	}
	stats := srv.Stats("")
	if stats.Meta["/meta/handshake"] != 1 || stats.Meta["/meta/subscribe"] != 2 {
		t.Errorf("server saw %v, want 1 handshake and 2 subscribes", stats.Meta)
	}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("agent7:pw"))
	for _, a := range stats.Auth {
		if a != wantAuth {
			t.Fatalf("a request came with Authorization %q, want %q", a, wantAuth)
		}
	}
}

// TestCometD_LongPollHeldForAdviceTimeout: the server holds each
// /meta/connect for its advice.timeout and the client waits for it, even
// though that is longer than RequestTimeout: the advice is added to it.
func TestCometD_LongPollHeldForAdviceTimeout(t *testing.T) {
	const hold = 1500 * time.Millisecond
	srv := cometdtest.Start(t, cometdtest.Options{Timeout: hold})
	rec := &recorder{}
	var got received
	c := open(t, cometd.Config{URL: srv.URL, Channels: []string{interactions}, Handler: got.handle,
		RequestTimeout: 500 * time.Millisecond, Transport: rec})
	// Count the connects the server held, as they complete: a held one
	// took about a hold (the lower bound is the server's doing; an upper
	// bound would only measure the machine's load).
	var connects []call
	held := 0
	deadline := time.Now().Add(20 * time.Second)
	for held < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		connects, held = rec.of("/meta/connect"), 0
		for _, cn := range connects {
			if cn.err == nil && cn.took >= hold-200*time.Millisecond {
				held++
			}
		}
	}
	for i, cn := range connects {
		if cn.err != nil {
			t.Errorf("connect %d failed after %v: %v", i+1, cn.took, cn.err)
		}
	}
	// Besides the held ones: the first connect, answered at once, and the
	// one outstanding. More would be a busy loop.
	if held < 2 || len(connects) > held+2 {
		t.Errorf("%d connects, %d held about %v: %+v", len(connects), held, hold, connects)
	}
	if st := c.Status(); !st.Connected || st.LastError != "" || st.Handshakes != 1 {
		t.Errorf("status = %+v", st)
	}
}

// TestCometD_ServerRestartResubscribes kills the server in the middle of a
// stream and starts a new one on the same port. The client gets
// 402::session_unknown, handshakes again and re-subscribes; every event
// published once it is subscribed again arrives, in order.
//
// Not expected: events published on the new server before the client
// re-subscribed (the server reports 0 subscribers for them; Bayeux drops
// them), and events a crashed server had queued. The test waits for
// everything published before the kill to arrive, so only the first kind
// occurs here.
func TestCometD_ServerRestartResubscribes(t *testing.T) {
	srv := cometdtest.Start(t, cometdtest.Options{Timeout: time.Second})
	var got received
	c := open(t, cometd.Config{URL: srv.URL, Channels: []string{interactions}, Handler: got.handle,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 250 * time.Millisecond})
	srv.WaitSubscribed(interactions)

	// A publisher numbers its events 1, 2, 3, ... and notes, for each, how
	// many subscribers the server had.
	var (
		pubMu     sync.Mutex
		expected  []int // published with a subscriber
		unheard   []int // published on the new server before re-subscription
		restarted bool
		afterSubs int // expected events on the new server
	)
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for seq := 1; ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			pubMu.Lock()
			n, err := srv.TryPublish(interactions, map[string]int{"seq": seq})
			switch {
			case err != nil:
				t.Errorf("publish %d: %v", seq, err)
			case n > 0:
				expected = append(expected, seq)
				if restarted {
					afterSubs++
				}
			default:
				unheard = append(unheard, seq)
			}
			pubMu.Unlock()
		}
	}()
	defer func() { close(stop); <-stopped }()

	waitFor(t, "10 events before the restart", func() bool { return got.len() >= 10 })
	var before int
	func() {
		pubMu.Lock() // the publisher waits
		defer pubMu.Unlock()
		waitFor(t, "every event published so far", func() bool { return got.len() == len(expected) })
		before = len(expected)
		srv.Restart(300 * time.Millisecond) // the held connect dies with the server
		restarted = true
	}()

	waitFor(t, "30 events after re-subscription", func() bool {
		pubMu.Lock()
		defer pubMu.Unlock()
		return afterSubs >= 30
	})
	close(stop)
	<-stopped
	stop = make(chan struct{}) // for the deferred close
	waitFor(t, "every expected event", func() bool { return got.len() >= len(expected) })
	time.Sleep(200 * time.Millisecond) // nothing more may come

	if g := got.seqs(t); !slices.Equal(g, expected) {
		t.Errorf("received %v\nwant     %v", g, expected)
	}
	st := c.Status()
	if st.Handshakes != 2 || !st.Connected || st.Dropped != 0 {
		t.Errorf("status = %+v, want 2 handshakes, connected", st)
	}
	if !strings.Contains(st.LastError, "402::session_unknown") && !strings.Contains(st.LastError, "connection refused") {
		t.Errorf("last error = %q, want the session loss or the refused connection", st.LastError)
	}
	meta := srv.Stats("").Meta
	if meta["/meta/handshake"] != 1 || meta["/meta/subscribe"] != 1 {
		t.Errorf("new server saw %v, want 1 handshake and 1 subscribe", meta)
	}
	t.Logf("%d events before the restart, %d after re-subscription; %d published before re-subscription (not expected): %v",
		before, afterSubs, len(unheard), unheard)
}

// TestCometD_HandlerErrorRetried: a message the handler fails on is given
// again before the stream goes on; one it always fails on is dropped after
// HandlerAttempts, counted, and the stream goes on.
func TestCometD_HandlerErrorRetried(t *testing.T) {
	srv := cometdtest.Start(t, cometdtest.Options{Timeout: time.Second})
	var (
		mu       sync.Mutex
		attempts = map[int]int{}
		order    []int
	)
	handler := func(ctx context.Context, channel string, data json.RawMessage) error {
		var v struct{ Seq int }
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		attempts[v.Seq]++
		order = append(order, v.Seq)
		switch {
		case v.Seq == 2 && attempts[2] <= 2:
			return errors.New("database is locked")
		case v.Seq == 4:
			return errors.New("disk I/O error")
		}
		return nil
	}
	logs := &logBuffer{}
	c := open(t, cometd.Config{URL: srv.URL, Channels: []string{interactions}, Handler: handler,
		HandlerAttempts: 3, HandlerBackoff: 20 * time.Millisecond, Logger: debugLogger(logs)})
	srv.WaitSubscribed(interactions)
	for seq := 1; seq <= 5; seq++ {
		srv.Publish(interactions, map[string]int{"seq": seq})
	}
	waitFor(t, "message 5", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return attempts[5] > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if want := []int{1, 2, 2, 2, 3, 4, 4, 4, 5}; !slices.Equal(order, want) {
		t.Errorf("handler calls %v, want %v", order, want)
	}
	if st := c.Status(); st.Dropped != 1 || st.Received != 5 {
		t.Errorf("status = %+v, want 5 received, 1 dropped", st)
	}
	if !strings.Contains(logs.String(), "message dropped") {
		t.Errorf("the dropped message was not logged:\n%s", logs)
	}
}

// TestCometD_CloseSendsDisconnect: Close does not wait for the held connect
// to time out: it sends /meta/disconnect, and messages the server still had
// queued reach the handler before Close returns.
func TestCometD_CloseSendsDisconnect(t *testing.T) {
	srv := cometdtest.Start(t, cometdtest.Options{Timeout: 20 * time.Second})
	inHandler := make(chan int, 10)
	release := make(chan struct{})
	var got received
	handler := func(ctx context.Context, channel string, data json.RawMessage) error {
		got.handle(ctx, channel, data)
		inHandler <- got.len()
		if got.len() == 1 {
			<-release
		}
		return nil
	}
	c := cometd.New(cometd.Config{URL: srv.URL, Channels: []string{interactions}, Handler: handler,
		Logger: debugLogger(tbWriter{t})})
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	srv.WaitSubscribed(interactions)

	// Idle: the connect is held for 20 s, yet Close is quick.
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v with a connect held", took)
	}
	if n := srv.Stats("").Meta["/meta/disconnect"]; n != 1 {
		t.Errorf("server got %d disconnects, want 1", n)
	}
	if st := c.Status(); st.State != "stopped" || st.Connected {
		t.Errorf("status after Close = %+v", st)
	}

	// Busy: message 2 is queued on the server while the handler holds
	// message 1; Close must still deliver it.
	c = cometd.New(cometd.Config{URL: srv.URL, Channels: []string{interactions}, Handler: handler,
		Logger: debugLogger(tbWriter{t})})
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second client's subscription", func() bool {
		return srv.Stats(interactions).Subscribers == 1 && c.Status().Connected
	})
	srv.Publish(interactions, map[string]int{"seq": 1})
	<-inHandler
	srv.Publish(interactions, map[string]int{"seq": 2})
	closed := make(chan error, 1)
	go func() { closed <- c.Close(ctx) }()
	time.Sleep(100 * time.Millisecond)
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if g := got.seqs(t); !slices.Equal(g, []int{1, 2}) {
		t.Errorf("received %v before Close returned, want [1 2]", g)
	}
	if n := srv.Stats("").Meta["/meta/disconnect"]; n != 2 {
		t.Errorf("server got %d disconnects in all, want 2", n)
	}
}

// TestCometD_BackoffBoundedWhenUnreachable: with nothing listening, the
// client retries with growing waits, never longer than BackoffMax, and
// never in a busy loop; Close ends the waiting at once.
func TestCometD_BackoffBoundedWhenUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	const lo, hi = 20 * time.Millisecond, 200 * time.Millisecond
	rec := &recorder{}
	var got received
	c := cometd.New(cometd.Config{URL: "http://" + addr + "/cometd", Channels: []string{interactions},
		Handler: got.handle, BackoffMin: lo, BackoffMax: hi, Transport: rec, Logger: debugLogger(io.Discard)})
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	start := time.Now()
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %v while backing off", took)
	}

	calls := rec.of("")
	// Waits of 10-20, 20-40, 40-80, 80-160, then 100-200 ms give 12 to 22
	// tries in 2 s on an idle machine; fewer when it is loaded. The bound on
	// each wait is TestCometD_Backoff's to check, on the pure function:
	// wall-clock gaps here would only measure the machine's load.
	if len(calls) < 5 || len(calls) > 25 {
		t.Errorf("%d tries in 2s, want 5 to 25: retrying, but not in a hot loop", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].channel != "/meta/handshake" || calls[i].err == nil {
			t.Errorf("try %d: %s, err %v", i, calls[i].channel, calls[i].err)
		}
	}
	st := c.Status()
	if st.Handshakes != 0 || !strings.Contains(st.LastError, "connection refused") || st.State != "stopped" {
		t.Errorf("status = %+v", st)
	}
}

// TestCometD_PasswordNeverLogged runs a refused handshake, an unreachable
// server with credentials in its URL and a working session with debug logs
// on: no password, nor the Authorization header, appears in the logs.
func TestCometD_PasswordNeverLogged(t *testing.T) {
	const (
		user  = "agent7"
		right = "right-PASSWORD-0x1"
		wrong = "wrong-PASSWORD-0x2"
		inURL = "url-PASSWORD-0x3"
	)
	srv := cometdtest.Start(t, cometdtest.Options{Timeout: time.Second, Auth: user + ":" + right})
	logs := &logBuffer{}
	var got received

	denied := cometd.New(cometd.Config{URL: srv.URL, Username: user, Password: wrong,
		Channels: []string{interactions}, Handler: got.handle, Logger: debugLogger(logs)})
	if err := denied.Open(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused client to stop", func() bool { return denied.Status().State == "stopped" })
	if st := denied.Status(); !strings.Contains(st.LastError, "403::handshake_denied") || st.Handshakes != 0 {
		t.Errorf("refused client status = %+v", st)
	}
	denied.Close(context.Background())

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	down := cometd.New(cometd.Config{URL: fmt.Sprintf("http://%s:%s@%s/cometd", user, inURL, addr),
		Channels: []string{interactions}, Handler: got.handle, Logger: debugLogger(logs),
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	if err := down.Open(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a logged failure", func() bool { return strings.Contains(logs.String(), "connection refused") })
	down.Close(context.Background())

	ok := open(t, cometd.Config{URL: srv.URL, Username: user, Password: right,
		Channels: []string{interactions}, Handler: got.handle, Logger: debugLogger(logs)})
	srv.WaitSubscribed(interactions)
	srv.Publish(interactions, map[string]int{"seq": 1})
	waitFor(t, "the message", func() bool { return got.len() == 1 })
	ok.Close(context.Background())

	out := logs.String()
	for _, secret := range []string{right, wrong, inURL,
		base64.StdEncoding.EncodeToString([]byte(user + ":" + right)),
		base64.StdEncoding.EncodeToString([]byte(user + ":" + wrong))} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs contain %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "cometd subscribed") || !strings.Contains(out, "cometd stopped") {
		t.Errorf("the logs miss the session's story:\n%s", out)
	}
}

// TestCometD_OpenValidates: a bad configuration is refused by Open, without
// echoing a password from the URL.
func TestCometD_OpenValidates(t *testing.T) {
	noop := func(context.Context, string, json.RawMessage) error { return nil }
	for _, cfg := range []cometd.Config{
		{URL: "ftp://u:secret-x@example.com/cometd", Channels: []string{interactions}, Handler: noop},
		{URL: "http://127.0.0.1:1/cometd", Handler: noop},
		{URL: "http://127.0.0.1:1/cometd", Channels: []string{interactions}},
	} {
		err := cometd.New(cfg).Open()
		if err == nil {
			t.Errorf("Open(%+v) = nil, want an error", cfg)
		} else if strings.Contains(err.Error(), "secret-x") {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
	if err := cometd.New(cometd.Config{}).Close(context.Background()); err != nil {
		t.Errorf("Close of a client never opened = %v", err)
	}
}
