package dial

import (
	"bufio"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/access"
)

// stream reads a Server-Sent Events response an event at a time.
type stream struct{ lines chan string }

func openStream(t *testing.T, url string) *stream {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	s := &stream{lines: make(chan string, 100)}
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

// TestCommands_StreamOutlivesServerTimeouts runs the stream on a server
// with short read and write timeouts, as a production server may have: the
// stream clears them, and heartbeats keep it going.
func TestCommands_StreamOutlivesServerTimeouts(t *testing.T) {
	rl := NewRelay(access.Sources{"five9": {AllowedOrigins: []string{"https://crm.example"}}},
		slog.New(slog.DiscardHandler))
	rl.hub.heartbeat = 50 * time.Millisecond
	hub := rl.hub
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/agents/{agent}/commands", rl.HandleCommands)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)

	s := openStream(t, srv.URL+"/v1/agents/jdoe/commands")
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
	if n := hub.Publish("jdoe", "dial", []byte(`{}`)); n != 1 {
		t.Fatalf("Publish after a second reached %d bridges, want 1", n)
	}
	for {
		lines, _ := s.next(t, 2*time.Second)
		if len(lines) == 2 && lines[0] == "event: dial" {
			break
		}
	}
}

// TestCommands_SlowBridgeIsSkipped: a stream that does not take its
// commands never blocks Publish; what does not fit is not counted.
func TestCommands_SlowBridgeIsSkipped(t *testing.T) {
	hub := newCommandHub()
	_, cancel := hub.subscribe("jdoe")
	for i := range commandBuffer {
		if n := hub.Publish("jdoe", "dial", []byte(`{}`)); n != 1 {
			t.Fatalf("Publish %d reached %d, want 1", i, n)
		}
	}
	if n := hub.Publish("jdoe", "dial", []byte(`{}`)); n != 0 {
		t.Errorf("Publish to a full stream reached %d, want 0", n)
	}
	cancel()
	if n := hub.Connected("jdoe"); n != 0 {
		t.Errorf("Connected after cancel = %d", n)
	}
	hub.close()
	if c, _ := hub.subscribe("jdoe"); c != nil {
		t.Error("subscribe after close succeeded")
	}
}
