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
// source that keeps snapshots (connector.Flusher), the snapshots not updated
// for after[platform] are flushed, each by a synthetic FLUSH event stored
// like a real one, which deletes the snapshot in the same transaction.
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
// before. It returns how many interactions were logged and how many
// snapshots of interactions logged already were deleted.
func (p *Pipeline) flushPlatform(ctx context.Context, platform string, f connector.Flusher, before time.Time) (flushed, deleted int, err error) {
	states, err := p.DB.StaleStates(ctx, platform, before, flushBatch)
	if err != nil {
		return 0, 0, err
	}
	for _, s := range states {
		in, done, err := p.flushOne(ctx, platform, f, s.Key, s.Data)
		if err != nil {
			return flushed, deleted, err
		}
		switch {
		case in:
			flushed++
		case done:
			deleted++
		}
	}
	return flushed, deleted, nil
}

// flushOne flushes one snapshot under its interaction's lock, so that it
// cannot race a late real event: when the snapshot changed since it was
// read, it is left for a later run. It reports whether an interaction was
// logged, and whether the snapshot was deleted.
func (p *Pipeline) flushOne(ctx context.Context, platform string, f connector.Flusher, key string, data []byte) (logged, deleted bool, err error) {
	unlock := p.states.lock(platform + "\x00" + key)
	defer unlock()
	cur, err := p.DB.State(ctx, platform, key)
	if err != nil {
		return false, false, err
	}
	if cur == nil || !bytes.Equal(cur, data) {
		return false, false, nil // updated or deleted meanwhile
	}
	in, err := f.Flush(cur)
	switch {
	case errors.Is(err, connector.ErrInProgress):
		return false, false, nil
	case err != nil:
		// Left for the retention to purge: logging a damaged snapshot
		// would guess, and refusing it must not stop the others.
		p.logger().Warn("stale snapshot cannot be flushed", "platform", platform, "key", key, "err", err)
		return false, false, nil
	}
	reason := "the interaction was logged already; its last event never came"
	if in != nil {
		reason = "the interaction ended but its completing event never came"
		// Both sources say why under this key (genesys.FlagFlushed,
		// five9.FlagFlushed).
		if r, ok := in.Attached["ctibridge_flushed"].(string); ok && r != "" {
			reason = r
		}
	}
	body, err := marshal(struct {
		Flush  string `json:"flush"`
		Reason string `json:"reason"`
	}{key, reason})
	if err != nil {
		return false, false, err
	}
	ev := connector.Event{Platform: platform, Type: FlushEventType, Key: "flush:" + key,
		Interaction: in, StateKey: key, State: nil}
	res, err := p.store(ctx, ev, body)
	if err == nil && res.Duplicate {
		// The same key was flushed before (a late event made a new
		// snapshot under it): this flush is another event.
		ev.Key += ":" + strconv.FormatInt(p.now().UnixMilli(), 10)
		res, err = p.store(ctx, ev, body)
	}
	if err != nil {
		return false, false, fmt.Errorf("flush %s: %w", key, err)
	}
	return in != nil && !res.Duplicate, !res.Duplicate, nil
}
