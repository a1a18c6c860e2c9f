package brightpattern_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/brightpattern"
)

var update = flag.Bool("update", false, "rewrite testdata/*.want.json from the decoder's output")

// events returns the testdata event files, without their goldens.
func events(t testing.TB) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".want.json") {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Fatal("no testdata events")
	}
	return files
}

// TestDecode_Golden decodes each testdata/NAME.json and compares the whole
// Event with testdata/NAME.want.json. Run with -update to rewrite the
// goldens, then read the diff: the goldens are the spec.
func TestDecode_Golden(t *testing.T) {
	for _, file := range events(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := brightpattern.Decoder{Now: func() time.Time { return testNow }}.Decode(body, nil)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got, err := json.MarshalIndent(ev, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			wantFile := strings.TrimSuffix(file, ".json") + ".want.json"
			if *update {
				if err := os.WriteFile(wantFile, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the decoded event; got:\n%s", wantFile, got)
			}
		})
	}
}

// TestDecode_Example keeps the newcomer's curl sample decodable.
func TestDecode_Example(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "..", "examples", "events", "brightpattern-call.json"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := brightpattern.Decoder{}.Decode(body, nil)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	in := ev.Interaction
	if in == nil || in.Disposition == nil || in.Disposition.Name != "Sale Closed" || in.Who == nil || len(in.Parties) != 1 {
		t.Errorf("example decoded to %+v", in)
	}
}

