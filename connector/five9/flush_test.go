package five9

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
)

// snapshotUntil decodes testdata/inbound-call.jsonl up to, not including,
// the first event named stop and returns the one snapshot left behind.
func snapshotUntil(t *testing.T, stop string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/inbound-call.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	states := map[string][]byte{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.Contains(line, `"event":"`+stop+`"`) {
			break
		}
		ev, err := Decoder{}.Decode([]byte(line), func(k string) ([]byte, error) { return states[k], nil })
		if err != nil {
			t.Fatal(err)
		}
		states[ev.StateKey] = ev.State
	}
	if len(states) != 1 {
		t.Fatalf("%d snapshots, want 1", len(states))
	}
	for _, s := range states {
		return s
	}
	return nil
}

func TestFlush_EndedNeverFinished(t *testing.T) {
	var _ connector.Flusher = Decoder{}
	in, err := flush(t, snapshotUntil(t, "callFinished"))
	if err != nil || in == nil {
		t.Fatalf("Flush = %v, %v; want the interaction", in, err)
	}
	if in.Platform != Platform || in.ID != "45E471D607A94072A553A1406CC0BF03" || in.Channel != connector.ChannelVoice ||
		in.Direction != connector.DirectionInbound || in.Duration != 385 || in.Who == nil {
		t.Errorf("Flush = %+v", in)
	}
	if in.Attached[FlagIncomplete] != true || in.Attached[FlagFlushed] != flushReason {
		t.Errorf("Attached = %v, want %s and %s", in.Attached, FlagIncomplete, FlagFlushed)
	}
}

// TestFlushLegs: a Five9 snapshot is one agent's leg, flushed as a list of
// one with the agent as its leg; a leg in progress is none.
func TestFlushLegs(t *testing.T) {
	legs, err := Decoder{}.FlushLegs(snapshotUntil(t, "callFinished"))
	if err != nil || len(legs) != 1 || legs[0].Leg == "" || legs[0].Leg != legs[0].Agent.ID {
		t.Fatalf("FlushLegs = %v, %v; want one leg, the agent's", legs, err)
	}
	legs, err = Decoder{}.FlushLegs(snapshotUntil(t, "callEnded"))
	if legs != nil || !errors.Is(err, connector.ErrInProgress) {
		t.Errorf("FlushLegs of a call in progress = %v, %v", legs, err)
	}
}

func TestFlush_Accepted(t *testing.T) {
	in, err := flush(t, snapshotUntil(t, "callEnded"))
	if in != nil || !errors.Is(err, connector.ErrInProgress) {
		t.Errorf("Flush = %v, %v; want nil, ErrInProgress", in, err)
	}
}

func TestFlush_Damaged(t *testing.T) {
	for _, state := range []string{``, `{`, `[]`, `{"v":2,"id":"x"}`, `{"v":1,"endedAt":"2026-11-21T14:31:25Z"}`} {
		in, err := flush(t, []byte(state))
		if in != nil || err == nil || errors.Is(err, connector.ErrInProgress) {
			t.Errorf("Flush(%q) = %v, %v; want an error", state, in, err)
		}
	}
	if _, err := flush(t, nil); err == nil {
		t.Error("Flush(nil): no error")
	}
}

// flush is FlushLegs of a snapshot that holds at most one unlogged leg.
func flush(t *testing.T, state []byte) (*connector.Interaction, error) {
	t.Helper()
	legs, err := Decoder{}.FlushLegs(state)
	if len(legs) > 1 {
		t.Fatalf("FlushLegs = %d legs, want at most 1", len(legs))
	}
	if len(legs) == 0 {
		return nil, err
	}
	return legs[0], err
}
