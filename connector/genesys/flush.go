package genesys

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/ctibridge/ctibridge/connector"
)

// FlagFlushed is set, with the reason, on an interaction that FlushLegs
// emitted from a stale snapshot because its done event never came.
const FlagFlushed = "ctibridge_flushed"

// flushReason is FlagFlushed's value.
const flushReason = "no MARKDONE_APPLY, COMPLETED or REMOVED after the interaction ended"

// FlushLegs implements connector.Flusher. It returns the legs of a stale
// snapshot whose conversation ended (RELEASED, ENDED or COMPLETED seen) but
// that were never emitted, because the done event never came (the agent
// closed the tab before MARKDONE_APPLY), in the order they ended, each
// flagged with FlagIncomplete and FlagFlushed. The snapshot holds one leg
// per agent: both agents of a transferred call may have left without
// marking it done, and each is logged. A snapshot with a leg still ringing
// or talking is in progress (connector.ErrInProgress); one whose legs were
// all emitted already, the marker kept until REMOVED, has nothing to log
// (nil, nil).
func (d Decoder) FlushLegs(state []byte) ([]*connector.Interaction, error) {
	if len(state) == 0 || len(state) > maxSnapshotBytes {
		return nil, fmt.Errorf("genesys: flush: snapshot of %d bytes", len(state))
	}
	var s snapshot
	if err := json.Unmarshal(state, &s); err != nil {
		return nil, fmt.Errorf("genesys: flush: snapshot is not readable: %v", err)
	}
	if s.V != snapshotVersion || s.ID == "" {
		return nil, fmt.Errorf("genesys: flush: snapshot version %d of %q is not %d", s.V, s.ID, snapshotVersion)
	}
	var pending []*leg
	for _, l := range s.Legs {
		switch {
		case l == nil || l.Emitted:
		case l.Ended == nil:
			return nil, fmt.Errorf("genesys: flush %s: %w", s.ID, connector.ErrInProgress)
		default:
			pending = append(pending, l)
		}
	}
	slices.SortStableFunc(pending, func(a, b *leg) int { return a.Ended.Compare(*b.Ended) })
	var out []*connector.Interaction
	for _, l := range pending {
		in := d.interaction(s.ID, l, *l.Ended, nil)
		if in.Attached == nil {
			in.Attached = map[string]any{}
		}
		in.Attached[FlagIncomplete] = true
		in.Attached[FlagFlushed] = flushReason
		out = append(out, in)
	}
	return out, nil
}