func TestDecode_Err(t *testing.T) {
	const hdr = `{"event":"ON_SAVE_ACTIVITY_RECORD","data":`
	// withData wraps data members after a valid interactionId and type.
	withData := func(members string) string {
		return hdr + `{"interactionId":"i1","type":"voice",` + members + `}}`
	}
	tests := []struct {
		name  string
		body  string
		want  error
		field string // must appear in the message
	}{
		{"Empty", ``, connector.ErrBadPayload, "malformed JSON"},
		{"Truncated", `{"event":"ON_SAVE_ACTIVITY_RECORD"`, connector.ErrBadPayload, "malformed JSON"},
		{"Garbage", `event=ON_SAVE_ACTIVITY_RECORD`, connector.ErrBadPayload, "malformed JSON"},
		{"TrailingGarbage", `{"event":"ON_SAVE_ACTIVITY_RECORD"} x`, connector.ErrBadPayload, "malformed JSON"},
		{"NotObject", `["ON_SAVE_ACTIVITY_RECORD"]`, connector.ErrBadPayload, "want a JSON object, got array"},
		{"Null", `null`, connector.ErrBadPayload, "want a JSON object, got null"},
		{"EventMissing", `{"data":{"interactionId":"i1","type":"voice"}}`, connector.ErrBadPayload, "event: required"},
		{"IDHuge", hdr + `{"interactionId":"` + strings.Repeat("7", 100<<10) + `","type":"voice"}}`, connector.ErrBadPayload, "data.interactionId: 102400 bytes is longer than an id can be (128)"},
		{"IDControl", hdr + `{"interactionId":"i\r\n1","type":"voice"}}`, connector.ErrBadPayload, "data.interactionId: holds the control character U+000D"},
		{"AgentIDControl", `{"event":"ON_SAVE_ACTIVITY_RECORD","agentId":"a\u00001","data":{"interactionId":"i1","type":"voice"}}`, connector.ErrBadPayload, "agentId: holds the control character U+0000"},
		{"EventTwice", `{"event":"ON_INTERACTION_END","data":{"interactionId":"i1","type":"voice"},"event":"ON_SAVE_ACTIVITY_RECORD"}`, connector.ErrBadPayload, "event: appears twice"},
		{"DescriptionNotUTF8", withData("\"description\":\"\xed\xa0\x80\""), connector.ErrBadPayload, "data.description: text that is not valid UTF-8"},
		{"EventBlank", `{"event":"  ","data":{}}`, connector.ErrBadPayload, "event: required"},
		{"EventNotString", `{"event":7,"data":{}}`, connector.ErrBadPayload, "event: want string, got number"},
		{"EventUnknown", `{"event":"ON_CALL_STARTED","data":{}}`, connector.ErrUnknownEvent, `"ON_CALL_STARTED"`},
		{"EventWrongCase", `{"event":"on_save_activity_record","data":{}}`, connector.ErrUnknownEvent, "ON_SAVE_ACTIVITY_RECORD and ON_INTERACTION_END"},
		{"AgentIDNotString", `{"event":"ON_SAVE_ACTIVITY_RECORD","agentId":42,"data":{}}`, connector.ErrBadPayload, "agentId: want string, got number"},
		{"ReceivedAtNotTime", `{"event":"ON_SAVE_ACTIVITY_RECORD","receivedAt":"yesterday","data":{}}`, connector.ErrBadPayload, "receivedAt: want an RFC 3339 time"},
		{"DataMissing", `{"event":"ON_SAVE_ACTIVITY_RECORD"}`, connector.ErrBadPayload, "data: required"},
		{"DataNull", hdr + `null}`, connector.ErrBadPayload, "data: required"},
		{"DataArray", hdr + `[]}`, connector.ErrBadPayload, "data: want object, got array"},
		{"DataString", hdr + `"{}"}`, connector.ErrBadPayload, "data: want object, got string"},
		{"InteractionIDMissing", hdr + `{"type":"voice"}}`, connector.ErrBadPayload, "data.interactionId: required"},
		{"InteractionIDEmpty", hdr + `{"interactionId":" ","type":"voice"}}`, connector.ErrBadPayload, "data.interactionId: required"},
		{"InteractionIDNumber", hdr + `{"interactionId":123,"type":"voice"}}`, connector.ErrBadPayload, "data.interactionId: want string, got number"},
		{"TypeMissing", hdr + `{"interactionId":"i1"}}`, connector.ErrBadPayload, "data.type: required"},
		{"TypeNotString", hdr + `{"interactionId":"i1","type":["voice"]}}`, connector.ErrBadPayload, "data.type: want string, got array"},
		{"StartTimeString", withData(`"startTime":"1795271100000"`), connector.ErrBadPayload, "data.startTime: want number, got string"},
		{"EndTimeNegative", withData(`"endTime":-5`), connector.ErrBadPayload, "data.endTime: -5 is out of range"},
		{"EndTimeHuge", withData(`"endTime":1e300`), connector.ErrBadPayload, "data.endTime: 1e+300 is out of range"},
		{"StartTimeOverflow", withData(`"startTime":1e999`), connector.ErrBadPayload, "data.startTime: number 1e999 is out of range"},
		{"DurationBool", withData(`"duration":true`), connector.ErrBadPayload, "data.duration: want number, got boolean"},
		{"DurationHuge", withData(`"duration":1e12`), connector.ErrBadPayload, "data.duration: 1e+12 seconds is out of range"},
		{"DispositionObject", withData(`"disposition":{"name":"Sale"}`), connector.ErrBadPayload, "data.disposition: want string, got object"},
		{"SubjectNumber", withData(`"subject":1`), connector.ErrBadPayload, "data.subject: want string, got number"},
		{"DataAgentIDNumber", withData(`"agentId":1`), connector.ErrBadPayload, "data.agentId: want string, got number"},
		{"AttachedDataArray", withData(`"attachedData":[]`), connector.ErrBadPayload, "data.attachedData: want object, got array"},
		{"AttachedDataOverflow", withData(`"attachedData":{"a":{"b":1e999}}`), connector.ErrBadPayload, "data.attachedData: number 1e999 is out of range"},
		{"CallPartiesObject", withData(`"callParties":{}`), connector.ErrBadPayload, "data.callParties: want array, got object"},
		{"CallPartyString", withData(`"callParties":["Maria"]`), connector.ErrBadPayload, "data.callParties[0]: want object, got string"},
		{"CallPartyPhoneNumber", withData(`"callParties":[{"name":"M"},{"phone":14155550142}]`), connector.ErrBadPayload, "data.callParties[1].phone: want string, got number"},
		{"AssociatedObjectsString", withData(`"associatedObjects":"0035g00000XyZ12AAB"`), connector.ErrBadPayload, "data.associatedObjects: want object or array, got string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := brightpattern.Decoder{}.Decode([]byte(tt.body), nil)
			if err == nil {
				t.Fatalf("Decode(%s) = %+v, want error", tt.body, ev)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Decode(%s) error %q does not wrap %q", tt.body, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Decode(%s) error %q does not contain %q", tt.body, err, tt.field)
			}
			if strings.Contains(err.Error(), "Go ") || strings.Contains(err.Error(), "float64") {
				t.Errorf("Decode(%s) error %q leaks Go types", tt.body, err)
			}
		})
	}
}

