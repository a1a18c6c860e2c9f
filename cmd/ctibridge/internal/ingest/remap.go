package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// Remapped counts the outcome of Remap.
type Remapped struct {
	Remapped     int `json:"remapped"`     // events now mapped
	Activities   int `json:"activities"`   // deliveries they enqueued
	StillFailing int `json:"stillFailing"` // events whose mapping fails still
}

// Remap maps every mapping_failed event of db again with set, newest
// first, a page at a time, enqueuing the activities of those that now map,
// as of now. notify, when not nil, is told each target of the set
// afterwards.
func Remap(ctx context.Context, db *outbox.DB, set *mapping.Set, now time.Time, notify func(target string)) (Remapped, error) {
	const page = 500
	var r Remapped
	f := outbox.EventFilter{State: outbox.EventMappingFailed, Limit: page}
	for {
		evs, err := db.Events(ctx, f)
		if err != nil {
			return r, err
		}
		for _, e := range evs {
			n, ok, err := remapOne(ctx, db, set, e, now)
			if err != nil {
				return r, err
			}
			if ok {
				r.Remapped++
				r.Activities += n
			} else {
				r.StillFailing++
			}
		}
		if len(evs) < page {
			break
		}
		f.BeforeID = evs[len(evs)-1].ID
	}
	if notify != nil && r.Activities > 0 {
		for _, t := range set.Targets() {
			notify(t)
		}
	}
	return r, nil
}

// remapOne maps one stored event again and records the outcome.
func remapOne(ctx context.Context, db *outbox.DB, set *mapping.Set, e outbox.StoredEvent, now time.Time) (int, bool, error) {
	var mapErr error
	var ds []outbox.NewDelivery
	if e.Interaction == nil {
		mapErr = errors.New("the event stored no interaction to map")
	} else {
		var in connector.Interaction
		if err := json.Unmarshal(e.Interaction, &in); err != nil {
			mapErr = fmt.Errorf("stored interaction: %w", err)
		} else {
			ds, mapErr = EncodeActivities(set, &in)
		}
	}
	n, err := db.Remap(ctx, e.ID, ds, mapErr, now)
	return n, mapErr == nil, err
}
