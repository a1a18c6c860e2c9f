package brightpattern_test

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/brightpattern"
)

func FuzzDecode(f *testing.F) {
	for _, file := range events(f) {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"event":"ON_INTERACTION_END","data":{"interactionId":"i","type":"voice","associatedObjects":{"a":[{"id":1}]}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := brightpattern.Decoder{LogOnEnd: true}.Decode(body, nil)
		if err != nil {
			if !errors.Is(err, connector.ErrBadPayload) && !errors.Is(err, connector.ErrUnknownEvent) {
				t.Fatalf("error %q wraps neither ErrBadPayload nor ErrUnknownEvent", err)
			}
			return
		}
		if ev.Key == "" || ev.Platform != brightpattern.Platform {
			t.Fatalf("event %+v: empty Key or wrong Platform", ev)
		}
		in := ev.Interaction
		if in == nil {
			return
		}
		if in.ID == "" {
			t.Fatal("empty Interaction.ID")
		}
		switch in.Channel {
		case connector.ChannelVoice, connector.ChannelChat, connector.ChannelEmail, connector.ChannelOther:
		default:
			t.Fatalf("Channel %q", in.Channel)
		}
		switch in.Direction {
		case connector.DirectionInbound, connector.DirectionOutbound, connector.DirectionUnknown:
		default:
			t.Fatalf("Direction %q", in.Direction)
		}
		if in.Duration < 0 {
			t.Fatalf("Duration %d", in.Duration)
		}
		// The outbox stores the interaction as JSON, so it must encode.
		if _, err := json.Marshal(in); err != nil {
			t.Fatalf("Marshal: %v", err)
		}
	})
}
