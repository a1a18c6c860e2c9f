package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/outbox"
)

// interaction returns the example event with its interaction id replaced.
func interaction(tb testing.TB, id string) []byte {
	return bytes.Replace(readExample(tb), []byte("7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D"), []byte(id), 1)
}

// exampleAgent is the agent of examples/events/brightpattern-call.json:
// each agent's leg of a call is its own record, keyed by the agent.
const exampleAgent = "jane.doe"

// callKey is the key of the activity of the example call with interaction
// id: the default key {platform}:{id}:{leg}:{rule}.
func callKey(id string) string { return "brightpattern:" + id + ":" + exampleAgent + ":calls" }

// faults scripts a CRM that fails each record in its own way, chosen by the
// interaction id's prefix, before taking it.
var faults = map[string]func(try int) connectortest.Response{
	"e500": func(try int) connectortest.Response { // recovers within the in-request retries
		if try <= 2 {
			return connectortest.Response{Status: 500, Body: `{"error":"internal"}`}
		}
		return connectortest.Response{}
	},
	"e429": func(try int) connectortest.Response {
		if try == 1 {
			return connectortest.Response{Status: 429, Header: http.Header{"Retry-After": {"1"}}}
		}
		return connectortest.Response{}
	},
	"e503": func(try int) connectortest.Response { // outlasts the in-request retries: the outbox retries
		if try <= 4 {
			return connectortest.Response{Status: 503, Header: http.Header{"Retry-After": {"1"}}}
		}
		return connectortest.Response{}
	},
	"slow": func(try int) connectortest.Response { // past the 1s client timeout
		if try == 1 {
			return connectortest.Response{Delay: 3 * time.Second}
		}
		return connectortest.Response{}
	},
	"reset": func(try int) connectortest.Response { // processed, but the answer is lost
		if try == 1 {
			return connectortest.Response{Reset: true}
		}
		return connectortest.Response{}
	},
	"e400": func(try int) connectortest.Response {
		return connectortest.Response{Status: 400, Body: `{"message":"Subject: value too long","errorCode":"STRING_TOO_LONG"}`}
	},
}

// TestServe_FaultSuite sends records through the real daemon to a CRM that
// answers 500, 429 with Retry-After, 503, slowly past the timeout, resets
// the connection after reading the body, or 400. Every record is delivered
// exactly once as the CRM sees it, except the 400s, which are dead with the
// CRM's message.
func TestServe_FaultSuite(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	crm.Respond(func(r connectortest.Request) connectortest.Response {
		id := strings.TrimSuffix(strings.TrimPrefix(r.Key, "brightpattern:"), ":"+exampleAgent+":calls")
		return faults[strings.SplitN(id, "-", 2)[0]](r.Try)
	})
	m := MustRunMain(t, writeConfigWith(t, t.TempDir(), testMapping, `
[targets.crm]
type = "webhook"
url = "`+crm.URL+`"
timeout = "1s"
breaker_failures = 0
`))

	var good, bad []string
	for kind := range faults {
		for i := range 3 {
			id := fmt.Sprintf("%s-%d", kind, i)
			if status, body := post(t, m.Addr(), "brightpattern", interaction(t, id)); status != http.StatusAccepted {
				t.Fatalf("POST %s = %d %v", id, status, body)
			}
			if kind == "e400" {
				bad = append(bad, callKey(id))
			} else {
				good = append(good, callKey(id))
			}
		}
	}
	crm.WaitAccepted(t, 30*time.Second, good...)
	waitFor(t, "the rejected records to be dead", func() bool {
		ds, _ := m.DB.List(context.Background(), outbox.Filter{State: outbox.StateDead})
		return len(ds) == len(bad)
	})

	accepted := crm.Accepted()
	if len(accepted) != len(good) {
		t.Errorf("CRM stored %d records, want %d", len(accepted), len(good))
	}
	if c := crm.Conflicts(); len(c) > 0 {
		t.Errorf("keys stored as two different records: %v", c)
	}
	dead, _ := m.DB.List(context.Background(), outbox.Filter{State: outbox.StateDead})
	var deadKeys []string
	for _, d := range dead {
		deadKeys = append(deadKeys, d.Key)
		if d.LastStatus != 400 || !strings.Contains(d.LastError, "STRING_TOO_LONG") || d.Attempts != 1 {
			t.Errorf("dead %s: status %d, %d attempts, error %q; want 400 after 1 attempt with the CRM's message",
				d.Key, d.LastStatus, d.Attempts, d.LastError)
		}
	}
	sort.Strings(deadKeys)
	sort.Strings(bad)
	if strings.Join(deadKeys, " ") != strings.Join(bad, " ") {
		t.Errorf("dead = %v, want %v", deadKeys, bad)
	}
	var delivered []outbox.Delivery
	waitFor(t, "every accepted record to be recorded as delivered", func() bool {
		delivered, _ = m.DB.List(context.Background(), outbox.Filter{State: outbox.StateDelivered})
		return len(delivered) >= len(good)
	})
	if len(delivered) != len(good) {
		t.Errorf("%d deliveries delivered, want %d", len(delivered), len(good))
	}
	for _, d := range delivered {
		// e503 outlasts one attempt's quick retries, so the outbox itself
		// must have scheduled a second attempt (after the Retry-After).
		if strings.Contains(d.Key, ":e503-") && d.Attempts < 2 {
			t.Errorf("%s delivered in %d attempt, want the outbox to have retried it", d.Key, d.Attempts)
		}
	}
}

// TestServe_DownTargetDoesNotSlowHealthyOne maps every call to two targets,
// one of which is down, and checks that the healthy one's records arrive as
// fast as they would alone.
func TestServe_DownTargetDoesNotSlowHealthyOne(t *testing.T) {
	healthy := connectortest.NewFakeCRM(t)
	down := connectortest.NewFakeCRM(t)
	const downDelay = 3 * time.Second
	down.Respond(func(connectortest.Request) connectortest.Response {
		return connectortest.Response{Delay: downDelay, Status: 503}
	})
	twoTargets := testMapping + strings.NewReplacer(`name   = "calls"`, `name   = "calls-b"`,
		`target = "crm"`, `target = "down"`).Replace(strings.SplitN(testMapping, "[lookups", 2)[0])
	m := MustRunMain(t, writeConfigWith(t, t.TempDir(), twoTargets, `
[targets.crm]
type = "webhook"
url = "`+healthy.URL+`"
timeout = "1s"
[targets.down]
type = "webhook"
url = "`+down.URL+`"
timeout = "5s"
`))

	const n = 40
	var worst time.Duration
	for i := range n {
		id := fmt.Sprintf("iso-%03d", i)
		acked := time.Now()
		if status, _ := post(t, m.Addr(), "brightpattern", interaction(t, id)); status != http.StatusAccepted {
			t.Fatalf("POST %s = %d", id, status)
		}
		healthy.WaitAccepted(t, 5*time.Second, callKey(id))
		worst = max(worst, time.Since(acked))
	}
	// The down target takes 3 s per request and keeps all its workers
	// busy; with a shared queue, healthy records would wait for those
	// answers. The bound is causal, not a speed target: a healthy record
	// arriving sooner than one down answer cannot have waited for one.
	if worst >= downDelay {
		t.Errorf("slowest healthy delivery took %v after its ack: it waited for the down target (%v per request)", worst, downDelay)
	}
	if len(down.Accepted()) != 0 {
		t.Fatalf("the down target accepted records")
	}
	t.Logf("%d records to the healthy target while the other was down: slowest %v after ack", n, worst)
}

// waitFor polls cond until it holds, for at most 30 seconds.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
