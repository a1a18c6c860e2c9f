package genesys

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// msg builds a WWE interaction message with interaction members ims (JSON
// members without braces) and top-level members top.
func msg(eventType, ims, top string) []byte {
	s := `{"event":"interaction","data":{"eventType":"` + eventType + `","media":"voice","interaction":{` + ims + `}}`
	if top != "" {
		s += "," + top
	}
	return []byte(s + "}")
}

const (
	call  = `"callUuid":"CU1","interactionUUID":"CU1","state":"IDLE","callType":"Inbound","direction":"IN","ani":"+14155550142","dnis":"+18005550199"`
	jane  = `"agent":{"employeeId":"1001","firstName":"Jane","lastName":"Doe","username":"jdoe"}`
	stamp = `"receivedAt":"2026-11-21T14:30:00Z"`
)

func TestDecode_Err(t *testing.T) {
	gws := func(data string) string {
		return `{"source":"gws","channel":"/v2/me/calls","data":` + data + `}`
	}
	tests := []struct {
		name  string
		body  string
		want  error
		field string // must appear in the message
	}{
		{"Empty", ``, connector.ErrBadPayload, "malformed JSON"},
		{"Truncated", `{"event":"interaction"`, connector.ErrBadPayload, "malformed JSON"},
		{"Garbage", `event=interaction`, connector.ErrBadPayload, "malformed JSON"},
		{"TrailingGarbage", `{"event":"interaction"} {}`, connector.ErrBadPayload, "malformed JSON"},
		{"NotObject", `["interaction"]`, connector.ErrBadPayload, "want a JSON object, got array"},
		{"Null", `null`, connector.ErrBadPayload, "want a JSON object, got null"},
		{"EventMissing", `{"data":{"eventType":"ADDED"}}`, connector.ErrBadPayload, "event: required"},
		{"EventNotString", `{"event":1,"data":{}}`, connector.ErrBadPayload, "event: want string, got number"},
		{"EventUnknown", `{"event":"calls","data":{}}`, connector.ErrUnknownEvent, `"calls"`},
		{"EventWrongCase", `{"event":"Interaction","data":{}}`, connector.ErrUnknownEvent, "agent, interaction, markdone, outbound and system"},
		{"SourceUnknown", `{"source":"pubsub","data":{}}`, connector.ErrBadPayload, `source: want "gws"`},
		{"SourceNotString", `{"source":true}`, connector.ErrBadPayload, "source: want string, got boolean"},
		{"ReceivedAtNotTime", `{"event":"interaction","receivedAt":"yesterday","data":{}}`, connector.ErrBadPayload, "receivedAt: want an RFC 3339 time"},
		{"ReceivedAtYear10000", `{"event":"interaction","receivedAt":"9999-12-31T23:00:00-02:00","data":{}}`, connector.ErrBadPayload, "receivedAt: 10000-01-01T01:00:00Z is out of range"},
		{"ReceivedAtNumber", `{"event":"interaction","receivedAt":1795271100000,"data":{}}`, connector.ErrBadPayload, "receivedAt: want string, got number"},
		{"AgentNotObject", `{"event":"interaction","agent":"jdoe","data":{}}`, connector.ErrBadPayload, "agent: want object, got string"},
		{"AgentFirstNameNumber", `{"event":"interaction","agent":{"firstName":7},"data":{}}`, connector.ErrBadPayload, "agent.firstName: want string, got number"},
		{"DataMissing", `{"event":"interaction"}`, connector.ErrBadPayload, "data: required"},
		{"AgentIDControl", string(msg("ADDED", `"callUuid":"CU1"`, `"agent":{"employeeId":"10\n01"}`)), connector.ErrBadPayload, "agent.employeeId: holds the control character U+000A"},
		{"UsernameTooLong", string(msg("ADDED", `"callUuid":"CU1"`, `"agent":{"username":"`+strings.Repeat("j", 300)+`"}`)), connector.ErrBadPayload, "agent.username: 300 bytes is longer than an id can be"},
		{"UUIDControl", string(msg("ADDED", `"callUuid":"CU\u001b1"`, jane)), connector.ErrBadPayload, "data.interaction.callUuid: holds the control character U+001B"},
		{"UUIDTooLong", string(msg("ADDED", `"interactionUUID":"`+strings.Repeat("u", 129)+`"`, jane)), connector.ErrBadPayload, "data.interaction.interactionUUID: 129 bytes is longer than an id can be"},
		{"UserDataTwice", string(msg("ADDED", `"callUuid":"CU1","userData":{"DispositionCode":"Sale","DispositionCode":"None"}`, jane)), connector.ErrBadPayload, "data.interaction.userData.DispositionCode: appears twice"},
		{"NotesNotUTF8", string(msg("ADDED", "\"callUuid\":\"CU1\",\"userData\":{\"Notes\":\"\xc3\x28\"}", jane)), connector.ErrBadPayload, "data.interaction.userData.Notes: text that is not valid UTF-8"},
		{"DataArray", `{"event":"interaction","data":[]}`, connector.ErrBadPayload, "data: want object, got array"},
		{"EventTypeMissing", `{"event":"interaction","data":{"interaction":{}}}`, connector.ErrBadPayload, "data.eventType: required"},
		{"EventTypeNumber", `{"event":"interaction","data":{"eventType":3}}`, connector.ErrBadPayload, "data.eventType: want string, got number"},
		{"TopicDataString", `{"event":"agent","data":"READY"}`, connector.ErrBadPayload, "data: want object, got string"},
		{"InteractionMissing", `{"event":"interaction","data":{"eventType":"RELEASED"}}`, connector.ErrBadPayload, "data.interaction: required"},
		{"InteractionString", `{"event":"interaction","data":{"eventType":"ADDED","interaction":"1"}}`, connector.ErrBadPayload, "data.interaction: want object, got string"},
		{"IDMissing", string(msg("ESTABLISHED", `"interactionId":"1","state":"TALKING"`, "")), connector.ErrBadPayload, "data.interaction.interactionUUID: required (or callUuid)"},
		{"IDBlank", string(msg("MARKDONE_APPLY", `"interactionId":"1","callUuid":"  "`, "")), connector.ErrBadPayload, "data.interaction.interactionUUID: required"},
		{"CallUUIDNumber", string(msg("ADDED", `"callUuid":42`, "")), connector.ErrBadPayload, "data.interaction.callUuid: want string, got number"},
		{"InteractionUUIDObject", string(msg("ADDED", `"interactionUUID":{}`, "")), connector.ErrBadPayload, "data.interaction.interactionUUID: want string, got object"},
		{"IDTooLong", string(msg("ADDED", `"callUuid":"`+strings.Repeat("A", 200)+`"`, "")), connector.ErrBadPayload, "data.interaction.callUuid: 200 bytes is longer"},
		{"StateNumber", string(msg("ADDED", `"callUuid":"CU1","state":1`, "")), connector.ErrBadPayload, "data.interaction.state: want string, got number"},
		{"MediaNumber", `{"event":"interaction","data":{"eventType":"ADDED","media":1,"interaction":{"callUuid":"CU1"}}}`, connector.ErrBadPayload, "data.media: want string, got number"},
		{"ConsultString", string(msg("ADDED", `"callUuid":"CU1","isConsultation":"false"`, "")), connector.ErrBadPayload, "data.interaction.isConsultation: want boolean, got string"},
		{"UserDataArray", string(msg("ADDED", `"callUuid":"CU1","userData":[]`, "")), connector.ErrBadPayload, "data.interaction.userData: want object, got array"},
		{"PartiesObject", string(msg("ADDED", `"callUuid":"CU1","parties":{}`, "")), connector.ErrBadPayload, "data.interaction.parties: want array, got object"},
		{"PartyString", string(msg("ADDED", `"callUuid":"CU1","parties":[{"name":"a"},"b"]`, "")), connector.ErrBadPayload, "data.interaction.parties[1]: want object, got string"},
		{"PartyNameNumber", string(msg("ADDED", `"callUuid":"CU1","parties":[{"name":5001}]`, "")), connector.ErrBadPayload, "data.interaction.parties[0].name: want string, got number"},
		{"GWSDataMissing", `{"source":"gws"}`, connector.ErrBadPayload, "data: required"},
		{"GWSChannelNumber", `{"source":"gws","channel":2,"data":{}}`, connector.ErrBadPayload, "channel: want string, got number"},
		{"GWSMessageTypeMissing", gws(`{"call":{"callUuid":"CU1"}}`), connector.ErrBadPayload, "data.messageType: required"},
		{"GWSCallString", gws(`{"messageType":"CallStateChangeMessage","call":"CU1"}`), connector.ErrBadPayload, "data.call: want object, got string"},
		{"GWSCallIDMissing", gws(`{"messageType":"CallStateChangeMessage","call":{"state":"Ringing"}}`), connector.ErrBadPayload, "data.call.callUuid: required (or id)"},
		{"GWSInteractionIDMissing", gws(`{"messageType":"InteractionStateChangeMessage","interaction":{"state":"Invited"}}`), connector.ErrBadPayload, "data.interaction.id: required"},
		{"GWSInteractionIDNumber", gws(`{"messageType":"InteractionStateChangeMessage","interaction":{"id":7}}`), connector.ErrBadPayload, "data.interaction.id: want string, got number"},
		{"GWSUserDataString", gws(`{"messageType":"CallStateChangeMessage","call":{"callUuid":"CU1","userData":"x"}}`), connector.ErrBadPayload, "data.call.userData: want object, got string"},
		{"GWSParticipantNumber", gws(`{"messageType":"CallStateChangeMessage","call":{"callUuid":"CU1","participants":[1]}}`), connector.ErrBadPayload, "data.call.participants[0]: want object, got number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := testDecoder().Decode([]byte(tt.body), nil)
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

// TestDecode_Stored covers messages that are accepted and stored but
// describe no interaction: no state, no Interaction, Type saying what they
// were.
func TestDecode_Stored(t *testing.T) {
	tests := []struct {
		name, body, typ string
	}{
		{"UnknownEventType", string(msg("CALL_QUALITY_SURVEYED", call, "")), "CALL_QUALITY_SURVEYED"},
		{"UnknownEventTypeNoInteraction", `{"event":"interaction","data":{"eventType":"SOMETHING_NEW"}}`, "SOMETHING_NEW"},
		{"UnknownEventTypeBadInteraction", `{"event":"interaction","data":{"eventType":"SOMETHING_NEW","interaction":[1]}}`, "SOMETHING_NEW"},
		{"UnknownEventTypeLong", `{"event":"interaction","data":{"eventType":"` + strings.Repeat("X", 300) + `"}}`, strings.Repeat("X", 64) + "…"},
		{"CaseSelected", `{"event":"interaction","data":{"eventType":"CASE_SELECTED","selectedCaseId":"d4187b87"}}`, "CASE_SELECTED"},
		{"CaseIDChanged", `{"event":"interaction","data":{"eventType":"CASE_ID_CHANGED","caseId":"eb647056","previousCaseId":"5f7e5f3a"}}`, "CASE_ID_CHANGED"},
		{"UnknownEventTypeValue", string(msg("UNKNOWN", call, "")), "UNKNOWN"},
		{"InfoWithoutID", string(msg("ERROR", `"interactionId":"1"`, "")), "ERROR"},
		{"PreviewRecordWithoutID", string(msg("ADDED", `"interactionId":"1","state":"PREVIEWING","callType":"OUTBOUND_PREVIEW"`, "")), "ADDED"},
		{"PushPreviewWithoutID", string(msg("ADDED", `"interactionId":"1","state":"INVITED","callType":"OUTBOUND_PUSH_PREVIEW"`, "")), "ADDED"},
		{"RejectedRecordWithoutID", string(msg("REMOVED", `"interactionId":"1","state":"REJECTED"`, "")), "REMOVED"},
		{"AgentTopic", `{"event":"agent","data":{"eventType":"STATE_CHANGED","mediaState":"READY"}}`, "agent.STATE_CHANGED"},
		{"SystemTopic", `{"event":"system","data":{"frameState":"LEADING"}}`, "system"},
		{"SystemTopicNoData", `{"event":"system"}`, "system"},
		{"OutboundTopic", `{"event":"outbound","data":{"eventType":"CampaignLoaded","campaign":"Offer of the Month"}}`, "outbound.CampaignLoaded"},
		{"GWSDevice", `{"source":"gws","channel":"/v2/me/devices","data":{"messageType":"DeviceStateChangeMessage","devices":[]}}`, "DeviceStateChangeMessage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			ev, err := testDecoder().Decode([]byte(tt.body), func(string) ([]byte, error) {
				called = true
				return nil, nil
			})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if ev.Type != tt.typ || ev.Key == "" || ev.Platform != Platform {
				t.Errorf("got Platform %q Type %q Key %q, want Type %q", ev.Platform, ev.Type, ev.Key, tt.typ)
			}
			if ev.StateKey != "" || ev.State != nil || ev.Interaction != nil || called {
				t.Errorf("stored-only event has state %q %s, interaction %v, state loaded %v", ev.StateKey, ev.State, ev.Interaction, called)
			}
		})
	}
}

