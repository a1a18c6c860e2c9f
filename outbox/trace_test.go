package outbox_test

import (
	"context"
	"testing"

	"github.com/ctibridge/ctibridge/outbox"
)

// TestDB_Trace finds a call by its interaction id, by a number, and by its
// agent, with the raw event, the deliveries it made and their attempts; and
// nothing for a value that is only elsewhere in the interaction.
func TestDB_Trace(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	accept := func(key, interaction string, ds ...outbox.NewDelivery) {
		t.Helper()
		ev := event(key)
		ev.Interaction = []byte(interaction)
		if _, err := db.Accept(ctx, ev, ds); err != nil {
			t.Fatal(err)
		}
	}
	accept("e1", `{"id":"IX-1","ani":"+14155550142","agent":{"id":"jdoe"},"notes":"IX-2"}`,
		outbox.NewDelivery{Target: "crm", Key: "k1", Payload: []byte(`{"a":1}`)},
		outbox.NewDelivery{Target: "file", Key: "k1", Payload: []byte(`{"a":1}`)})
	ev2 := event("e2")
	ev2.Interaction = []byte(`{"id":"IX-2","dnis":"+4930123456","agent":{"id":"asmith"}}`)
	ev2.Failures = []outbox.RuleFailure{{Rule: "calls", Target: "crm", Error: "boom"}}
	if _, err := db.Accept(ctx, ev2, nil); err != nil {
		t.Fatal(err)
	}
	mustFail(t, db, "crm", "k1", t0, outbox.OutcomeDead, 400, `{"message":"bad field"}`)

	paths := []string{"$.id", "$.ani", "$.dnis", "$.agent.id"}
	for _, q := range []string{"IX-1", "+14155550142", "jdoe", "e1"} {
		got, err := db.Trace(ctx, q, paths, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Key != "e1" || string(got[0].Body) != `{"k":"e1"}` || len(got[0].Deliveries) != 2 {
			t.Fatalf("Trace(%q) = %+v, want event e1 with its body and 2 deliveries", q, got)
		}
		crm := got[0].Deliveries[0]
		if crm.Delivery.Target != "crm" || crm.Delivery.State != outbox.StateDead || len(crm.Attempts) != 1 ||
			crm.Attempts[0].ResponseBody != `{"message":"bad field"}` {
			t.Errorf("Trace(%q) crm delivery = %+v, want dead with the CRM's answer", q, crm)
		}
	}
	if got, err := db.Trace(ctx, "IX-2", paths, 10); err != nil || len(got) != 1 || got[0].Key != "e2" ||
		len(got[0].Failures) != 1 || got[0].Failures[0].Rule != "calls" {
		t.Errorf("Trace(IX-2) = %+v, %v; want e2 only (e1 mentions IX-2 in its notes, not as its id), with its failed rule", got, err)
	}
	if got, err := db.Trace(ctx, "nobody", paths, 10); err != nil || len(got) != 0 {
		t.Errorf("Trace(nobody) = %+v, %v; want nothing", got, err)
	}
	fails, err := db.RecentFailures(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(fails) != 1 || fails[0].Target != "crm" || fails[0].Status != 400 || fails[0].Outcome != outbox.OutcomeDead ||
		!fails[0].StartedAt.Equal(t0) {
		t.Errorf("RecentFailures = %+v, want the dead attempt of crm at t0", fails)
	}
}
