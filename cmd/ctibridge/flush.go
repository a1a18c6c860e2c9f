package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// flushBatch bounds the stale snapshots one run of the flush job reads per
// platform; the next run takes the rest.
const flushBatch = 1000

// flushEventType is the Event.Type of the synthetic events the flush job
// stores.
const flushEventType = "FLUSH"

// flushAfter is how long a platform's snapshots wait for their completing
// event before the flush job logs them; 0 never.
func (c *Config) flushAfter(platform string) time.Duration {
	switch platform {
	case "genesys":
		return c.Sources.Genesys.FlushAfter
	case "five9":
		return c.Sources.Five9.FlushAfter
	}
	return 0
}

// flushStale logs the interactions whose conversation is over but whose
// completing event never came (the agent closed the browser tab before
// Genesys MARKDONE_APPLY, Five9 callFinished never arrived): for each
// source that keeps snapshots (connector.Flusher), the snapshots not updated
// for its flush_after are flushed, each by a synthetic FLUSH event stored
// like a real one, which deletes the snapshot in the same transaction.
func (m *Main) flushStale() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	platforms := make([]string, 0, len(m.decoders))
	for p := range m.decoders {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	for _, platform := range platforms {
		f, ok := m.decoders[platform].(connector.Flusher)
		after := m.Config.flushAfter(platform)
		if !ok || after <= 0 {
			continue
		}
		flushed, deleted, err := m.flushPlatform(ctx, platform, f, time.Now().Add(-after))
		if err != nil {
			m.Logger.Error("flushing stale snapshots failed", "platform", platform, "err", err,
				"flushed", flushed, "deleted", deleted)
			continue
		}
		if flushed > 0 || deleted > 0 {
			m.Logger.Info("flushed interactions whose completing event never came", "platform", platform,
				"flushed", flushed, "deleted", deleted, "older_than", after)
		}
	}
}

// flushPlatform flushes the snapshots of platform not updated since
// before. It returns how many interactions were logged and how many
// snapshots of interactions logged already were deleted.
func (m *Main) flushPlatform(ctx context.Context, platform string, f connector.Flusher, before time.Time) (flushed, deleted int, err error) {
	states, err := m.DB.StaleStates(ctx, platform, before, flushBatch)
	if err != nil {
		return 0, 0, err
	}
	for _, s := range states {
		in, done, err := m.flushOne(ctx, platform, f, s.Key, s.Data)
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
func (m *Main) flushOne(ctx context.Context, platform string, f connector.Flusher, key string, data []byte) (logged, deleted bool, err error) {
	unlock := m.states.lock(platform + "\x00" + key)
	defer unlock()
	cur, err := m.DB.State(ctx, platform, key)
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
		m.Logger.Warn("stale snapshot cannot be flushed", "platform", platform, "key", key, "err", err)
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
	ev := connector.Event{Platform: platform, Type: flushEventType, Key: "flush:" + key,
		Interaction: in, StateKey: key, State: nil}
	res, err := m.store(ctx, ev, body)
	if err == nil && res.Duplicate {
		// The same key was flushed before (a late event made a new
		// snapshot under it): this flush is another event.
		ev.Key += ":" + strconv.FormatInt(time.Now().UnixMilli(), 10)
		res, err = m.store(ctx, ev, body)
	}
	if err != nil {
		return false, false, fmt.Errorf("flush %s: %w", key, err)
	}
	return in != nil && !res.Duplicate, !res.Duplicate, nil
}