// TestDecode_SameKey checks that the tabs of one agent agree on the Key of
// one event, whatever their client-side ids, case panel, member order,
// white space, stamps and agent details, and that events that change the
// snapshot differently do not.
func TestDecode_SameKey(t *testing.T) {
	key := func(body string) string {
		t.Helper()
		ev, err := testDecoder().Decode([]byte(body), nil)
		if err != nil {
			t.Fatalf("Decode(%s): %v", body, err)
		}
		return ev.Key
	}
	leader := key(string(msg("ATTACHED_DATA_CHANGED",
		`"interactionId":"1","caseId":"c1","isCaseSelected":true,`+call+`,"userData":{"a":"1","b":2}`,
		jane+`,"receivedAt":"2026-11-21T14:30:00.000Z"`)))
	follower := key(`{ "receivedAt":"2026-11-21T14:30:00.045Z", "agent":{"employeeId":"1001"},
		"event":"interaction", "data":{"media":"voice", "interaction":{"userData":{"b":2.0,"a":"1"},
		"interactionId":"5","caseId":"c9","isCaseSelected":false,"isCaseExpanded":true,` + call + `},
		"eventType":"ATTACHED_DATA_CHANGED"}}`)
	if leader != follower {
		t.Errorf("two tabs: keys %q and %q differ", leader, follower)
	}
	for name, body := range map[string]string{
		"OtherUserData": string(msg("ATTACHED_DATA_CHANGED", call+`,"userData":{"a":"1","b":3}`, jane)),
		"OtherAgent":    string(msg("ATTACHED_DATA_CHANGED", call+`,"userData":{"a":"1","b":2}`, `"agent":{"employeeId":"1002"}`)),
		"OtherType":     string(msg("RELEASED", call+`,"userData":{"a":"1","b":2}`, jane)),
	} {
		if k := key(body); k == leader {
			t.Errorf("%s: key %q equals the original's", name, k)
		}
	}
}

