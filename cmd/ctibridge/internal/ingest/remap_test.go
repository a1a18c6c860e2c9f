package ingest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

const twoRules = `
[[rule]]
name   = "a"
target = "crm"
object = "Task"
[rule.fields]
Subject = 'id'

[[rule]]
name   = "b"
target = "crm"
object = "Call"
[rule.fields]
Notes = 'notes'
`

// TestRemap_OnlyFailedRules: an event with a failed rule has only that
// rule mapped again; an event stored as failed as a whole (before
// rule-by-rule mapping) has all its rules mapped; an event without an
// interaction fails still.
func TestRemap_OnlyFailedRules(t *testing.T) {
	ctx := context.Background()
	db := outbox.NewDB(filepath.Join(t.TempDir(), "outbox.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	set, err := mapping.Load([]mapping.File{{Name: "m.toml", Data: []byte(twoRules)}}, mapping.Options{Targets: []string{"crm"}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	accept := func(key string, ev outbox.Event) {
		t.Helper()
		ev.Platform, ev.Key, ev.Type, ev.ReceivedAt, ev.Body = "test", key, "END", t0, []byte(`{}`)
		if _, err := db.Accept(ctx, ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	in := []byte(`{"platform":"test","id":"i1","channel":"voice","notes":"hi"}`)
	accept("partial", outbox.Event{Interaction: in, Failures: []outbox.RuleFailure{{Rule: "b", Target: "crm", Error: "boom"}}})
	accept("whole", outbox.Event{Interaction: []byte(`{"platform":"test","id":"i2","channel":"voice"}`), MappingError: "boom"})
	accept("none", outbox.Event{MappingError: "boom"})

	r, err := Remap(ctx, db, set, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Remapped{Remapped: 2, Rules: 1, Activities: 3, StillFailing: 1}); r != want {
		t.Errorf("Remap = %+v, want %+v", r, want)
	}
	ds, err := db.List(ctx, outbox.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, d := range ds {
		keys[d.Key] = true
	}
	for _, k := range []string{"test:i1:b", "test:i2:a", "test:i2:b"} {
		if !keys[k] {
			t.Errorf("no delivery %s among %v", k, keys)
		}
	}
	if keys["test:i1:a"] {
		t.Error("rule a of the partly failed event, which had mapped, was mapped again")
	}
}

// TestRemap_RenamedRuleStaysFailed: a failed rule that is no longer in the
// mappings (renamed, removed) keeps its event failed, saying why, instead
// of marking it processed with no record.
func TestRemap_RenamedRuleStaysFailed(t *testing.T) {
	ctx := context.Background()
	db := outbox.NewDB(filepath.Join(t.TempDir(), "outbox.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	set, err := mapping.Load([]mapping.File{{Name: "m.toml", Data: []byte(twoRules)}}, mapping.Options{Targets: []string{"crm"}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ev := outbox.Event{Platform: "test", Key: "e", Type: "END", ReceivedAt: t0, Body: []byte(`{}`),
		Interaction: []byte(`{"platform":"test","id":"i1","channel":"voice"}`),
		Failures:    []outbox.RuleFailure{{Rule: "call-log", Target: "crm", Error: "boom"}}}
	if _, err := db.Accept(ctx, ev, nil); err != nil {
		t.Fatal(err)
	}
	r, err := Remap(ctx, db, set, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Remapped != 0 || r.StillFailing != 1 || r.Activities != 0 {
		t.Errorf("Remap = %+v, want the event still failing", r)
	}
	evs, err := db.Events(ctx, outbox.EventFilter{State: outbox.EventMappingFailed})
	if err != nil || len(evs) != 1 || len(evs[0].Failures) != 1 || !strings.Contains(evs[0].Failures[0].Error, "no longer in the mappings") {
		t.Fatalf("failed events = %+v, %v; want the event with the vanished rule named", evs, err)
	}
}