func TestDecode_UnknownEventListsKnown(t *testing.T) {
	_, err := brightpattern.Decoder{}.Decode([]byte(`{"event":"ON_CALL_STARTED","data":{}}`), nil)
	for _, want := range []string{brightpattern.EventSaveActivityRecord, brightpattern.EventInteractionEnd} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not list %s", err, want)
		}
	}
}

func TestDecoder_LogOnEnd(t *testing.T) {
	body := func(event string) []byte {
		return []byte(`{"event":"` + event + `","agentId":"a1","data":{"interactionId":"i1","type":"voice"}}`)
	}
	tests := []struct {
		logOnEnd bool
		event    string
		wantIn   bool
	}{
		{false, brightpattern.EventSaveActivityRecord, true},
		{false, brightpattern.EventInteractionEnd, false},
		{true, brightpattern.EventSaveActivityRecord, true},
		{true, brightpattern.EventInteractionEnd, true},
	}
	for _, tt := range tests {
		ev, err := brightpattern.Decoder{LogOnEnd: tt.logOnEnd}.Decode(body(tt.event), nil)
		if err != nil {
			t.Fatalf("LogOnEnd=%v %s: %v", tt.logOnEnd, tt.event, err)
		}
		if got := ev.Interaction != nil; got != tt.wantIn {
			t.Errorf("LogOnEnd=%v %s: got Interaction %v, want %v", tt.logOnEnd, tt.event, got, tt.wantIn)
		}
		if want := tt.event + ":i1:a1"; ev.Key != want || ev.Type != tt.event || ev.Platform != "brightpattern" {
			t.Errorf("LogOnEnd=%v %s: got %q %q %q, want Key %q", tt.logOnEnd, tt.event, ev.Platform, ev.Type, ev.Key, want)
		}
	}
}

// decodeData decodes an ON_SAVE_ACTIVITY_RECORD event with the given data
// members after a valid interactionId.
func decodeData(t *testing.T, members string) *connector.Interaction {
	t.Helper()
	body := `{"event":"ON_SAVE_ACTIVITY_RECORD","data":{"interactionId":"i1",` + members + `}}`
	ev, err := brightpattern.Decoder{Now: func() time.Time { return testNow }}.Decode([]byte(body), nil)
	if err != nil {
		t.Fatalf("Decode(%s): %v", body, err)
	}
	return ev.Interaction
}

func TestDecode_ChannelDirection(t *testing.T) {
	tests := []struct{ typ, dir, wantCh, wantDir string }{
		{`"voice"`, `"inbound"`, "voice", "inbound"},
		{`"Voice"`, `"OUTBOUND"`, "voice", "outbound"},
		{`"chat"`, `null`, "chat", "unknown"},
		{`"email"`, `"internal"`, "email", "unknown"},
		{`"sms"`, `""`, "other", "unknown"},
		{`""`, `"sideways"`, "other", "unknown"},
	}
	for _, tt := range tests {
		in := decodeData(t, `"type":`+tt.typ+`,"callDirection":`+tt.dir)
		if in.Channel != tt.wantCh || in.Direction != tt.wantDir {
			t.Errorf("type %s, callDirection %s: got %q %q, want %q %q", tt.typ, tt.dir, in.Channel, in.Direction, tt.wantCh, tt.wantDir)
		}
	}
}