// TestDecode_GiganticUserData posts a call whose userData is over 1 MB: the
// snapshot stays small, the keys ctibridge reads survive, and the cut is
// flagged.
func TestDecode_GiganticUserData(t *testing.T) {
	var b strings.Builder
	b.WriteString(`"huge":"` + strings.Repeat("é", 330_000) + `","blob":{"x":"` + strings.Repeat("y", 100_000) + `"},`)
	b.WriteString(`"` + strings.Repeat("k", 500) + `":"long key",`)
	for i := range 4000 {
		fmt.Fprintf(&b, `"key%05d":"%s",`, i, strings.Repeat("v", 60))
	}
	b.WriteString(`"zDisposition":"Sale","GSW_CAMPAIGN_NAME":"Spring","ctibridge_who_id":"003X"`)
	ud := `"userData":{` + b.String() + `}`
	added := msg("ADDED", strings.Replace(call, `"state":"IDLE"`, `"state":"RINGING"`, 1)+`,`+ud, jane+`,"receivedAt":"2026-11-21T14:00:00Z"`)
	done := msg("MARKDONE_APPLY", call+`,`+ud, jane+`,"receivedAt":"2026-11-21T14:10:00Z"`)
	if len(added) < 1<<20 {
		t.Fatalf("test body is only %d bytes", len(added))
	}
	dec := testDecoder()
	dec.DispositionKey = "zDisposition"
	m := newDaemon(dec)
	s, err := m.post(1, added)
	if err != nil {
		t.Fatal(err)
	}
	state := m.states[s.StateKey]
	if len(state) > maxUserDataBytes+4<<10 {
		t.Errorf("snapshot is %d bytes, want it bounded near %d", len(state), maxUserDataBytes)
	}
	if _, err := m.post(2, done); err != nil {
		t.Fatal(err)
	}
	if len(m.out) != 1 {
		t.Fatalf("emitted %d interactions, want 1", len(m.out))
	}
	in := m.out[0]
	if in.Disposition == nil || in.Disposition.Code != "Sale" || in.Campaign != "Spring" || in.Who == nil {
		t.Errorf("priority keys lost: disposition %v, campaign %q, who %v", in.Disposition, in.Campaign, in.Who)
	}
	if in.Attached[FlagTruncated] != true {
		t.Errorf("Attached[%s] = %v, want true", FlagTruncated, in.Attached[FlagTruncated])
	}
	if n := len(in.Attached); n > maxUserDataKeys+3 {
		t.Errorf("Attached has %d keys, want at most %d", n, maxUserDataKeys+3)
	}
	if in.Raw != nil {
		t.Errorf("Raw kept %d bytes, want it left out above %d", len(in.Raw), maxRaw)
	}
	if huge, _ := in.Attached["huge"].(string); len(huge) > maxValueBytes {
		t.Errorf("a %d-byte value was kept", len(huge))
	}
	enc, err := json.Marshal(in)
	if err != nil || len(enc) > 64<<10 {
		t.Errorf("interaction encodes to %d bytes (%v)", len(enc), err)
	}
}

