package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// Remapped counts the outcome of Remap.
type Remapped struct {
	Remapped     int `json:"remapped"`     // events now mapped in full
	Rules        int `json:"rules"`        // failed rules that now map (or no longer match)
	Activities   int `json:"activities"`   // deliveries they enqueued
	StillFailing int `json:"stillFailing"` // events with a rule that fails still
}

// Remap maps the failed rules of every mapping_failed event of db again
// with set, newest first, a page at a time, as of now: only the rules that
// failed (mapping.Set.ApplyEach with their names), so that the rules that
// mapped already are not sent twice. It enqueues what now maps and clears
// those rules' failures; an event is processed once none is left. An
// event that failed as a whole (stored before rule-by-rule mapping) has
// all its rules mapped again. notify, when not nil, is told each target of
// the set afterwards.
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
			n, left, err := remapOne(ctx, db, set, e, now)
			if err != nil {
				return r, err
			}
			r.Activities += n
			if len(e.Failures) > 0 {
				r.Rules += len(e.Failures) - left
			}
			if left == 0 {
				r.Remapped++
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

// remapOne maps the failed rules of one stored event again and records
// the outcome. It returns the deliveries enqueued and how many rules fail
// still (1 for an event that cannot be mapped at all).
func remapOne(ctx context.Context, db *outbox.DB, set *mapping.Set, e outbox.StoredEvent, now time.Time) (int, int, error) {
	if e.Interaction == nil {
		_, err := db.Remap(ctx, e.ID, nil, nil, errors.New("the event stored no interaction to map"), now)
		return 0, 1, err
	}
	var in connector.Interaction
	if err := json.Unmarshal(e.Interaction, &in); err != nil {
		_, err := db.Remap(ctx, e.ID, nil, nil, fmt.Errorf("stored interaction: %w", err), now)
		return 0, 1, err
	}
	var rules []string // none for an event that failed as a whole: every rule again
	for _, f := range e.Failures {
		rules = append(rules, f.Rule)
	}
	ds, fails := MapEach(set, &in, rules...)
	// A failed rule that was renamed or removed since stays failed: marking
	// the event processed would drop its record without a word.
	for _, f := range e.Failures {
		if !slices.Contains(set.Rules(), f.Rule) {
			fails = append(fails, outbox.RuleFailure{Rule: f.Rule, Target: f.Target,
				Error: fmt.Sprintf("rule %q is no longer in the mappings; restore it, or retry the event under the new rule by hand", f.Rule)})
		}
	}
	n, err := db.Remap(ctx, e.ID, ds, fails, nil, now)
	return n, len(fails), err
}