func TestDecode_Times(t *testing.T) {
	tests := []struct {
		name, members, wantStart, wantEnd string
		wantDuration                      int
	}{
		{"Millis", `"startTime":1795271100000,"endTime":1795271485000`, "2026-11-21T14:25:00Z", "2026-11-21T14:31:25Z", 385},
		{"Seconds", `"startTime":1795271100,"endTime":1795271485`, "2026-11-21T14:25:00Z", "2026-11-21T14:31:25Z", 385},
		{"DurationWins", `"startTime":1795271100,"endTime":1795271485,"duration":370.6`, "2026-11-21T14:25:00Z", "2026-11-21T14:31:25Z", 371},
		{"NegativeDurationFallsBack", `"startTime":1795271100,"endTime":1795271485,"duration":-1`, "2026-11-21T14:25:00Z", "2026-11-21T14:31:25Z", 385},
		{"EndBeforeStart", `"startTime":1795271485,"endTime":1795271100`, "2026-11-21T14:31:25Z", "2026-11-21T14:25:00Z", 0},
		// The end is never missing: without endTime, it is start plus
		// duration, or else when the event was received.
		{"ZeroIsUnset", `"startTime":0,"endTime":null`, "", "2026-11-21T15:00:00Z", 0},
		{"OnlyDuration", `"duration":12`, "2026-11-21T14:59:48Z", "2026-11-21T15:00:00Z", 12},
		{"StartAndDuration", `"startTime":1795271100,"duration":385`, "2026-11-21T14:25:00Z", "2026-11-21T14:31:25Z", 385},
		{"OnlyStart", `"startTime":1795272000`, "2026-11-21T14:40:00Z", "2026-11-21T15:00:00Z", 1200},
		{"EndAndDuration", `"endTime":1795271485,"duration":385`, "2026-11-21T14:25:00Z", "2026-11-21T14:31:25Z", 385},
		{"Nothing", ``, "", "2026-11-21T15:00:00Z", 0},
		{"EndPastYear9999", `"startTime":253402300799000,"duration":100`, "9999-12-31T23:59:59Z", "2026-11-21T15:00:00Z", 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := decodeData(t, `"type":"voice"`+strings.TrimSuffix(","+tt.members, ","))
			if got := fmtTime(in.Start); got != tt.wantStart {
				t.Errorf("Start = %q, want %q", got, tt.wantStart)
			}
			if got := fmtTime(in.End); got != tt.wantEnd {
				t.Errorf("End = %q, want %q", got, tt.wantEnd)
			}
			if in.Duration != tt.wantDuration {
				t.Errorf("Duration = %d, want %d", in.Duration, tt.wantDuration)
			}
		})
	}
}

// testNow is the receipt time of events without receivedAt.
var testNow = time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)

// TestDecode_ReceivedAtIsTheEnd: the smallest event the API allows (the
// required members only, no times) still has an end, the bridge's stamp.
func TestDecode_ReceivedAtIsTheEnd(t *testing.T) {
	body := `{"event":"ON_SAVE_ACTIVITY_RECORD","agentId":"a1","receivedAt":"2026-11-21T14:31:40Z","data":{"interactionId":"i1","state":"completed","type":"voice","subject":"","associatedObjects":{},"callParties":[],"callMuted":false,"callRecording":false,"attachedData":{}}}`
	ev, err := brightpattern.Decoder{Now: func() time.Time { return testNow }}.Decode([]byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	if in := ev.Interaction; fmtTime(in.End) != "2026-11-21T14:31:40Z" || in.Start != nil || in.Duration != 0 {
		t.Errorf("start %v, end %v, duration %d; want no start, the stamp as end, 0", in.Start, in.End, in.Duration)
	}
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.RFC3339)
}

