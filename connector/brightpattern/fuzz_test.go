package brightpattern_test

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

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

// FuzzDecode_SameAsOld runs the one-pass decoder and the one it replaced
// (OldDecode, oracle_test.go) on the same body: the same Event, field for
// field, or the same error.
func FuzzDecode_SameAsOld(f *testing.F) {
	for _, file := range events(f) {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	for _, s := range []string{
		`{"event":"ON_INTERACTION_END","data":{"interactionId":"i","type":"voice","associatedObjects":{"a":[{"id":1}]}}}`,
		` {"\u0065vent" : "ON_SAVE_ACTIVITY_RECORD" , "data" : { "interactionId" : " i\u0031 " , "type" : "Voice" , "attachedData" : {"a":[1, -0.5e3, {"b":null}], "c":"\ud800"} , "callParties" : [ null , {"phone":" 1 "} ] } } `,
		`{"event":"ON_SAVE_ACTIVITY_RECORD","data":{"interactionId":"i","type":"voice","attachedData":{"a":[1,1e999,2e999]}}}`,
		`{"event":"ON_SAVE_ACTIVITY_RECORD","agentId":"a\u0001","data":{"interactionId":"i","type":"voice","a":1,"a":2}}`,
		`{"event":"ON_SAVE_ACTIVITY_RECORD","data":{"interactionId":"i","type":"voice","startTime":1e999,"duration":"x"}}`,
		"{\"event\":\"ON_SAVE_ACTIVITY_RECORD\",\"data\":{\"interactionId\":\"i\",\"type\":\"voice\",\"subject\":\"caf\xe9\"}}",
		`{"event":"ON_SAVE_ACTIVITY_RECORD","data":{"interactionId":"i","type":"voice","callParties":[{"name":"a"},7]}}`,
		`{"event":"ON_SAVE_ACTIVITY_RECORD","data":{"interactionId":"i","type":"voice","associatedObjects":[{"id":" 7 ","type":"lead"},{"id":2.50}]}}`,
	} {
		f.Add([]byte(s))
	}
	now := func() time.Time { return time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC) }
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, logOnEnd := range []bool{false, true} {
			d := brightpattern.Decoder{LogOnEnd: logOnEnd, Now: now}
			got, err := d.Decode(body, nil)
			want, wantErr := brightpattern.OldDecode(d, body)
			if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
				t.Fatalf("Decode(%q) error %v, the old decoder's %v", body, err, wantErr)
			}
			if err != nil {
				for _, target := range []error{connector.ErrBadPayload, connector.ErrUnknownEvent} {
					if errors.Is(err, target) != errors.Is(wantErr, target) {
						t.Fatalf("Decode(%q) error %v wraps other errors than the old decoder's", body, err)
					}
				}
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Decode(%q) =\n%+v\nthe old decoder's\n%+v", body, got, want)
			}
		}
	})
}
