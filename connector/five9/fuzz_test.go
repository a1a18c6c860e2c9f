package five9_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/five9"
)

// FuzzDecode feeds arbitrary bodies and arbitrary stored snapshots: the
// decoder must never panic, must classify every payload error, and must
// hand back a snapshot that it can read again.
func FuzzDecode(f *testing.F) {
	for _, file := range sequences(f) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			f.Add(line, []byte(nil))
		}
	}
	f.Add([]byte(`{"event":"callFinished","params":{"callData":{"interactionId":"i"}}}`),
		[]byte(`{"v":1,"cavs":[{"key":"a.b","value":"x"}],"start":"2026-11-21T14:25:00Z","duration":5}`))
	f.Add([]byte(`{"event":"objectSelected","params":{"interactionType":"Chat","interactionData":{"interactionId":"i"}},"nameObject":{"id":1}}`),
		[]byte(`{"v":1,"cavs":[{"key":"a","value":{}}],"nameObject":{"id":"z","isWho":false}}`))
	f.Fuzz(func(t *testing.T, body, stored []byte) {
		loads := 0
		ev, err := five9.Decoder{}.Decode(body, func(string) ([]byte, error) {
			loads++
			return stored, nil
		})
		if loads > 1 {
			t.Fatalf("state loaded %d times", loads)
		}
		if err != nil {
			if !errors.Is(err, connector.ErrBadPayload) && !errors.Is(err, connector.ErrUnknownEvent) {
				t.Fatalf("error %q wraps neither ErrBadPayload nor ErrUnknownEvent", err)
			}
			return
		}
		if ev.Key == "" || ev.StateKey == "" || ev.Platform != five9.Platform || loads != 1 {
			t.Fatalf("event %+v after %d loads", ev, loads)
		}
		if ev.State != nil {
			// The snapshot must read back: the next event of the
			// interaction gets it.
			next := []byte(`{"event":"callFinished","params":{"callData":{"interactionId":"i"}}}`)
			again, err := five9.Decoder{}.Decode(next, func(string) ([]byte, error) { return ev.State, nil })
			if err != nil {
				t.Fatalf("decode with the returned snapshot: %v", err)
			}
			var raw struct {
				SnapshotError string `json:"snapshotError"`
			}
			if err := json.Unmarshal(again.Interaction.Raw, &raw); err != nil || raw.SnapshotError != "" {
				t.Fatalf("returned snapshot %s does not read back: %v %s", ev.State, err, raw.SnapshotError)
			}
			if len(ev.State) > len(body)+len(stored)+64<<10 {
				t.Fatalf("snapshot of %d bytes from a %d-byte body and a %d-byte snapshot", len(ev.State), len(body), len(stored))
			}
		}
		in := ev.Interaction
		if in == nil {
			return
		}
		if in.ID == "" || in.Platform != five9.Platform {
			t.Fatalf("ID %q, Platform %q", in.ID, in.Platform)
		}
		switch in.Channel {
		case connector.ChannelVoice, connector.ChannelChat, connector.ChannelEmail:
		default:
			t.Fatalf("Channel %q", in.Channel)
		}
		switch in.Direction {
		case connector.DirectionInbound, connector.DirectionOutbound, connector.DirectionInternal, connector.DirectionUnknown:
		default:
			t.Fatalf("Direction %q", in.Direction)
		}
		if in.Duration < 0 {
			t.Fatalf("Duration %d", in.Duration)
		}
		// The daemon stores the interaction as JSON, so it must encode.
		if _, err := json.Marshal(in); err != nil {
			t.Fatalf("Marshal: %v", err)
		}
	})
}