func TestDecode_Times(t *testing.T) {
	t.Run("NoReceivedAt", func(t *testing.T) {
		ev, err := testDecoder().Decode(msg("MARKDONE_APPLY", call, jane), nil)
		if err != nil {
			t.Fatal(err)
		}
		if in := ev.Interaction; in == nil || in.End == nil || !in.End.Equal(testNow) {
			t.Errorf("without receivedAt, end = %v, want the decode time %v", ev.Interaction, testNow)
		}
	})
	t.Run("Offset", func(t *testing.T) {
		ev, err := testDecoder().Decode(msg("MARKDONE_APPLY", call, `"receivedAt":"2026-11-21T16:30:00+02:00"`), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.Interaction.End.Format(time.RFC3339); got != "2026-11-21T14:30:00Z" {
			t.Errorf("end = %s, want UTC", got)
		}
	})
	t.Run("ReleasedBeforeEstablished", func(t *testing.T) {
		// Posted in the wrong order without stamps: the times are the
		// arrival times, end comes before start, and the duration is 0,
		// not negative.
		m := newDaemon(Decoder{})
		for i, b := range [][]byte{
			msg("RELEASED", call, jane), msg("ESTABLISHED", strings.Replace(call, "IDLE", "TALKING", 1), jane),
			msg("MARKDONE_APPLY", call, jane),
		} {
			if _, err := m.post(i, b); err != nil {
				t.Fatal(err)
			}
		}
		if len(m.out) != 1 || m.out[0].Duration < 0 {
			t.Fatalf("got %+v", m.out)
		}
	})
}

func TestDecode_StateError(t *testing.T) {
	boom := errors.New("database is locked")
	_, err := testDecoder().Decode(msg("ADDED", call, stamp), func(string) ([]byte, error) { return nil, boom })
	if !errors.Is(err, boom) || errors.Is(err, connector.ErrBadPayload) {
		t.Errorf("error %v: want the state error, not a bad payload", err)
	}
}

// TestDecode_DamagedSnapshot checks that a snapshot that cannot be read
// counts as none: the event is accepted, not refused.
func TestDecode_DamagedSnapshot(t *testing.T) {
	for _, state := range []string{`{`, `[]`, `{"v":99,"id":"CU1","legs":[]}`, `{"v":1,"id":"other","legs":[{}]}`,
		`{"v":1,"id":"CU1","legs":[null,{"first":"not a time"}]}`, `{"v":1,"id":"CU1","legs":[null,null]}`} {
		ev, err := testDecoder().Decode(msg("MARKDONE_APPLY", call, stamp), func(string) ([]byte, error) { return []byte(state), nil })
		if err != nil {
			t.Errorf("state %s: %v", state, err)
			continue
		}
		if ev.Interaction == nil || ev.Interaction.Attached[FlagIncomplete] != true {
			t.Errorf("state %s: interaction %+v, want one flagged incomplete", state, ev.Interaction)
		}
	}
}

func TestDecode_DispositionKey(t *testing.T) {
	body := msg("MARKDONE_APPLY", call+`,"userData":{"DispositionCode":"Default","Outcome":"Custom"}`, stamp)
	for key, want := range map[string]string{"": "Default", "Outcome": "Custom", "Missing": ""} {
		ev, err := Decoder{DispositionKey: key}.Decode(body, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if d := ev.Interaction.Disposition; d != nil {
			got = d.Code
		}
		if got != want {
			t.Errorf("DispositionKey %q: disposition %q, want %q", key, got, want)
		}
	}
}

func TestDecode_ChannelDirection(t *testing.T) {
	tests := []struct {
		media, ims, wantCh, wantDir string
		consult                     bool
	}{
		{"voice", `"callType":"Inbound","direction":"IN"`, "voice", "inbound", false},
		{"", `"callType":"OUTBOUND","direction":"OUT"`, "voice", "outbound", false},
		{"voice", `"callType":"Internal","direction":"OUT"`, "voice", "internal", false},
		{"voice", `"callType":"Consult","direction":"OUT"`, "voice", "internal", true},
		{"voice", `"callType":"CONSULT","isConsultation":false`, "voice", "internal", true},
		{"voice", `"callType":"UNKNOWN","direction":"IN","isConsultation":true`, "voice", "inbound", true},
		{"voice", `"callType":"OUTBOUND_PREVIEW"`, "voice", "outbound", false},
		{"voice", `"direction":"UNKNOWN"`, "voice", "unknown", false},
		{"chat", `"userData":{"InteractionType":"Inbound"}`, "chat", "inbound", false},
		{"email", `"userData":{"InteractionType":"Outbound"}`, "email", "outbound", false},
		{"Email", ``, "email", "unknown", false},
		{"workitem", ``, "other", "unknown", false},
		{"", `"userData":{"GSW_CAMPAIGN_NAME":"Spring"}`, "other", "outbound", false},
	}
	for _, tt := range tests {
		body := `{"event":"interaction","data":{"eventType":"COMPLETED","media":"` + tt.media +
			`","interaction":{"interactionUUID":"I1"` + strings.TrimRight(","+tt.ims, ",") + `}}}`
		ev, err := testDecoder().Decode([]byte(body), nil)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		in := ev.Interaction
		if in.Channel != tt.wantCh || in.Direction != tt.wantDir || in.IsConsultation != tt.consult {
			t.Errorf("media %q, %s: got %s %s consult=%v, want %s %s %v", tt.media, tt.ims,
				in.Channel, in.Direction, in.IsConsultation, tt.wantCh, tt.wantDir, tt.consult)
		}
	}
}

// TestDecode_Removed covers REMOVED without a done event before it.
func TestDecode_Removed(t *testing.T) {
	tests := []struct {
		name   string
		events [][]byte
		emit   bool
	}{
		{"VoiceNoSnapshot", [][]byte{msg("REMOVED", call, stamp)}, true},
		{"VoiceAfterRinging", [][]byte{msg("RINGING", call, stamp), msg("REMOVED", call, stamp)}, true},
		{"PreviewRecordWithID", [][]byte{
			msg("ADDED", `"callUuid":"CU1","state":"PREVIEWING","callType":"OUTBOUND_PREVIEW"`, stamp),
			msg("REMOVED", `"callUuid":"CU1","state":"REJECTED","callType":"OUTBOUND_PREVIEW"`, stamp)}, false},
		{"ChatNotEnded", [][]byte{
			[]byte(`{"event":"interaction","data":{"eventType":"ACCEPTED","media":"chat","interaction":{"interactionUUID":"C1","state":"ACCEPTED"}}}`),
			[]byte(`{"event":"interaction","data":{"eventType":"REMOVED","media":"chat","interaction":{"interactionUUID":"C1","state":"ACCEPTED"}}}`)}, false},
		{"EmailNotCompleted", [][]byte{
			[]byte(`{"event":"interaction","data":{"eventType":"REMOVED","media":"email","interaction":{"interactionUUID":"E1"}}}`)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newDaemon(testDecoder())
			for i, b := range tt.events {
				if _, err := m.post(i, b); err != nil {
					t.Fatal(err)
				}
			}
			if got := len(m.out) == 1; got != tt.emit || len(m.out) > 1 {
				t.Errorf("emitted %d interactions, want emit=%v", len(m.out), tt.emit)
			}
			if len(m.states) != 0 {
				t.Errorf("snapshots left after REMOVED: %v", m.states)
			}
		})
	}
}

// TestDecode_AgentLater checks that the events a tab posts before
// agent.get answers join the agent's leg instead of starting another.
func TestDecode_AgentLater(t *testing.T) {
	m := newDaemon(testDecoder())
	for i, b := range [][]byte{
		msg("ADDED", strings.Replace(call, "IDLE", "RINGING", 1), `"receivedAt":"2026-11-21T14:00:00Z"`),
		msg("ESTABLISHED", strings.Replace(call, "IDLE", "TALKING", 1), jane+`,"receivedAt":"2026-11-21T14:00:05Z"`),
		msg("RELEASED", call, jane+`,"receivedAt":"2026-11-21T14:01:05Z"`),
		msg("REMOVED", call, `"receivedAt":"2026-11-21T14:01:06Z"`),
	} {
		if _, err := m.post(i, b); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.out) != 1 || m.out[0].Agent.Name != "Jane Doe" || m.out[0].Duration != 60 || len(m.states) != 0 {
		t.Errorf("got %d interactions %+v, states %v", len(m.out), m.out, m.states)
	}
}

// TestDecode_DoneWithoutSnapshot: a done event with nothing before it still
// has an end (its own time), and says what it lacks through the fields
// themselves (no start, no agent), not through an internal list in
// attached, which would go out to the CRM with the customer's data.
func TestDecode_DoneWithoutSnapshot(t *testing.T) {
	ev, err := testDecoder().Decode(msg("MARKDONE_APPLY", call+`,"userData":{"Queue":"Q"}`, ``), nil)
	if err != nil {
		t.Fatal(err)
	}
	in := ev.Interaction
	if in == nil || in.End == nil || !in.End.Equal(testNow) || in.Start != nil {
		t.Fatalf("got %+v, want the decode time as end and no start", in)
	}
	for k := range in.Attached {
		if k != "Queue" && k != FlagIncomplete {
			t.Errorf("attached has %q: %v", k, in.Attached)
		}
	}
}
