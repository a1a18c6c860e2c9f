package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/ingest"
	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/outbox"
)

// TestFlush_StaleCallsReachCRMOnce posts a Genesys call up to RELEASED
// (the agent closed the tab before MARKDONE_APPLY) and a Five9 call up to
// callEnded (no callFinished), and checks that the flush job logs each
// once, flagged incomplete, and leaves no snapshot behind; while a Genesys
// call still established is left alone.
func TestFlush_StaleCallsReachCRMOnce(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	m := MustRunMain(t, writeConfigWith(t, t.TempDir(), testMapping, `
[targets.crm]
type = "webhook"
url = "`+crm.URL+`"
secret = "${CRM_SECRET}"
timeout = "2s"

[sources.genesys]
flush_after = "1ns"

[sources.five9]
flush_after = "1ns"
`))
	postAll := func(platform string, bodies [][]byte) {
		t.Helper()
		for i, body := range bodies {
			if status, res := post(t, m.Addr(), platform, body); status != http.StatusAccepted && status != http.StatusOK {
				t.Fatalf("%s line %d: POST = %d %v", platform, i+1, status, res)
			}
		}
	}
	until := func(bodies [][]byte, stop ...string) [][]byte {
		var out [][]byte
		for _, b := range bodies {
			for _, s := range stop {
				if bytes.Contains(b, []byte(s)) {
					return out
				}
			}
			out = append(out, b)
		}
		return out
	}
	testdata := func(platform, name string) [][]byte {
		return fixtureBodies(t, filepath.Join("..", "..", "connector", platform, "testdata", name))
	}

	genesys := testdata("genesys", "inbound-call.jsonl")
	var released [][]byte
	for _, b := range genesys {
		if !bytes.Contains(b, []byte(`"eventType":"MARKDONE_APPLY"`)) && !bytes.Contains(b, []byte(`"eventType":"REMOVED"`)) {
			released = append(released, b)
		}
	}
	postAll("genesys", released)
	postAll("five9", until(testdata("five9", "inbound-call.jsonl"), `"event":"callFinished"`))

	if n := countRows(t, m, "states"); n != 2 {
		t.Fatalf("%d snapshots before the flush, want 2", n)
	}
	if n := len(crm.Requests()); n != 0 {
		t.Fatalf("CRM received %d requests before the flush, want 0", n)
	}

	m.flushStale(t.Context())
	waitFor(t, "both calls to reach the CRM", func() bool { return len(crm.Accepted()) == 2 })

	if n := countRows(t, m, "states"); n != 0 {
		t.Fatalf("%d snapshots after the flush, want none", n)
	}
	evs, err := m.DB.Events(context.Background(), outbox.EventFilter{WithInteraction: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("%d events with an interaction, want 2", len(evs))
	}
	for _, e := range evs {
		var in struct {
			Attached map[string]any `json:"attached"`
		}
		if err := json.Unmarshal(e.Interaction, &in); err != nil {
			t.Fatal(err)
		}
		if e.Type != ingest.FlushEventType || in.Attached["ctibridge_incomplete"] != true || in.Attached["ctibridge_flushed"] == nil {
			t.Errorf("event %s %s: attached %v, want a FLUSH flagged incomplete", e.Platform, e.Type, in.Attached)
		}
	}

	// Flushing again sends nothing; a call still established is not
	// flushed.
	// Another call, still established: the same events before RELEASED,
	// under another id.
	var established [][]byte
	for _, b := range until(genesys, `"eventType":"RELEASED"`) {
		established = append(established, bytes.ReplaceAll(b,
			[]byte("4L6JGNEE9H7DT671FRPTKE6CQO00000G"), []byte("4L6JGNEE9H7DT671FRPTKE6CQO0000ZZ")))
	}
	postAll("genesys", established)
	m.flushStale(t.Context())
	time.Sleep(100 * time.Millisecond) // a second delivery would have started by now
	if n := len(crm.Requests()); n != 2 {
		t.Fatalf("CRM received %d requests after the second flush, want 2", n)
	}
	states, err := m.DB.StaleStates(context.Background(), "genesys", time.Now().Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 || states[0].Key != "4L6JGNEE9H7DT671FRPTKE6CQO0000ZZ" || countRows(t, m, "states") != 1 {
		t.Fatalf("snapshots left = %+v, want only the established call's", states)
	}
}

// TestFlush_TransferLogsEveryLeg: both agents of a Genesys transfer close
// the tab without marking it done; the flush logs each agent's leg, each
// as its own FLUSH event and record, and deletes the snapshot. A flush
// that crashed after storing the first leg resumes with the second: the
// first is not stored again.
func TestFlush_TransferLogsEveryLeg(t *testing.T) {
	var legs [][]byte
	for _, b := range fixtureBodies(t, filepath.Join("..", "..", "connector", "genesys", "testdata", "transfer.jsonl")) {
		if !bytes.Contains(b, []byte(`"eventType":"MARKDONE_APPLY"`)) && !bytes.Contains(b, []byte(`"eventType":"REMOVED"`)) {
			legs = append(legs, b)
		}
	}
	start := func(t *testing.T) (*Main, *connectortest.FakeCRM, string) {
		crm := connectortest.NewFakeCRM(t)
		m := MustRunMain(t, writeConfigWith(t, t.TempDir(), testMapping, `
[targets.crm]
type = "webhook"
url = "`+crm.URL+`"
secret = "${CRM_SECRET}"
timeout = "2s"

[sources.genesys]
flush_after = "1ns"
`))
		for i, b := range legs {
			if status, res := post(t, m.Addr(), "genesys", b); status != http.StatusAccepted && status != http.StatusOK {
				t.Fatalf("line %d: POST = %d %v", i+1, status, res)
			}
		}
		states, err := m.DB.StaleStates(t.Context(), "genesys", time.Now().Add(time.Hour), 10)
		if err != nil || len(states) != 1 {
			t.Fatalf("snapshots = %+v, %v; want the call's one", states, err)
		}
		return m, crm, states[0].Key
	}
	const id = "0B2C3D4E5F6071829300TRANSFER0001"
	key := func(leg string) string { return "genesys:" + id + ":" + leg + ":calls" }

	t.Run("BothLegs", func(t *testing.T) {
		m, crm, state := start(t)
		m.flushStale(t.Context())
		crm.WaitAccepted(t, 10*time.Second, key("1001"), key("1002"))
		if n := countRows(t, m, "states"); n != 0 {
			t.Errorf("%d snapshots after the flush, want none", n)
		}
		var keys []string
		rows, err := rawDB(t, m).Query(`SELECT event_key FROM events WHERE event_type = ? ORDER BY id`, ingest.FlushEventType)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			rows.Scan(&k)
			keys = append(keys, k)
		}
		if want := []string{"flush:" + state + ":1001", "flush:" + state + ":1002"}; !slices.Equal(keys, want) {
			t.Errorf("FLUSH events %q, want %q", keys, want)
		}
		m.flushStale(t.Context())
		time.Sleep(100 * time.Millisecond) // a second delivery would have started by now
		if n := len(crm.Requests()); n != 2 {
			t.Errorf("CRM received %d requests, want one per leg", n)
		}
	})

	t.Run("ResumesAfterCrash", func(t *testing.T) {
		m, crm, state := start(t)
		// What a crash after the first leg's transaction leaves: its event,
		// and the snapshot.
		if _, err := m.DB.Accept(t.Context(), outbox.Event{Platform: "genesys", Key: "flush:" + state + ":1001",
			Type: ingest.FlushEventType, ReceivedAt: time.Now(), Body: []byte(`{}`)}, nil); err != nil {
			t.Fatal(err)
		}
		m.flushStale(t.Context())
		crm.WaitAccepted(t, 10*time.Second, key("1002"))
		time.Sleep(100 * time.Millisecond)
		if n := len(crm.Requests()); n != 1 || countRows(t, m, "states") != 0 || countRows(t, m, "events") != len(legs)+2 {
			t.Errorf("after the resumed flush: %d requests, %d snapshots, %d events; want leg 1002 only, none, %d",
				n, countRows(t, m, "states"), countRows(t, m, "events"), len(legs)+2)
		}
	})
}