func TestDecode_AssociatedObjects(t *testing.T) {
	contact := `{"id":"c1","type":"Contact","displayName":"Maria","displayType":"Contact","customFields":[]}`
	opp := `{"id":"o1","type":"opportunity","displayName":"Renewal"}`
	lead := `{"id":"l1","type":"lead"}`
	tests := []struct {
		name, container string
		want            string // "type:id" of Objects in order
		who, what       string
	}{
		{"Array", `[` + opp + `,` + contact + `,` + lead + `]`, "opportunity:o1 Contact:c1 lead:l1", "c1", "o1"},
		{"ObjectOfObjects", `{"z":` + lead + `,"a":` + opp + `}`, "lead:l1 opportunity:o1", "l1", "o1"},
		{"ObjectOfArrays", `{"what":[` + opp + `],"who":[` + contact + `,` + lead + `]}`, "opportunity:o1 Contact:c1 lead:l1", "c1", "o1"},
		{"Mixed", `{"x":` + contact + `,"y":[` + opp + `],"n":3,"s":"x","e":{}}`, "Contact:c1 opportunity:o1", "c1", "o1"},
		{"NoID", `[{"type":"contact"},{"id":"","type":"contact"},{"id":null},{"id":{}}]`, "", "", ""},
		{"NumericID", `[{"id":48213,"type":"ticket"}]`, "ticket:48213", "", "48213"},
		{"NotNestedTwice", `[[` + contact + `]]`, "", "", ""},
		{"Empty", `{}`, "", "", ""},
		{"Null", `null`, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := decodeData(t, `"type":"voice","associatedObjects":`+tt.container)
			var got []string
			for _, o := range in.Objects {
				got = append(got, o.Type+":"+o.ID)
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("Objects = %q, want %q", g, tt.want)
			}
			if g := idOf(in.Who); g != tt.who {
				t.Errorf("Who = %q, want %q", g, tt.who)
			}
			if g := idOf(in.What); g != tt.what {
				t.Errorf("What = %q, want %q", g, tt.what)
			}
		})
	}
}

func idOf(o *connector.CRMObject) string {
	if o == nil {
		return ""
	}
	return o.ID
}

func TestDecode_AgentFallback(t *testing.T) {
	in := decodeData(t, `"type":"voice","agentId":"from-data"`)
	if in.Agent.ID != "from-data" {
		t.Errorf("Agent.ID = %q, want data.agentId", in.Agent.ID)
	}
	ev, err := brightpattern.Decoder{}.Decode([]byte(`{"event":"ON_SAVE_ACTIVITY_RECORD","agentId":"top","data":{"interactionId":"i1","type":"voice","agentId":"from-data"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Interaction.Agent.ID != "top" {
		t.Errorf("Agent.ID = %q, want the top-level agentId", ev.Interaction.Agent.ID)
	}
}

// TestDecode_SameKey checks that two tabs posting the same event agree on
// the Key, whatever else differs.
func TestDecode_SameKey(t *testing.T) {
	a, err := brightpattern.Decoder{}.Decode([]byte(`{"event":"ON_SAVE_ACTIVITY_RECORD","agentId":"a1","receivedAt":"2026-11-21T14:31:40Z","data":{"interactionId":"i1","type":"voice"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := brightpattern.Decoder{}.Decode([]byte(`{"event":"ON_SAVE_ACTIVITY_RECORD","agentId":"a1","receivedAt":"2026-11-21T14:31:41Z","data":{"interactionId":" i1 ","type":"voice"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Key != b.Key || a.Key != "ON_SAVE_ACTIVITY_RECORD:i1:a1" {
		t.Errorf("keys %q and %q, want both ON_SAVE_ACTIVITY_RECORD:i1:a1", a.Key, b.Key)
	}
}

// TestDecode_EachAgentsRecord: when two agents save a record for the same
// interaction (a transfer), each is an event and a leg of its own.
func TestDecode_EachAgentsRecord(t *testing.T) {
	var keys, legs []string
	for _, agent := range []string{"a1", "a2"} {
		ev, err := brightpattern.Decoder{}.Decode([]byte(`{"event":"ON_SAVE_ACTIVITY_RECORD","agentId":"`+agent+`","data":{"interactionId":"i1","type":"voice"}}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		keys, legs = append(keys, ev.Key), append(legs, ev.Interaction.Leg)
	}
	if keys[0] == keys[1] || legs[0] != "a1" || legs[1] != "a2" {
		t.Errorf("keys %q, legs %q: want distinct keys and each agent's leg", keys, legs)
	}
}
