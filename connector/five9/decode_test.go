package five9_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/five9"
)

// testNow is the receipt time of events without receivedAt.
var testNow = time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)

var testDecoder = five9.Decoder{Now: func() time.Time { return testNow }}

var update = flag.Bool("update", false, "rewrite testdata/*.want.json from the decoder's output")

// daemon replays posts the way cmd/ctibridge's ingest does: it decodes with
// a StateFunc over its states, skips an event whose Key it has stored
// before (storing neither the event nor its State), and otherwise stores
// State under StateKey (nil deletes) and keeps the Interaction.
type daemon struct {
	t      testing.TB
	seen   map[string]bool
	states map[string][]byte
}

func newDaemon(t testing.TB) *daemon {
	return &daemon{t: t, seen: map[string]bool{}, states: map[string][]byte{}}
}

// step is the golden's account of one post.
type step struct {
	Line      int    `json:"line"`
	Type      string `json:"type"`
	Key       string `json:"key"`
	Duplicate bool   `json:"duplicate,omitempty"`
	// State is "stored", "deleted", or empty for a duplicate.
	State   string `json:"state,omitempty"`
	Emitted bool   `json:"emitted,omitempty"`
}

func (d *daemon) post(line int, body []byte) (step, *connector.Interaction) {
	d.t.Helper()
	var loads []string
	ev, err := testDecoder.Decode(body, func(key string) ([]byte, error) {
		loads = append(loads, key)
		return d.states[key], nil
	})
	if err != nil {
		d.t.Fatalf("line %d: Decode: %v", line, err)
	}
	if len(loads) != 1 || loads[0] != ev.StateKey {
		d.t.Fatalf("line %d: state loaded with %q, want once with StateKey %q", line, loads, ev.StateKey)
	}
	if ev.Platform != five9.Platform || ev.Key == "" {
		d.t.Fatalf("line %d: Platform %q, Key %q", line, ev.Platform, ev.Key)
	}
	s := step{Line: line, Type: ev.Type, Key: ev.Key}
	if d.seen[ev.Key] {
		s.Duplicate = true
		return s, nil
	}
	d.seen[ev.Key] = true
	if ev.State == nil {
		delete(d.states, ev.StateKey)
		s.State = "deleted"
	} else {
		if !json.Valid(ev.State) {
			d.t.Fatalf("line %d: State is not JSON: %s", line, ev.State)
		}
		d.states[ev.StateKey] = ev.State
		s.State = "stored"
	}
	s.Emitted = ev.Interaction != nil
	return s, ev.Interaction
}

// replay is what a sequence produced.
type replay struct {
	Steps        []step                     `json:"steps"`
	Interactions []*connector.Interaction   `json:"interactions"`
	LeftOver     map[string]json.RawMessage `json:"leftOverStates,omitempty"`
}

func replayFile(t testing.TB, file string) replay {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := newDaemon(t)
	var r replay
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		body := bytes.Clone(sc.Bytes())
		s, in := d.post(line, body)
		r.Steps = append(r.Steps, s)
		if in != nil {
			r.Interactions = append(r.Interactions, in)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(d.states) > 0 {
		r.LeftOver = map[string]json.RawMessage{}
		for k, v := range d.states {
			r.LeftOver[k] = v
		}
	}
	return r
}

func sequences(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata sequences")
	}
	sort.Strings(files)
	return files
}

// TestDecode_Sequences replays each testdata/NAME.jsonl, one posted body a
// line, through a daemon stand-in and compares the steps, the emitted
// Interactions and the snapshots left behind with testdata/NAME.want.json.
// Run with -update to rewrite the goldens, then read the diff: the goldens
// are the spec.
func TestDecode_Sequences(t *testing.T) {
	for _, file := range sequences(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".jsonl")
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(replayFile(t, file), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			wantFile := filepath.Join("testdata", name+".want.json")
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
				t.Errorf("%s differs from the replay; got:\n%s", wantFile, got)
			}
		})
	}
}

