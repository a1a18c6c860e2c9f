package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// flushBatch bounds the stale snapshots one run of the flush job reads per
// platform; the next run takes the rest.
const flushBatch = 1000

// FlushEventType is the Event.Type of the synthetic events the flush job
// stores.
const FlushEventType = "FLUSH"

// FlushStale logs the interactions whose conversation is over but whose
// completing event never came (the agent closed the browser tab before
// Genesys MARKDONE_APPLY, Five9 callFinished never arrived): for each
// source that keeps snapshots (connector.Flusher), the snapshots not
// updated for after[platform] are flushed. Every unlogged leg of a
// snapshot (each agent of a transferred call) is stored as a synthetic
// FLUSH event of its own, like a real one, and the last of them deletes
// the snapshot in its transaction.
func (p *Pipeline) FlushStale(ctx context.Context, after map[string]time.Duration) {
	for _, platform := range p.Platforms() {
		f, ok := p.Decoders[platform].(connector.Flusher)
		wait := after[platform]
		if !ok || wait <= 0 {
			continue
		}
		flushed, deleted, err := p.flushPlatform(ctx, platform, f, p.now().Add(-wait))
		if err != nil {
			p.logger().Error("flushing stale snapshots failed", "platform", platform, "err", err,
				"flushed", flushed, "deleted", deleted)
			continue
		}
		if flushed > 0 || deleted > 0 {
			p.logger().Info("flushed interactions whose completing event never came", "platform", platform,
				"flushed", flushed, "deleted", deleted, "older_than", wait)
		}
	}
}

// flushPlatform flushes the snapshots of platform not updated since
// before. It returns how many interactions (legs) were logged and how many
// snapshots of interactions logged already were deleted.
func (p *Pipeline) flushPlatform(ctx context.Context, platform string, f connector.Flusher, before time.Time) (flushed, deleted int, err error) {
	states, err := p.DB.StaleStates(ctx, platform, before, flushBatch)
	if err != nil {
		return 0, 0, err
	}
	for _, s := range states {
		legs, done, err := p.flushOne(ctx, platform, f, s.Key, s.Data)
		if err != nil {
			return flushed, deleted, err
		}
		switch {
		case legs > 0:
			flushed += legs
		case done:
			deleted++
		}
	}
	return flushed, deleted, nil
}

// flushOne flushes one snapshot under its interaction's lock, so that it
// cannot race a late real event: when the snapshot changed since it was
// read, it is left for a later run. It reports how many legs were logged,
// and whether the snapshot was deleted.
//
// Each leg is its own event, keyed "flush:"+key+":"+leg; only the last one
// deletes the snapshot, in its own transaction. A crash midway leaves the
// snapshot, unchanged, with the legs stored so far: the next run flushes
// it again, the legs stored already are duplicates of their events (and
// their records of their deliveries), and the rest are stored then. No leg
// is lost, none is logged twice.
func (p *Pipeline) flushOne(ctx context.Context, platform string, f connector.Flusher, key string, data []byte) (logged int, deleted bool, err error) {
	unlock, err := p.states.Lock(ctx, platform+"\x00"+key)
	if err != nil {
		return 0, false, err
	}
	defer unlock()
	cur, err := p.DB.State(ctx, platform, key)
	if err != nil {
		return 0, false, err
	}
	if cur == nil || !bytes.Equal(cur, data) {
		return 0, false, nil // updated or deleted meanwhile
	}
	legs, err := f.FlushLegs(cur)
	switch {
	case errors.Is(err, connector.ErrInProgress):
		return 0, false, nil
	case err != nil:
		// Left for the retention to purge: logging a damaged snapshot
		// would guess, and refusing it must not stop the others.
		p.logger().Warn("stale snapshot cannot be flushed", "platform", platform, "key", key, "err", err)
		return 0, false, nil
	}
	if len(legs) == 0 {
		// Logged already: one event that deletes the snapshot.
		legs = []*connector.Interaction{nil}
	}
	for i, in := range legs {
		last := i == len(legs)-1
		ev := connector.Event{Platform: platform, Type: FlushEventType, Key: "flush:" + key, Interaction: in}
		reason, leg := "the interaction was logged already; its last event never came", ""
		if in != nil {
			leg = in.Leg
			ev.Key += ":" + leg
			reason = "the interaction ended but its completing event never came"
			// Both sources say why under this key (genesys.FlagFlushed,
			// five9.FlagFlushed).
			if r, ok := in.Attached["ctibridge_flushed"].(string); ok && r != "" {
				reason = r
			}
		}
		if last {
			ev.StateKey = key // State nil: deleted
		}
		body, err := marshal(struct {
			Flush  string `json:"flush"`
			Leg    string `json:"leg,omitempty"`
			Reason string `json:"reason"`
		}{key, leg, reason})
		if err != nil {
			return logged, false, err
		}
		res, err := p.store(ctx, ev, body)
		if err == nil && res.Duplicate && last {
			// The same key was flushed before (a late event made a new
			// snapshot under it, or a crash came before the deletion):
			// this flush is another event, which deletes the snapshot.
			// Its records are those of the earlier one, not sent twice.
			ev.Key += ":" + strconv.FormatInt(p.now().UnixMilli(), 10)
			res, err = p.store(ctx, ev, body)
		}
		if err != nil {
			return logged, false, fmt.Errorf("flush %s: %w", key, err)
		}
		if in != nil && !res.Duplicate {
			logged++
		}
	}
	return logged, true, nil
}
