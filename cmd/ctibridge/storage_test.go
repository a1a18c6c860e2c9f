package main

import (
	"context"
	"database/sql"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// TestServe_StorageLockedAnswers503 holds the outbox's write lock from
// another process's connection past busy_timeout: ingest must answer 503
// with Retry-After and store nothing, and accept again by itself once the
// lock is gone.
func TestServe_StorageLockedAnswers503(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	path := writeConfig(t, t.TempDir(), crm.URL)
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text = []byte(strings.Replace(string(text), "[store]\n", "[store]\nbusy_timeout = \"200ms\"\n", 1))
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
	m := MustRunMain(t, path)

	other, err := sql.Open("sqlite", "file:"+m.Config.Store.Path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}

	resp, err := http.Post("http://"+m.Addr()+"/v1/events/brightpattern", "application/json",
		strings.NewReader(string(readExample(t))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("POST while the outbox is locked = %d (Retry-After %q), want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if n := countRows(t, m, "events"); n != 0 {
		t.Fatalf("%d events stored by the refused request, want 0", n)
	}
	status, body := post(t, m.Addr(), "brightpattern", readExample(t))
	if status != http.StatusAccepted {
		t.Fatalf("POST after the lock is released = %d %v, want 202", status, body)
	}
	crm.WaitAccepted(t, 10*time.Second, callKey("7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D"))
}