// TestDecode_Example keeps the newcomer's curl sample decodable.
func TestDecode_Example(t *testing.T) {
	r := replayFile(t, filepath.Join("..", "..", "examples", "events", "five9-call.jsonl"))
	if len(r.Interactions) != 1 || len(r.LeftOver) != 0 {
		t.Fatalf("example produced %d interactions and %d left-over states, want 1 and 0", len(r.Interactions), len(r.LeftOver))
	}
	in := r.Interactions[0]
	switch {
	case in.Disposition == nil || in.Disposition.Name != "Sale Closed" || in.Disposition.Code != "3558":
		t.Errorf("Disposition = %+v", in.Disposition)
	case in.Who == nil || in.Who.Type != "Contact":
		t.Errorf("Who = %+v", in.Who)
	case in.Attached["Customer.email"] != "maria.lopez@example.com":
		t.Errorf("Attached = %v", in.Attached)
	case in.Direction != connector.DirectionInbound || in.Agent.ID != "138592":
		t.Errorf("Direction %q, Agent %+v", in.Direction, in.Agent)
	}
}

// TestDecode_SameKeyAcrossTabs checks that the same event from two tabs has
// one Key whatever else differs, and that what differs is the agent.
func TestDecode_SameKeyAcrossTabs(t *testing.T) {
	const (
		a = `{"event":"callFinished","metadata":{"agentId":42},"receivedAt":"2026-11-21T14:31:40Z",
			"params":{"callData":{"interactionId":"ID1"},"callLogData":{"dispositionId":"1"}},"cavs":[{"group":"g","name":"n","value":"v"}]}`
		b = `{"event":"callFinished","metadata":{"agentId":"42"},"receivedAt":"2026-11-21T14:31:43Z",
			"params":{"callData":{"interactionId":" ID1 "}}}`
		other = `{"event":"callFinished","metadata":{"agentId":43},"params":{"callData":{"interactionId":"ID1"}}}`
	)
	key := func(body string) string {
		ev, err := five9.Decoder{}.Decode([]byte(body), nil)
		if err != nil {
			t.Fatal(err)
		}
		return ev.Key
	}
	if ka, kb := key(a), key(b); ka != kb || ka != "callFinished:ID1:42" {
		t.Errorf("keys %q and %q, want both callFinished:ID1:42", ka, kb)
	}
	if k := key(other); k == key(a) {
		t.Errorf("another agent's leg has the same key %q", k)
	}
}

// TestDecode_ObjectSelectedKey checks that a new selection is a new event
// and the same selection from another tab is not.
func TestDecode_ObjectSelectedKey(t *testing.T) {
	sel := func(id, at string) string {
		body := `{"event":"objectSelected","receivedAt":"` + at + `","params":{"interactionType":"Call","interactionData":{"interactionId":"ID1"}},
			"nameObject":{"id":"` + id + `","label":"Contact","isWho":true}}`
		ev, err := five9.Decoder{}.Decode([]byte(body), nil)
		if err != nil {
			t.Fatal(err)
		}
		return ev.Key
	}
	if sel("c1", "2026-11-21T14:00:00Z") != sel("c1", "2026-11-21T14:00:02Z") {
		t.Error("the same selection from two tabs has two keys")
	}
	if sel("c1", "2026-11-21T14:00:00Z") == sel("c2", "2026-11-21T14:00:00Z") {
		t.Error("two selections have one key")
	}
}

