package genesys

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
)

// replayUntil decodes the events of testdata/name.jsonl, skipping those
// for which skip is true, and returns the snapshots left behind.
func replayUntil(t *testing.T, name string, skip func(line string) bool) map[string][]byte {
	t.Helper()
	f, err := os.Open("testdata/" + name + ".jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	states := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || skip(line) {
			continue
		}
		ev, err := Decoder{}.Decode([]byte(line), func(k string) ([]byte, error) { return states[k], nil })
		if err != nil {
			t.Fatalf("Decode(%.80s): %v", line, err)
		}
		if ev.Interaction != nil {
			t.Fatalf("Decode(%.80s) emitted an interaction", line)
		}
		if ev.StateKey != "" {
			if ev.State == nil {
				delete(states, ev.StateKey)
			} else {
				states[ev.StateKey] = ev.State
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return states
}

func only(t *testing.T, states map[string][]byte) []byte {
	t.Helper()
	if len(states) != 1 {
		t.Fatalf("%d snapshots, want 1", len(states))
	}
	for _, b := range states {
		return b
	}
	return nil
}

func TestFlush_ReleasedNeverDone(t *testing.T) {
	var _ connector.Flusher = Decoder{}
	states := replayUntil(t, "inbound-call", func(l string) bool {
		return strings.Contains(l, `"MARKDONE_APPLY"`) || strings.Contains(l, `"REMOVED"`)
	})
	in, err := flush(t, only(t, states))
	if err != nil || in == nil {
		t.Fatalf("Flush = %v, %v; want the interaction", in, err)
	}
	if in.Platform != Platform || in.ID == "" || in.Channel != connector.ChannelVoice || in.Start == nil || in.End == nil || in.Duration <= 0 {
		t.Errorf("Flush = %+v", in)
	}
	if in.Attached[FlagIncomplete] != true || in.Attached[FlagFlushed] != flushReason {
		t.Errorf("Attached = %v, want %s and %s", in.Attached, FlagIncomplete, FlagFlushed)
	}
}

func TestFlush_Established(t *testing.T) {
	released := false
	states := replayUntil(t, "inbound-call", func(l string) bool {
		released = released || strings.Contains(l, `"RELEASED"`)
		return released
	})
	in, err := flush(t, only(t, states))
	if in != nil || !errors.Is(err, connector.ErrInProgress) {
		t.Errorf("Flush = %v, %v; want nil, ErrInProgress", in, err)
	}
}

func TestFlush_Emitted(t *testing.T) {
	// Done but not REMOVED: the marker of an emitted leg.
	removed := false
	states := replayUntil(t, "inbound-call", func(l string) bool {
		removed = removed || strings.Contains(l, `"MARKDONE_APPLY"`)
		return removed
	})
	// Apply MARKDONE_APPLY by hand, keeping the marker it leaves.
	b, err := os.ReadFile("testdata/inbound-call.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `"MARKDONE_APPLY"`) {
			continue
		}
		ev, err := Decoder{}.Decode([]byte(line), func(k string) ([]byte, error) { return states[k], nil })
		if err != nil || ev.Interaction == nil || ev.State == nil {
			t.Fatalf("MARKDONE_APPLY: %+v, %v", ev, err)
		}
		states[ev.StateKey] = ev.State
	}
	in, err := flush(t, only(t, states))
	if in != nil || err != nil {
		t.Errorf("Flush = %v, %v; want nil, nil", in, err)
	}
}

func TestFlush_Damaged(t *testing.T) {
	for _, state := range []string{``, `{`, `[]`, `{"v":99,"id":"x","legs":[]}`, `{"v":1,"legs":[]}`} {
		in, err := flush(t, []byte(state))
		if in != nil || err == nil || errors.Is(err, connector.ErrInProgress) {
			t.Errorf("Flush(%s) = %v, %v; want an error", state, in, err)
		}
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
