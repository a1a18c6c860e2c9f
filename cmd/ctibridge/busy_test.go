package main

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// TestServe_BusyAnswers503 fills server.max_in_flight with a post whose
// body is still arriving: the next post is refused at once with 503 and
// Retry-After, and accepted again once the slot is free.
func TestServe_BusyAnswers503(t *testing.T) {
	path := writeConfig(t, t.TempDir(), connectortest.NewFakeCRM(t).URL)
	text, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(text), "[server]\n", "[server]\nmax_in_flight = 1\n", 1)), 0o644)
	m := MustRunMain(t, path)
	url := "http://" + m.Addr() + "/v1/events/brightpattern"

	body, slow := io.Pipe()
	first := make(chan int, 1)
	go func() {
		resp, err := http.Post(url, "application/json", body)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	example := readExample(t)
	slow.Write(example[:10]) // the handler now holds the only slot, reading
	waitFor(t, "the slow post to hold the slot", func() bool { return m.Server.InFlight() == 1 })

	resp, err := http.Post(url, "application/json", strings.NewReader(string(example)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("post while saturated = %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
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
	if status, _ := post(t, m.Addr(), "brightpattern", interaction(t, "after-busy")); status != http.StatusAccepted {
		t.Fatalf("post after the slot freed = %d, want 202", status)
	}
}