func TestDecode_Err(t *testing.T) {
	// withCall wraps members after a valid params of callEnded.
	withCall := func(top string) string {
		return `{"event":"callEnded","params":{"callData":{"interactionId":"i1"}}` + top + `}`
	}
	// withData wraps callData members after a valid interactionId.
	withData := func(members string) string {
		return `{"event":"callFinished","params":{"callData":{"interactionId":"i1",` + members + `}}}`
	}
	withLog := func(members string) string {
		return `{"event":"callFinished","params":{"callData":{"interactionId":"i1"},"callLogData":{` + members + `}}}`
	}
	tests := []struct {
		name string
		body string
		want error
		msg  string // must appear in the error
	}{
		{"Empty", ``, connector.ErrBadPayload, "malformed JSON"},
		{"Truncated", `{"event":"callEnded"`, connector.ErrBadPayload, "malformed JSON"},
		{"TrailingGarbage", `{"event":"callEnded"} {}`, connector.ErrBadPayload, "malformed JSON"},
		{"NotObject", `[{"event":"callEnded"}]`, connector.ErrBadPayload, "want a JSON object, got array"},
		{"Null", `null`, connector.ErrBadPayload, "want a JSON object, got null"},
		{"EventMissing", `{"params":{"callData":{"interactionId":"i1"}}}`, connector.ErrBadPayload, "event: required"},
		{"EventBlank", `{"event":" ","params":{}}`, connector.ErrBadPayload, "event: required"},
		{"EventNotString", `{"event":["callEnded"]}`, connector.ErrBadPayload, "event: want string, got array"},
		{"EventUnknown", `{"event":"callOffered","params":{}}`, connector.ErrUnknownEvent, `"callOffered": known events are callStarted, `},
		{"EventWrongCase", `{"event":"CallFinished","params":{}}`, connector.ErrUnknownEvent, "callFinished"},
		{"EventHuge", `{"event":"` + strings.Repeat("x", 5000) + `"}`, connector.ErrUnknownEvent, "…"},
		{"ParamsMissing", `{"event":"callEnded"}`, connector.ErrBadPayload, "params: required"},
		{"ParamsArray", `{"event":"callEnded","params":[]}`, connector.ErrBadPayload, "params: want object, got array"},
		{"CallDataString", `{"event":"callEnded","params":{"callData":"i1"}}`, connector.ErrBadPayload, "params.callData: want object, got string"},
		{"IDMissing", `{"event":"callEnded","params":{}}`, connector.ErrBadPayload, "params.callData.interactionId: required"},
		{"IDMissingChat", `{"event":"chatFinished","params":{"chatData":{}}}`, connector.ErrBadPayload, "params.chatData.interactionId: required"},
		{"IDMissingObjectSelected", `{"event":"objectSelected","params":{"interactionType":"Call"}}`, connector.ErrBadPayload, "params.interactionData.interactionId: required"},
		{"IDBlank", `{"event":"callEnded","params":{"callData":{"interactionId":"  "}}}`, connector.ErrBadPayload, "params.callData.interactionId: required"},
		{"IDNumber", `{"event":"callEnded","params":{"callData":{"interactionId":12}}}`, connector.ErrBadPayload, "params.callData.interactionId: want string, got number"},
		{"IDTooLong", `{"event":"callEnded","params":{"callData":{"interactionId":"` + strings.Repeat("A", 129) + `"}}}`, connector.ErrBadPayload, "params.callData.interactionId: 129 bytes is longer than an id can be (128)"},
		{"IDControl", `{"event":"callEnded","params":{"callData":{"interactionId":"i1\u0007x"}}}`, connector.ErrBadPayload, "params.callData.interactionId: holds the control character U+0007"},
		{"EventTwice", `{"event":"callEnded","params":{"callData":{"interactionId":"i1"}},"event":"callFinished"}`, connector.ErrBadPayload, "event: appears twice"},
		{"CAVNotUTF8", withCall(",\"cavs\":[{\"name\":\"n\",\"value\":\"caf\xe9\"}]"), connector.ErrBadPayload, "cavs[0].value: text that is not valid UTF-8"},
		{"InteractionTypeNumber", `{"event":"objectSelected","params":{"interactionType":1,"interactionData":{"interactionId":"i1"}}}`, connector.ErrBadPayload, "params.interactionType: want string, got number"},
		{"ReceivedAtNotTime", withCall(`,"receivedAt":"yesterday"`), connector.ErrBadPayload, "receivedAt: want an RFC 3339 time"},
		{"ReceivedAtYear10000", withCall(`,"receivedAt":"9999-12-31T23:00:00-02:00"`), connector.ErrBadPayload, "receivedAt: 10000-01-01T01:00:00Z is out of range"},
		{"MetadataString", withCall(`,"metadata":"138592"`), connector.ErrBadPayload, "metadata: want object, got string"},
		{"AgentIDBool", withCall(`,"metadata":{"agentId":true}`), connector.ErrBadPayload, "metadata.agentId: want string or number, got boolean"},
		{"AgentIDTooLong", withCall(`,"metadata":{"agentId":"` + strings.Repeat("a", 201) + `"}`), connector.ErrBadPayload, "metadata.agentId: 201 bytes is longer than an id can be"},
		{"TenantIDObject", withCall(`,"metadata":{"tenantId":{}}`), connector.ErrBadPayload, "metadata.tenantId: want string or number, got object"},
		{"ANINumberOK", withData(`"ani":4155550142,"dnis":[]`), connector.ErrBadPayload, "params.callData.dnis: want string or number, got array"},
		{"CallTypeNumber", withData(`"callType":1`), connector.ErrBadPayload, "params.callData.callType: want string, got number"},
		{"CampaignObject", withData(`"campaignName":{}`), connector.ErrBadPayload, "params.callData.campaignName: want string, got object"},
		{"TimestampBool", withLog(`"timestamp":true`), connector.ErrBadPayload, "params.callLogData.timestamp: want number, got boolean"},
		{"TimestampText", withLog(`"timestamp":"noon"`), connector.ErrBadPayload, "params.callLogData.timestamp: want an epoch time or an RFC 3339 time"},
		{"TimestampNegative", withData(`"startTimestamp":-5`), connector.ErrBadPayload, "params.callData.startTimestamp: -5 is out of range"},
		{"TimestampHuge", withLog(`"timestamp":1e300`), connector.ErrBadPayload, "1e+300 is out of range"},
		{"TimestampOverflow", withLog(`"timestamp":1e999`), connector.ErrBadPayload, "number 1e999 is out of range"},
		{"DurationString", withLog(`"duration":"385"`), connector.ErrBadPayload, "params.callLogData.duration: want number, got string"},
		{"DurationHuge", withLog(`"duration":1e12`), connector.ErrBadPayload, "1e+12 seconds is out of range"},
		{"DispositionIDBool", withLog(`"dispositionId":false`), connector.ErrBadPayload, "params.callLogData.dispositionId: want string or number, got boolean"},
		{"DispositionNameNumber", withLog(`"dispositionName":3558`), connector.ErrBadPayload, "params.callLogData.dispositionName: want string, got number"},
		{"LogDataArray", `{"event":"callFinished","params":{"callData":{"interactionId":"i1"},"callLogData":[]}}`, connector.ErrBadPayload, "params.callLogData: want object, got array"},
		{"CAVsObject", withCall(`,"cavs":{"Call.ANI":"1"}`), connector.ErrBadPayload, "cavs: want array, got object"},
		{"CAVString", withCall(`,"cavs":[{"name":"a","value":"1"},"b"]`), connector.ErrBadPayload, "cavs[1]: want object, got string"},
		{"CAVNameNumber", withCall(`,"cavs":[{"group":"Call","name":7}]`), connector.ErrBadPayload, "cavs[0].name: want string, got number"},
		{"CAVGroupArray", withCall(`,"cavs":[{"group":[],"name":"n"}]`), connector.ErrBadPayload, "cavs[0].group: want string, got array"},
		{"CAVValueOverflow", withCall(`,"cavs":[{"name":"n","value":[1e999]}]`), connector.ErrBadPayload, "cavs[0].value: a number in it is out of range"},
		{"DispositionsObject", withCall(`,"dispositions":{}`), connector.ErrBadPayload, "dispositions: want array, got object"},
		{"DispositionNameBool", withCall(`,"dispositions":[{"id":"1","name":true}]`), connector.ErrBadPayload, "dispositions[0].name: want string, got boolean"},
		{"NameObjectArray", withCall(`,"nameObject":[]`), connector.ErrBadPayload, "nameObject: want object, got array"},
		{"NameObjectIsWhoString", withCall(`,"nameObject":{"id":"1","isWho":"true"}`), connector.ErrBadPayload, "nameObject.isWho: want boolean, got string"},
		{"RelatedToIDBool", withCall(`,"relatedToObject":{"id":true}`), connector.ErrBadPayload, "relatedToObject.id: want string or number, got boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loaded := false
			ev, err := five9.Decoder{}.Decode([]byte(tt.body), func(string) ([]byte, error) {
				loaded = true
				return nil, nil
			})
			if err == nil {
				t.Fatalf("Decode(%s) = %+v, want error", tt.body, ev)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %q does not wrap %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if s := err.Error(); strings.Contains(s, "Go ") || strings.Contains(s, "float64") || len(s) > 800 {
				t.Errorf("error %q leaks Go types or is too long", s)
			}
			if loaded {
				t.Error("state was loaded for a bad payload")
			}
		})
	}
}

