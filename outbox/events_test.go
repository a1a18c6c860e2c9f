package outbox_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ctibridge/ctibridge/outbox"
)

func TestDB_Remap(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	failed := event("e1")
	failed.MappingError, failed.Interaction = `rule "r": field X: boom`, []byte(`{"id":"i1"}`)
	res, err := db.Accept(ctx, failed, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok := event("e2")
	ok.Interaction = []byte(`{"id":"i2"}`)
	okRes, _ := db.Accept(ctx, ok, nil)

	evs, err := db.Events(ctx, outbox.EventFilter{State: outbox.EventMappingFailed})
	if err != nil || len(evs) != 1 || evs[0].ID != res.EventID || string(evs[0].Interaction) != `{"id":"i1"}` ||
		evs[0].Error != `rule "r": field X: boom` {
		t.Fatalf("Events(mapping_failed) = %+v, %v; want e1 with its interaction and error", evs, err)
	}
	if all, _ := db.Events(ctx, outbox.EventFilter{WithInteraction: true}); len(all) != 2 {
		t.Fatalf("Events(with interaction) = %d, want 2", len(all))
	}

	// Still failing: the event stays, with the new error.
	if _, err := db.Remap(ctx, res.EventID, nil, nil, errors.New("still broken"), t0); err != nil {
		t.Fatal(err)
	}
	evs, _ = db.Events(ctx, outbox.EventFilter{State: outbox.EventMappingFailed})
	if len(evs) != 1 || evs[0].Error != "still broken" {
		t.Fatalf("after a failed remap: %+v, want still mapping_failed with the new error", evs)
	}

	n, err := db.Remap(ctx, res.EventID, []outbox.NewDelivery{{Target: "crm", Key: "k1", Payload: []byte(`{}`)}}, nil, nil, t0)
	if err != nil || n != 1 {
		t.Fatalf("Remap = %d, %v; want 1 delivery", n, err)
	}
	if evs, _ := db.Events(ctx, outbox.EventFilter{State: outbox.EventMappingFailed}); len(evs) != 0 {
		t.Fatalf("after remap, %d events still mapping_failed", len(evs))
	}
	if ds := mustList(t, db, outbox.Filter{}); len(ds) != 1 || ds[0].EventID != res.EventID {
		t.Fatalf("deliveries = %+v, want one for the remapped event", ds)
	}
	if _, err := db.Remap(ctx, okRes.EventID, nil, nil, nil, t0); !errors.Is(err, outbox.ErrNotMappingFailed) {
		t.Errorf("Remap of a processed event = %v, want ErrNotMappingFailed", err)
	}
	if _, err := db.Remap(ctx, 999, nil, nil, nil, t0); !errors.Is(err, outbox.ErrNotFound) {
		t.Errorf("Remap of a missing event = %v, want ErrNotFound", err)
	}
}

// TestDB_RuleFailures: an event whose one rule failed is stored with the
// other rules' deliveries and the failure; a remap of the failed rule that
// still fails keeps it, one that maps clears it and the event is processed.
func TestDB_RuleFailures(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	ev := event("e1")
	ev.Interaction = []byte(`{"id":"i1"}`)
	ev.Failures = []outbox.RuleFailure{{Rule: "hubspot-call", Target: "hubspot", Error: `rule "hubspot-call": boom`}}
	res, err := db.Accept(ctx, ev, []outbox.NewDelivery{{Target: "sf", Key: "sf-k", Payload: []byte(`{}`)}})
	if err != nil || res.Enqueued != 1 {
		t.Fatalf("Accept = %+v, %v; want the working rule's delivery enqueued", res, err)
	}
	evs, err := db.Events(ctx, outbox.EventFilter{State: outbox.EventMappingFailed})
	if err != nil || len(evs) != 1 || len(evs[0].Failures) != 1 || evs[0].Failures[0] != ev.Failures[0] ||
		evs[0].Error != ev.Failures[0].Error {
		t.Fatalf("Events(mapping_failed) = %+v, %v; want e1 with its failed rule", evs, err)
	}

	// The schema refuses an event processed while a rule failure is kept.
	if _, err := outbox.RawForTest(db).Exec(`UPDATE events SET state = 'processed', error = NULL WHERE id = ?`, res.EventID); err == nil {
		t.Fatal("marking an event with a failed rule processed was allowed")
	}

	still := []outbox.RuleFailure{{Rule: "hubspot-call", Target: "hubspot", Error: "still broken"}}
	if _, err := db.Remap(ctx, res.EventID, nil, still, nil, t0); err != nil {
		t.Fatal(err)
	}
	evs, _ = db.Events(ctx, outbox.EventFilter{State: outbox.EventMappingFailed})
	if len(evs) != 1 || len(evs[0].Failures) != 1 || evs[0].Failures[0].Error != "still broken" || evs[0].Error != "still broken" {
		t.Fatalf("after a remap that fails still: %+v", evs)
	}
	n, err := db.Remap(ctx, res.EventID, []outbox.NewDelivery{
		{Target: "sf", Key: "sf-k", Payload: []byte(`{}`)}, {Target: "hubspot", Key: "hs-k", Payload: []byte(`{}`)}}, nil, nil, t0)
	if err != nil || n != 1 {
		t.Fatalf("Remap = %d, %v; want only the new delivery", n, err)
	}
	evs, _ = db.Events(ctx, outbox.EventFilter{})
	if len(evs) != 1 || evs[0].State != outbox.EventProcessed || len(evs[0].Failures) != 0 || evs[0].Error != "" {
		t.Fatalf("after the remap: %+v, want processed without failures", evs)
	}
	if ds := mustList(t, db, outbox.Filter{}); len(ds) != 2 {
		t.Fatalf("deliveries = %d, want 2", len(ds))
	}
}
