package five9

import (
	"fmt"

	"github.com/ctibridge/ctibridge/connector"
)

// Keys that Flush adds to Interaction.Attached, named as the Genesys
// source's flags. Whatever CAV has these keys is replaced.
const (
	// FlagIncomplete is true when the interaction was emitted without the
	// *Finished event that carries its wrap-up (disposition, notes).
	FlagIncomplete = "ctibridge_incomplete"
	// FlagFlushed says why Flush emitted the interaction.
	FlagFlushed = "ctibridge_flushed"
	// FlagNoDisposition is true when the interaction ended without a
	// disposition: none in the wrap-up's log data or params, so the agent
	// chose none or the bridge could not see it. A mapping can log it as
	// such rather than with a blank outcome.
	FlagNoDisposition = "ctibridge_no_disposition"
)

// flushReason is FlagFlushed's value.
const flushReason = "no *Finished after the interaction ended"

// FlushLegs implements connector.Flusher: it emits the interaction of a
// stale snapshot whose *Ended was seen but whose *Finished never came (the
// agent closed the tab during wrap-up), flagged with FlagIncomplete and
// FlagFlushed. A Five9 snapshot is one agent's leg (it is keyed by
// interaction id and agent id), so it returns a list of one. A snapshot
// without a *Ended (still ringing or talking, or an email, which has none)
// is in progress: connector.ErrInProgress.
func (d Decoder) FlushLegs(state []byte) ([]*connector.Interaction, error) {
	if state == nil {
		return nil, fmt.Errorf("five9: flush: no snapshot")
	}
	f, err := loadSnapshot(state)
	if err != nil {
		return nil, fmt.Errorf("five9: flush: %w", err)
	}
	if f.ID == "" {
		return nil, fmt.Errorf("five9: flush: snapshot has no interaction id")
	}
	if f.EndedAt == nil {
		return nil, fmt.Errorf("five9: flush %s: %w", f.ID, connector.ErrInProgress)
	}
	var fam string
	for _, c := range []string{familyCall, familyChat, familyEmail} {
		if channelOf(c) == f.Channel {
			fam = c
		}
	}
	ev := &event{family: fam, id: f.ID, receivedAt: f.EndedAt, facts: &facts{}}
	in, err := ev.interaction(f, nil, state, nil)
	if err != nil {
		return nil, err
	}
	if in.Attached == nil {
		in.Attached = map[string]any{}
	}
	in.Attached[FlagIncomplete] = true
	in.Attached[FlagFlushed] = flushReason
	return []*connector.Interaction{in}, nil
}