func TestDecode_UnknownEventListsKnown(t *testing.T) {
	_, err := five9.Decoder{}.Decode([]byte(`{"event":"callTransferred","params":{}}`), nil)
	for _, want := range []string{"callStarted", "callFinished", "chatEnded", "emailFinished", "objectSelected"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not list %s", err, want)
		}
	}
}

// TestDecode_StateError checks that a storage failure is returned as it is,
// not as a bad payload (which would be a 400 and lose the event).
func TestDecode_StateError(t *testing.T) {
	storage := errors.New("disk I/O error")
	_, err := five9.Decoder{}.Decode([]byte(`{"event":"callEnded","params":{"callData":{"interactionId":"i1"}}}`),
		func(string) ([]byte, error) { return nil, storage })
	if !errors.Is(err, storage) || errors.Is(err, connector.ErrBadPayload) || errors.Is(err, connector.ErrUnknownEvent) {
		t.Errorf("err = %v, want the storage error unclassified", err)
	}
}

// TestDecode_UnreadableSnapshot checks that a damaged or foreign snapshot
// neither fails the event nor is silently used.
func TestDecode_UnreadableSnapshot(t *testing.T) {
	for _, stored := range []string{`{"v":`, `[]`, `{"v":99,"cavs":[]}`} {
		finish := []byte(`{"event":"callFinished","params":{"callData":{"interactionId":"i1","callType":"INBOUND"}}}`)
		ev, err := five9.Decoder{}.Decode(finish, func(string) ([]byte, error) { return []byte(stored), nil })
		if err != nil {
			t.Fatalf("snapshot %s: %v", stored, err)
		}
		var raw struct {
			Snapshot      json.RawMessage `json:"snapshot"`
			SnapshotError string          `json:"snapshotError"`
		}
		if err := json.Unmarshal(ev.Interaction.Raw, &raw); err != nil {
			t.Fatal(err)
		}
		if string(raw.Snapshot) != "null" || raw.SnapshotError == "" {
			t.Errorf("snapshot %s: raw %s, want snapshot null with an error", stored, ev.Interaction.Raw)
		}
		if ev.Interaction.Direction != connector.DirectionInbound {
			t.Errorf("snapshot %s: the event's own data was lost", stored)
		}

		ended := []byte(`{"event":"callEnded","params":{"callData":{"interactionId":"i1"}}}`)
		ev, err = five9.Decoder{}.Decode(ended, func(string) ([]byte, error) { return []byte(stored), nil })
		if err != nil || !json.Valid(ev.State) || strings.Contains(string(ev.State), `"v":99`) {
			t.Errorf("snapshot %s: callEnded gave %s, %v; want a fresh snapshot", stored, ev.State, err)
		}
	}
}

