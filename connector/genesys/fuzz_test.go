package genesys

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
)

// FuzzDecode decodes arbitrary bodies against arbitrary stored snapshots.
// It is seeded with every fixture line, each with no snapshot and with the
// snapshot the replay had stored before it.
func FuzzDecode(f *testing.F) {
	for _, file := range sequences(f) {
		m := newDaemon(testDecoder())
		for i, body := range lines(f, file) {
			var prev []byte
			if ev, err := testDecoder().Decode(body, nil); err == nil && ev.StateKey != "" {
				prev = m.states[ev.StateKey]
			}
			f.Add(body, []byte(nil))
			if prev != nil {
				f.Add(body, prev)
			}
			if _, err := m.post(i, body); err != nil {
				f.Fatal(err)
			}
		}
	}
	f.Add(msg("REMOVED", call, stamp), []byte(`{"v":1,"id":"CU1","legs":[{"emitted":true},{},{},{},{},{}]}`))
	f.Add([]byte(`{"source":"gws","data":{"messageType":"m","call":{"callUuid":"CU1","state":"Completed","userData":{"a":1e999}}}}`), []byte(nil))

	f.Fuzz(func(t *testing.T, body, snapshot []byte) {
		for _, state := range []connector.StateFunc{nil, func(string) ([]byte, error) { return snapshot, nil }} {
			ev, err := testDecoder().Decode(body, state)
			if err != nil {
				if !errors.Is(err, connector.ErrBadPayload) && !errors.Is(err, connector.ErrUnknownEvent) {
					t.Fatalf("error %q wraps neither ErrBadPayload nor ErrUnknownEvent", err)
				}
				continue
			}
			check(t, ev)
		}
	})
}

// check asserts what the daemon relies on in an accepted Event.
func check(t *testing.T, ev connector.Event) {
	t.Helper()
	if ev.Platform != Platform || ev.Key == "" || ev.Type == "" {
		t.Fatalf("event %+v: wrong Platform or empty Key or Type", ev)
	}
	if ev.State != nil {
		if ev.StateKey == "" {
			t.Fatal("State without a StateKey")
		}
		if len(ev.State) > maxSnapshotBytes {
			t.Fatalf("State is %d bytes", len(ev.State))
		}
		if s := loadSnapshot(ev.State, ev.StateKey); len(s.Legs) == 0 {
			t.Fatalf("stored State cannot be read back: %s", ev.State)
		}
	}
	in := ev.Interaction
	if in == nil {
		return
	}
	if ev.StateKey == "" || in.ID != ev.StateKey || in.Platform != Platform {
		t.Fatalf("Interaction %q %q for StateKey %q", in.Platform, in.ID, ev.StateKey)
	}
	switch in.Channel {
	case connector.ChannelVoice, connector.ChannelChat, connector.ChannelEmail, connector.ChannelOther:
	default:
		t.Fatalf("Channel %q", in.Channel)
	}
	switch in.Direction {
	case connector.DirectionInbound, connector.DirectionOutbound, connector.DirectionInternal, connector.DirectionUnknown:
	default:
		t.Fatalf("Direction %q", in.Direction)
	}
	if in.Duration < 0 || in.End == nil {
		t.Fatalf("Duration %d, End %v", in.Duration, in.End)
	}
	// The outbox stores the interaction as JSON, so it must encode.
	if _, err := json.Marshal(in); err != nil {
		t.Fatalf("Marshal: %v", err)
	}
}
