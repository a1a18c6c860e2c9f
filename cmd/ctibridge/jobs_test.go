package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/outbox"
)

// TestJobs_ScheduledPurge runs the purge on a one-second schedule with a
// tiny retention: the cron wiring, not just the function.
func TestJobs_ScheduledPurge(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	path := writeConfig(t, t.TempDir(), crm.URL)
	text, _ := os.ReadFile(path)
	text = []byte(strings.Replace(string(text), "[store]\n", "[store]\nretention = \"1ms\"\npurge_schedule = \"@every 1s\"\n", 1))
	os.WriteFile(path, text, 0o644)
	m := MustRunMain(t, path)
	post(t, m.Addr(), "brightpattern", readExample(t))
	crm.WaitAccepted(t, 10*time.Second, callKey("7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D"))
	waitFor(t, "the delivered row to be purged", func() bool {
		ds, _ := m.DB.List(context.Background(), outbox.Filter{})
		return len(ds) == 0
	})
}

func TestJobs_RedriveAndSummary(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	rejecting := true
	var mu sync.Mutex
	crm.Respond(func(connectortest.Request) connectortest.Response {
		mu.Lock()
		defer mu.Unlock()
		if rejecting {
			return connectortest.Response{Status: http.StatusForbidden, Body: `{"message":"maintenance"}`}
		}
		return connectortest.Response{}
	})
	cfg, err := config.Load(writeConfig(t, t.TempDir(), crm.URL), testEnviron)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	m := NewMain(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())

	post(t, m.Addr(), "brightpattern", readExample(t))
	waitFor(t, "the rejected delivery to be dead", func() bool {
		ds, _ := m.DB.List(context.Background(), outbox.Filter{State: outbox.StateDead})
		return len(ds) == 1
	})
	m.Jobs.Summary()
	if !strings.Contains(logs.String(), `msg="outbox summary" events=1 mapping_failed=0 dead=1 crm.delivered=0`) {
		t.Errorf("summary line missing or wrong in:\n%s", logs.String())
	}

	mu.Lock()
	rejecting = false
	mu.Unlock()
	m.Jobs.Redrive()
	crm.WaitAccepted(t, 10*time.Second, callKey("7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D"))

	m.Jobs.Checkpoint()
	if strings.Contains(logs.String(), "checkpoint did not complete") {
		t.Errorf("checkpoint failed:\n%s", logs.String())
	}
}