// TestDecode_NilState checks that a caller without storage (a preview)
// gets the event's own interaction.
func TestDecode_NilState(t *testing.T) {
	ev, err := five9.Decoder{}.Decode([]byte(`{"event":"callFinished","params":{"callData":{"interactionId":"i1"}}}`), nil)
	if err != nil || ev.Interaction == nil || ev.StateKey != "i1" || ev.State != nil {
		t.Fatalf("Decode = %+v, %v", ev, err)
	}
}

func TestDecode_Direction(t *testing.T) {
	tests := []struct{ event, data, want string }{
		{"callFinished", `"callType":"INBOUND"`, "inbound"},
		{"callFinished", `"callType":"outbound"`, "outbound"},
		{"callFinished", `"callType":"PREVIEW"`, "outbound"},
		{"callFinished", `"callType":"MANUAL"`, "outbound"},
		{"callFinished", `"callType":"AUTODIAL"`, "outbound"},
		{"callFinished", `"callType":"QUEUE_CALLBACK"`, "outbound"},
		{"callFinished", `"callType":"AGENT","number":"agent:jdoe"`, "internal"},
		{"callFinished", `"callType":"TEST"`, "unknown"},
		{"callFinished", `"number":"1"`, "unknown"},
		{"chatFinished", `"number":"1"`, "inbound"},
		{"emailFinished", `"number":"1"`, "inbound"},
	}
	for _, tt := range tests {
		fam := strings.TrimSuffix(tt.event, "Finished")
		body := `{"event":"` + tt.event + `","params":{"` + fam + `Data":{"interactionId":"i1",` + tt.data + `}}}`
		ev, err := five9.Decoder{}.Decode([]byte(body), nil)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if ev.Interaction.Direction != tt.want {
			t.Errorf("%s %s: Direction %q, want %q", tt.event, tt.data, ev.Interaction.Direction, tt.want)
		}
		if strings.Contains(tt.data, "agent:") && ev.Interaction.Phone != "" {
			t.Errorf("agent:jdoe became Phone %q", ev.Interaction.Phone)
		}
	}
}

