package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/outbox"
)

// runCLI runs `ctibridge args...` and returns its exit code, stdout and
// stderr.
func runCLI(tb testing.TB, args ...string) (int, string, string) {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, testEnviron)
	return code, stdout.String(), stderr.String()
}

// postCall posts the example call with interaction id and returns its
// activity's idempotency key.
func postCall(tb testing.TB, m *Main, id string) string {
	tb.Helper()
	body := bytes.Replace(readExample(tb), []byte("7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D"), []byte(id), 1)
	if status, resp := post(tb, m.Addr(), "brightpattern", body); status != http.StatusAccepted {
		tb.Fatalf("POST %s = %d %v, want 202", id, status, resp)
	}
	return callKey(id)
}

// waitDeliveries waits until no delivery is pending, running or retrying.
func waitDeliveries(tb testing.TB, m *Main) map[string]outbox.Delivery {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := m.DB.List(context.Background(), outbox.Filter{})
		if err != nil {
			tb.Fatal(err)
		}
		byKey, busy := map[string]outbox.Delivery{}, false
		for _, d := range ds {
			byKey[d.Key] = d
			busy = busy || (d.State != outbox.StateDelivered && d.State != outbox.StateDead)
		}
		if !busy {
			return byKey
		}
		if time.Now().After(deadline) {
			tb.Fatalf("deliveries still in progress: %+v", ds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOutboxCommands runs every `ctibridge outbox` verb against the
// database of a running daemon, as an operator would.
func TestOutboxCommands(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	const refusal = `{"message":"INVALID_FIELD: WhoId"}`
	crm.Respond(func(r connectortest.Request) connectortest.Response {
		if strings.Contains(r.Key, "BAD") {
			return connectortest.Response{Status: 400, Body: refusal}
		}
		return connectortest.Response{}
	})
	path := writeAdminConfig(t, t.TempDir(), crm.URL, "t")
	m := MustRunMain(t, path)
	okKey, bad1, bad2 := postCall(t, m, "OK-1"), postCall(t, m, "BAD-1"), postCall(t, m, "BAD-2")
	ds := waitDeliveries(t, m)
	okID, bad1ID := strconv.FormatInt(ds[okKey].ID, 10), strconv.FormatInt(ds[bad1].ID, 10)
	if ds[bad1].State != outbox.StateDead || ds[bad2].State != outbox.StateDead || ds[okKey].State != outbox.StateDelivered {
		t.Fatalf("deliveries = %+v, want BAD-1 and BAD-2 dead, OK-1 delivered", ds)
	}

	t.Run("ls", func(t *testing.T) {
		code, out, errOut := runCLI(t, "outbox", "ls", "--config", path)
		if code != 0 || !strings.Contains(out, "LAST ERROR") || !strings.Contains(out, okKey) ||
			!strings.Contains(out, "INVALID_FIELD: WhoId") {
			t.Errorf("outbox ls = %d\n%s%s\nwant a table with %s and the CRM's message", code, out, errOut, okKey)
		}
		code, out, _ = runCLI(t, "outbox", "ls", "--config", path, "--state", "dead", "--json")
		var got []outbox.Delivery
		if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || len(got) != 2 || got[0].State != outbox.StateDead {
			t.Errorf("outbox ls --state dead --json = %d %v\n%s\nwant a JSON array of the 2 dead deliveries", code, err, out)
		}
	})

	t.Run("show", func(t *testing.T) {
		code, out, errOut := runCLI(t, "outbox", "show", bad1ID, "--config", path)
		for _, want := range []string{
			"\nstate        dead\n",
			"\nlast status  400\n",
			"payload:\n{\n  \"key\": \"" + bad1 + "\",", // pretty-printed
			"WINDOW  ATTEMPT",
			refusal, // the CRM's answer, in the attempts table
		} {
			if !strings.Contains(out, want) {
				t.Errorf("outbox show %s lacks %q:\n%s%s", bad1ID, want, out, errOut)
			}
		}
		if code != 0 {
			t.Errorf("outbox show exit code = %d, want 0", code)
		}
		code, out, _ = runCLI(t, "outbox", "show", "--json", "--config", path, bad1ID)
		var got struct {
			Delivery outbox.Delivery
			Payload  map[string]any
			Attempts []struct {
				Attempt      int
				Status       int
				ResponseBody string
			}
		}
		if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || got.Delivery.Key != bad1 ||
			got.Payload["key"] != bad1 || len(got.Attempts) != 1 || got.Attempts[0].ResponseBody != refusal {
			t.Errorf("outbox show --json = %d %v\n%s\nwant the delivery, its payload and its attempt", code, err, out)
		}
	})

	t.Run("stats", func(t *testing.T) {
		code, out, _ := runCLI(t, "outbox", "stats", "--config", path)
		if code != 0 || !strings.Contains(out, "crm     0        0        0         1          2     -") ||
			!strings.Contains(out, "events: 3 stored, 0 mapping failed") {
			t.Errorf("outbox stats = %d\n%s\nwant crm with 1 delivered, 2 dead, and 3 events", code, out)
		}
		code, out, _ = runCLI(t, "outbox", "stats", "--json", "--config", path)
		var s outbox.Stats
		if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil || s.Dead != 2 || s.Events != 3 ||
			len(s.Targets) != 1 || s.Targets[0].Delivered != 1 {
			t.Errorf("outbox stats --json = %d %v\n%s", code, err, out)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			msg  string
		}{
			{[]string{"show", "99"}, "delivery 99: not found"},
			{[]string{"show"}, "want one delivery ID"},
			{[]string{"show", "x"}, `invalid delivery ID "x"`},
			{[]string{"retry"}, "want delivery IDs or --dead"},
			{[]string{"retry", "1", "--dead"}, "not both"},
			{[]string{"purge"}, "want --older-than"},
			{[]string{"ls", "--bogus"}, "flag provided but not defined: -bogus"},
			{[]string{"drop"}, `unknown verb "drop" (want ls, show, retry, purge or stats)`},
		} {
			code, out, errOut := runCLI(t, append(append([]string{"outbox"}, tt.args...), "--config", path)...)
			if code != 1 || !strings.Contains(errOut, tt.msg) || out != "" {
				t.Errorf("outbox %s = %d, stdout %q, stderr %q; want 1 with %q on stderr only",
					strings.Join(tt.args, " "), code, out, errOut, tt.msg)
			}
		}
	})

	// The CRM side is fixed: retry one by id, the other with --dead.
	crm.Respond(func(connectortest.Request) connectortest.Response { return connectortest.Response{} })
	t.Run("retry", func(t *testing.T) {
		code, out, errOut := runCLI(t, "outbox", "retry", "--config", path, "99", bad1ID, okID)
		if code != 1 || out != "retried delivery "+bad1ID+"\n" {
			t.Errorf("outbox retry = %d, stdout %q; want 1 and only %s retried", code, out, bad1ID)
		}
		for _, want := range []string{"2 of 3 not retried", "delivery 99: not found", "delivery " + okID + " is delivered, not dead"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("outbox retry stderr lacks %q:\n%s", want, errOut)
			}
		}
		code, out, errOut = runCLI(t, "outbox", "retry", "--dead", "--target", "crm", "--config", path)
		if code != 0 || out != "retried 1 dead delivery to crm\n" {
			t.Errorf("outbox retry --dead = %d %q %q, want the other dead one retried", code, out, errOut)
		}
		// The daemon, running all along, picks them up.
		crm.WaitAccepted(t, 10*time.Second, bad1, bad2)
		if ds := waitDeliveries(t, m); ds[bad1].State != outbox.StateDelivered || ds[bad2].State != outbox.StateDelivered {
			t.Errorf("after retry: %+v, want both delivered", ds)
		}
	})

	t.Run("purge", func(t *testing.T) {
		code, out, _ := runCLI(t, "outbox", "purge", "--older-than", "720h", "--config", path)
		if code != 0 || out != "purged 0 delivered deliveries older than 720h0m0s\n" {
			t.Errorf("outbox purge --older-than 720h = %d %q, want nothing purged", code, out)
		}
		time.Sleep(5 * time.Millisecond)
		code, out, _ = runCLI(t, "outbox", "purge", "--older-than", "1ms", "--config", path)
		if code != 0 || out != "purged 3 delivered deliveries older than 1ms\n" {
			t.Errorf("outbox purge --older-than 1ms = %d %q, want the 3 delivered rows purged", code, out)
		}
		if ds, _ := m.DB.List(context.Background(), outbox.Filter{}); len(ds) != 0 {
			t.Errorf("after purge: %+v, want no deliveries", ds)
		}
	})
}
