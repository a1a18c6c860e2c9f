package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/outbox"
)

func TestDB_StaleStates(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	put := func(platform, key string, at time.Time) {
		t.Helper()
		ev := outbox.Event{Platform: platform, Key: "ev:" + key + at.String(), Type: "T", ReceivedAt: at,
			Body: []byte(`{}`), StateKey: key, State: []byte(`{"k":"` + key + `"}`)}
		if _, err := db.Accept(ctx, ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	put("genesys", "c", t0.Add(2*time.Hour))
	put("genesys", "a", t0)
	put("genesys", "b", t0.Add(time.Hour))
	put("five9", "x", t0)
	put("genesys", "new", t0.Add(5*time.Hour))
	// Updated since: no longer stale.
	put("genesys", "moved", t0)
	put("genesys", "moved", t0.Add(6*time.Hour))

	got, err := db.StaleStates(ctx, "genesys", t0.Add(3*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range got {
		if s.Platform != "genesys" || string(s.Data) != `{"k":"`+s.Key+`"}` {
			t.Errorf("state %+v", s)
		}
		keys = append(keys, s.Key)
	}
	if fmt.Sprint(keys) != "[a b c]" || !got[0].UpdatedAt.Equal(t0) {
		t.Errorf("StaleStates = %v (first updated %v), want [a b c] oldest first", keys, got[0].UpdatedAt)
	}
	if got, _ := db.StaleStates(ctx, "genesys", t0.Add(3*time.Hour), 2); len(got) != 2 || got[1].Key != "b" {
		t.Errorf("StaleStates limit 2 = %+v", got)
	}
	if got, _ := db.StaleStates(ctx, "five9", t0, 10); len(got) != 0 {
		t.Errorf("StaleStates before t0 = %+v, want none", got)
	}
}
