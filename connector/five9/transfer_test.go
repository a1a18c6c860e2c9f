package five9_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/five9"
)

// Sequences written from the CRM SDK's InteractionApi (seed 003): each
// callback's params carry callData (interactionId) and, at wrap-up,
// callLogData; the bridge adds getMetadata's agentId and the receipt time.
// A transferred call reaches the second agent with the same interactionId.

// f9 is one post of the bridge.
func f9(event, params string, agentID int, at string) []byte {
	stamp := ""
	if at != "" {
		stamp = fmt.Sprintf(`,"receivedAt":%q`, at)
	}
	return fmt.Appendf(nil, `{"event":%q,"params":{%s},"metadata":{"agentId":%d,"tenantId":77}%s}`, event, params, agentID, stamp)
}

const callData = `"callData":{"interactionId":"92544E7EFD1B4858A93C54092CB51886","callType":"INBOUND","number":"9250000111"}`

// TestTransfer_EachAgentsLeg: Ann takes the call and transfers it to Bob;
// each finishes their own leg with their own disposition. Ann's second tab
// posts her callFinished again.
func TestTransfer_EachAgentsLeg(t *testing.T) {
	const ann, bob = 1001, 1002
	seq := [][]byte{
		f9("callStarted", callData, ann, "2026-03-02T09:00:00Z"),
		f9("callAccepted", callData, ann, "2026-03-02T09:00:04Z"),
		f9("callEnded", callData, ann, "2026-03-02T09:02:04Z"),
		f9("callStarted", callData, bob, "2026-03-02T09:02:05Z"),
		f9("callFinished", callData+`,"callLogData":{"dispositionId":"-3","dispositionName":"Transferred To Agent"}`, ann, "2026-03-02T09:02:30Z"),
		f9("callFinished", callData+`,"callLogData":{"dispositionId":"-3","dispositionName":"Transferred To Agent"}`, ann, "2026-03-02T09:02:31Z"),
		f9("callAccepted", callData, bob, "2026-03-02T09:02:09Z"),
		f9("callEnded", callData, bob, "2026-03-02T09:07:09Z"),
		f9("callFinished", callData+`,"callLogData":{"dispositionId":"3558","dispositionName":"Sale"}`, bob, "2026-03-02T09:08:00Z"),
	}
	d := newDaemon(t)
	var out []*connector.Interaction
	for i, body := range seq {
		if _, in := d.post(i+1, body); in != nil {
			out = append(out, in)
		}
	}
	want := []struct {
		agent, disposition string
		start, end         string
		duration           int
	}{
		{"1001", "Transferred To Agent", "2026-03-02T09:00:00Z", "2026-03-02T09:02:04Z", 124},
		{"1002", "Sale", "2026-03-02T09:02:05Z", "2026-03-02T09:07:09Z", 304},
	}
	if len(out) != len(want) {
		t.Fatalf("%d interactions, want %d: one per agent, the second tab's duplicate making none", len(out), len(want))
	}
	for i, w := range want {
		in := out[i]
		if in.ID != "92544E7EFD1B4858A93C54092CB51886" || in.Agent.ID != w.agent || in.Leg != w.agent {
			t.Errorf("leg %d: id %q agent %q leg %q, want agent and leg %q", i, in.ID, in.Agent.ID, in.Leg, w.agent)
		}
		if in.Disposition == nil || in.Disposition.Name != w.disposition {
			t.Errorf("leg %d: disposition %+v, want %q", i, in.Disposition, w.disposition)
		}
		if fmtTime(in.Start) != w.start || fmtTime(in.End) != w.end || in.Duration != w.duration {
			t.Errorf("leg %d: %s to %s, %d s; want %s to %s, %d s", i, fmtTime(in.Start), fmtTime(in.End), in.Duration, w.start, w.end, w.duration)
		}
	}
}