func TestDecode_WhoWhat(t *testing.T) {
	const (
		contact = `{"id":"c1","label":"Contact","isWho":true,"isWhat":false}`
		account = `{"id":"a1","type":"Account","isWho":false,"isWhat":true}`
		bare    = `{"id":"x1","label":"Thing"}`
	)
	tests := []struct {
		name, name_, related string
		who, what, objects   string
	}{
		{"Both", contact, account, "c1", "a1", "c1 a1"},
		{"FlagsWin", account, contact, "c1", "a1", "a1 c1"},
		{"SlotsWithoutFlags", bare, `{"id":"y1"}`, "x1", "y1", "x1 y1"},
		{"OnlyName", contact, `null`, "c1", "", "c1"},
		{"OnlyRelated", `null`, account, "", "a1", "a1"},
		{"SameObject", contact, contact, "c1", "", "c1"},
		{"NoID", `{"label":"Contact","isWho":true}`, `{"id":""}`, "", "", ""},
		{"NumericID", `{"id":48213,"label":"Ticket","isWhat":true}`, `null`, "", "48213", "48213"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"event":"callFinished","params":{"callData":{"interactionId":"i1"}},"nameObject":` + tt.name_ + `,"relatedToObject":` + tt.related + `}`
			ev, err := five9.Decoder{}.Decode([]byte(body), nil)
			if err != nil {
				t.Fatal(err)
			}
			in := ev.Interaction
			var ids []string
			for _, o := range in.Objects {
				ids = append(ids, o.ID)
			}
			if got := idOf(in.Who) + "|" + idOf(in.What) + "|" + strings.Join(ids, " "); got != tt.who+"|"+tt.what+"|"+tt.objects {
				t.Errorf("who|what|objects = %q, want %q", got, tt.who+"|"+tt.what+"|"+tt.objects)
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

// TestDecode_CAVBounds checks that a gigantic CAV list is stored and
// flagged, not refused and not copied whole.
func TestDecode_CAVBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"event":"callEnded","params":{"callData":{"interactionId":"i1"}},"cavs":[`)
	const n = 5000
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"group":"G","name":"n` + itoa(i) + `","value":"v"}`)
	}
	b.WriteString(`,{"group":"G","value":"no name"},{"group":"Big","name":"blob","value":"` + strings.Repeat("x", 300<<10) + `"}]}`)
	d := newDaemon(t)
	d.post(1, []byte(b.String()))
	_, in := d.post(2, []byte(`{"event":"callFinished","params":{"callData":{"interactionId":"i1"}}}`))
	if in == nil {
		t.Fatal("no interaction")
	}
	delete(in.Attached, five9.FlagNoDisposition)
	if len(in.Attached) != 1000 || in.Attached["G.n999"] != "v" || in.Attached["G.n1000"] != nil || in.Attached["Big.blob"] != nil {
		t.Errorf("Attached has %d entries, want the first 1000", len(in.Attached))
	}
	var raw struct {
		CAVsDropped int `json:"cavsDropped"`
	}
	if err := json.Unmarshal(in.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.CAVsDropped != n-1000+2 {
		t.Errorf("cavsDropped = %d, want %d", raw.CAVsDropped, n-1000+2)
	}
	if len(in.Raw) > 400<<10 {
		t.Errorf("Raw is %d bytes", len(in.Raw))
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// TestDecode_Concurrent runs one Decoder from many goroutines under -race:
// it keeps no state of its own.
func TestDecode_Concurrent(t *testing.T) {
	var bodies [][]byte
	for _, f := range sequences(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, bytes.Split(bytes.TrimSpace(b), []byte("\n"))...)
	}
	var dec five9.Decoder
	errs := make(chan error, len(bodies))
	for _, body := range bodies {
		go func() {
			_, err := dec.Decode(body, func(string) ([]byte, error) { return nil, nil })
			errs <- err
		}()
	}
	for range bodies {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
