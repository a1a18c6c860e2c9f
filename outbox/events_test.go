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
	if _, err := db.Remap(ctx, res.EventID, nil, errors.New("still broken"), t0); err != nil {
		t.Fatal(err)
	}
	evs, _ = db.Events(ctx, outbox.EventFilter{State: outbox.EventMappingFailed})
	if len(evs) != 1 || evs[0].Error != "still broken" {
		t.Fatalf("after a failed remap: %+v, want still mapping_failed with the new error", evs)
	}

	n, err := db.Remap(ctx, res.EventID, []outbox.NewDelivery{{Target: "crm", Key: "k1", Payload: []byte(`{}`)}}, nil, t0)
	if err != nil || n != 1 {
		t.Fatalf("Remap = %d, %v; want 1 delivery", n, err)
	}
	if evs, _ := db.Events(ctx, outbox.EventFilter{State: outbox.EventMappingFailed}); len(evs) != 0 {
		t.Fatalf("after remap, %d events still mapping_failed", len(evs))
	}
	if ds := mustList(t, db, outbox.Filter{}); len(ds) != 1 || ds[0].EventID != res.EventID {
		t.Fatalf("deliveries = %+v, want one for the remapped event", ds)
	}
	if _, err := db.Remap(ctx, okRes.EventID, nil, nil, t0); !errors.Is(err, outbox.ErrNotMappingFailed) {
		t.Errorf("Remap of a processed event = %v, want ErrNotMappingFailed", err)
	}
	if _, err := db.Remap(ctx, 999, nil, nil, t0); !errors.Is(err, outbox.ErrNotFound) {
		t.Errorf("Remap of a missing event = %v, want ErrNotFound", err)
	}
}