// TestDecode_SmallestCall: a callEnded and callFinished pair with no
// times at all (no receivedAt either) gets the daemon's receipt times: an
// end, and a start from the earlier event.
func TestDecode_SmallestCall(t *testing.T) {
	clock := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	dec := five9.Decoder{Now: func() time.Time { return clock }}
	states := map[string][]byte{}
	post := func(body string) *connector.Interaction {
		ev, err := dec.Decode([]byte(body), func(k string) ([]byte, error) { return states[k], nil })
		if err != nil {
			t.Fatal(err)
		}
		states[ev.StateKey] = ev.State
		return ev.Interaction
	}
	post(`{"event":"callEnded","params":{"callData":{"interactionId":"i1"}}}`)
	clock = clock.Add(45 * time.Second)
	in := post(`{"event":"callFinished","params":{"callData":{"interactionId":"i1"}}}`)
	if in == nil || fmtTime(in.Start) != "2026-03-02T09:00:00Z" || fmtTime(in.End) != "2026-03-02T09:00:00Z" || in.Duration != 0 {
		t.Fatalf("got %+v, want start and end at the callEnded's receipt", in)
	}
	if in.Attached[five9.FlagNoDisposition] != true {
		t.Errorf("no disposition, but attached is %v", in.Attached)
	}

	// A callFinished alone: its receipt is the end, the start is unknown.
	in = post(`{"event":"callFinished","params":{"callData":{"interactionId":"i2"}}}`)
	if in.Start != nil || fmtTime(in.End) != "2026-03-02T09:00:45Z" {
		t.Errorf("callFinished alone: %s to %s, want no start and the receipt as end", fmtTime(in.Start), fmtTime(in.End))
	}
}

func TestDecode_Wrapup(t *testing.T) {
	dispositions := `,"dispositions":[{"id":"3558","name":"Sale"},{"id":"-3","name":"Transferred To Agent"}]`
	tests := []struct {
		name, ended, finished string
		wantCode, wantName    string
	}{
		{"LogData", ``, `,"callLogData":{"dispositionId":"3558","dispositionName":"Sale"}`, "3558", "Sale"},
		{"TopOfParams", ``, `,"dispositionId":"3558","dispositionName":"Sale"`, "3558", "Sale"},
		{"TopOfParamsNumber", ``, `,"dispositionId":3558`, "3558", ""},
		{"ByIDFromList", dispositions, `,"dispositionId":3558`, "3558", "Sale"},
		{"ByIDFromListInLog", dispositions, `,"callLogData":{"dispositionId":"-3"}`, "-3", "Transferred To Agent"},
		{"LogDataWins", ``, `,"dispositionId":"1","callLogData":{"dispositionId":"3558","dispositionName":"Sale"}`, "3558", "Sale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDaemon(t)
			d.post(1, []byte(`{"event":"callEnded","params":{`+callData+`}`+tt.ended+`}`))
			_, in := d.post(2, []byte(`{"event":"callFinished","params":{`+callData+tt.finished+`}}`))
			if in.Disposition == nil || in.Disposition.Code != tt.wantCode || in.Disposition.Name != tt.wantName {
				t.Fatalf("disposition %+v, want %q %q", in.Disposition, tt.wantCode, tt.wantName)
			}
			if _, flagged := in.Attached[five9.FlagNoDisposition]; flagged {
				t.Errorf("flagged %s though it has a disposition", five9.FlagNoDisposition)
			}
		})
	}
}

func TestDecode_CAVGroupInName(t *testing.T) {
	d := newDaemon(t)
	_, in := d.post(1, []byte(`{"event":"callFinished","params":{`+callData+`},"cavs":[`+
		`{"group":"Call","name":"Call.Comments","value":"a"},{"group":"Call","name":"reason","value":"b"},{"group":"Customer","name":"Call.x","value":"c"}]}`))
	want := map[string]any{"Call.Comments": "a", "Call.reason": "b", "Customer.Call.x": "c"}
	for k, v := range want {
		if in.Attached[k] != v {
			t.Errorf("attached[%q] = %v, want %v (attached: %v)", k, in.Attached[k], v, in.Attached)
		}
	}
	if _, ok := in.Attached["Call.Call.Comments"]; ok {
		t.Error("the group was prefixed twice: Call.Call.Comments")
	}
}

// TestDecode_NumberByDirection: Five9's one number is the caller's of an
// inbound call and the number dialed of an outbound one.
func TestDecode_NumberByDirection(t *testing.T) {
	tests := []struct{ data, ani, dnis string }{
		{`"callType":"INBOUND","number":"9250000111"`, "9250000111", ""},
		{`"callType":"OUTBOUND","number":"9250000111"`, "", "9250000111"},
		{`"callType":"INBOUND","number":"9250000111","ani":"4155550100","dnis":"8005550199"`, "4155550100", "8005550199"},
		{`"callType":"AGENT","number":"agent:Bob"`, "", ""},
	}
	for _, tt := range tests {
		d := newDaemon(t)
		_, in := d.post(1, []byte(`{"event":"callFinished","params":{"callData":{"interactionId":"i1",`+tt.data+`}}}`))
		if in.ANI != tt.ani || in.DNIS != tt.dnis {
			t.Errorf("%s: ani %q dnis %q, want %q %q", tt.data, in.ANI, in.DNIS, tt.ani, tt.dnis)
		}
	}
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.RFC3339)
}
