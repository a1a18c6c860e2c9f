package jsonl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/jsonl"
)

func mustOpen(t *testing.T, path string) *jsonl.Target {
	t.Helper()
	tg, err := jsonl.Open(path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// readLines returns the file's lines, failing the test unless the file ends
// with a newline.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline", path)
	}
	return strings.Split(string(b[:len(b)-1]), "\n")
}

func deliveryError(t *testing.T, err error) *connector.DeliveryError {
	t.Helper()
	var de *connector.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *connector.DeliveryError", err, err)
	}
	return de
}

// activity returns a pretty-printed activity body with pad bytes of notes, so
// that concurrent lines are big enough to interleave if writes were split.
func activity(t *testing.T, key string, pad int) []byte {
	t.Helper()
	b, err := json.MarshalIndent(connector.Activity{
		Key:    key,
		Rule:   "calls",
		Target: "jsonl",
		Fields: map[string]any{"Subject": "Call from Zoë", "Notes": strings.Repeat("x", pad)},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeliver_Concurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "activities.jsonl")
	tg := mustOpen(t, path)

	const workers, each = 8, 12
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("test:%d-%d:calls", w, i)
				d := connector.Delivery{Key: key, Body: activity(t, key, (w*each+i)%7*10_000), Attempt: 1}
				if res, err := tg.Deliver(t.Context(), d); res != (connector.Result{}) || err != nil {
					t.Errorf("Deliver(%s) = %+v, %v; want no status, nil", key, res, err)
				}
			}
		})
	}
	wg.Wait()

	lines := readLines(t, path)
	if len(lines) != workers*each {
		t.Fatalf("%s has %d lines, want %d", path, len(lines), workers*each)
	}
	seen := map[string]bool{}
	for i, line := range lines {
		var a connector.Activity
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("line %d is not one JSON document: %v", i+1, err)
		}
		if seen[a.Key] {
			t.Errorf("line %d repeats key %s", i+1, a.Key)
		}
		seen[a.Key] = true
	}
	for w := range workers {
		for i := range each {
			if key := fmt.Sprintf("test:%d-%d:calls", w, i); !seen[key] {
				t.Errorf("no line for %s", key)
			}
		}
	}
}

func TestDeliver_Compacts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	tg := mustOpen(t, path)
	body := activity(t, "test:1:calls", 0)
	if !bytes.Contains(body, []byte("\n")) {
		t.Fatal("test body should be pretty-printed")
	}
	if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "test:1:calls", Body: body, Attempt: 1}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, body); err != nil {
		t.Fatal(err)
	}
	if lines := readLines(t, path); len(lines) != 1 || lines[0] != want.String() {
		t.Errorf("file holds %q, want the one line %q", lines, want.String())
	}
}

func TestDeliver_InvalidJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	tg := mustOpen(t, path)
	for _, body := range []string{"", "   ", "{", "not json", `{"a":1} {"b":2}`, "{\"a\":\"line\nbreak\"}"} {
		res, err := tg.Deliver(t.Context(), connector.Delivery{Key: "test:1:calls", Body: []byte(body), Attempt: 1})
		status := res.Status
		if status != 0 || err == nil || !deliveryError(t, err).Permanent() {
			t.Errorf("Deliver(%q) = %d, %v; want 0 and a permanent error", body, status, err)
		}
	}
	if lines := readLines(t, path); len(lines) != 0 {
		t.Errorf("invalid bodies wrote %d lines: %q", len(lines), lines)
	}
}

func TestDeliver_Cancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	tg := mustOpen(t, path)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := tg.Deliver(ctx, connector.Delivery{Key: "k", Body: []byte(`{"key":"k"}`), Attempt: 1})
	if err == nil || deliveryError(t, err).Permanent() || !errors.Is(err, context.Canceled) {
		t.Errorf("Deliver(cancelled ctx) = %v, want a retryable error wrapping context.Canceled", err)
	}
	if lines := readLines(t, path); len(lines) != 0 {
		t.Errorf("cancelled Deliver wrote %q", lines)
	}
}

// TestDeliver_WriteFails uses /dev/full, where every write fails with ENOSPC
// as on a full disk: that is worth retrying once space is freed.
func TestDeliver_WriteFails(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	tg := mustOpen(t, "/dev/full")
	_, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k", Body: []byte(`{"key":"k"}`), Attempt: 1})
	if err == nil || deliveryError(t, err).Permanent() {
		t.Errorf("Deliver to a full device = %v, want a retryable error", err)
	}
}

func TestClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	tg, err := jsonl.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tg.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	_, err = tg.Deliver(t.Context(), connector.Delivery{Key: "k", Body: []byte(`{"key":"k"}`), Attempt: 1})
	if err == nil || deliveryError(t, err).Permanent() || !errors.Is(err, os.ErrClosed) {
		t.Errorf("Deliver after Close = %v, want a retryable error wrapping os.ErrClosed", err)
	}
	if lines := readLines(t, path); len(lines) != 0 {
		t.Errorf("Deliver after Close wrote %q", lines)
	}
}

func TestOpen_Reopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	for i, key := range []string{"test:1:calls", "test:2:calls"} {
		tg, err := jsonl.Open(path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: key, Body: []byte(`{"key":"` + key + `"}`), Attempt: 1}); err != nil {
			t.Fatalf("Deliver #%d: %v", i+1, err)
		}
		if err := tg.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	want := []string{`{"key":"test:1:calls"}`, `{"key":"test:2:calls"}`}
	if got := readLines(t, path); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after reopening, file holds %q, want %q", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&^0o644 != 0 {
		t.Errorf("created with mode %v, want at most 0644", perm)
	}
}

func TestOpen_Errors(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{
		filepath.Join(dir, "missing", "a.jsonl"), // parent directories are not created
		dir,                                      // a directory cannot be appended to
	} {
		_, err := jsonl.Open(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Open(%q) = %v, want an error naming the path", path, err)
		}
	}
}

// TestOpen_Private: the file holds phone numbers and notes; only the
// daemon's user may read it.
func TestOpen_Private(t *testing.T) {
	path := filepath.Join(t.TempDir(), "activities.jsonl")
	tg, err := jsonl.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}
