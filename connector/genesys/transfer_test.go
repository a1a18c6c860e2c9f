package genesys

import (
	"fmt"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// A blind transfer written from the Service Client API guide (seed 002:
// subscribe's message shape, the voice eventType/state table; seed 000:
// callUuid is the stable id, interactionId is each tab's own): Ann answers
// an inbound call and transfers it to Bob; both see the same callUuid,
// each tab numbers the interaction itself. Ann's second tab posts her
// events again.

// wweVoice is one message as the bridge posts it: the subscribe handler's
// message, plus agent.get's agent and the receipt time.
func wweVoice(eventType, state, tabID, agent, at, userData string) []byte {
	return fmt.Appendf(nil, `{"event":"interaction","data":{"eventType":%q,"media":"voice",`+
		`"interaction":{"interactionId":%q,"callUuid":"00A1B2C3D4E5F6X","state":%q,"direction":"IN","callType":"Inbound",`+
		`"ani":"5551234","dnis":"8005550100","userData":{%s}}},"agent":%s,"receivedAt":%q}`,
		eventType, tabID, state, userData, agent, at)
}

const (
	ann = `{"employeeId":"ann","firstName":"Ann","lastName":"Lee","username":"alee"}`
	bob = `{"employeeId":"bob","firstName":"Bob","lastName":"Ng","username":"bng"}`
)

// transferSequence is the whole call; done says whether the agents mark
// their legs done (false: both close the tab after the call).
func transferSequence(done bool) [][]byte {
	seq := [][]byte{
		wweVoice("ADDED", "RINGING", "1", ann, "2026-03-02T09:00:00Z", ``),
		wweVoice("ESTABLISHED", "TALKING", "1", ann, "2026-03-02T09:00:05Z", ``),
		// Ann's second tab, its own interactionId.
		wweVoice("ESTABLISHED", "TALKING", "4", ann, "2026-03-02T09:00:05.2Z", ``),
		wweVoice("ATTACHED_DATA_CHANGED", "TALKING", "1", ann, "2026-03-02T09:01:00Z", `"DispositionCode":"Transferred"`),
		wweVoice("RELEASED", "IDLE", "1", ann, "2026-03-02T09:02:05Z", `"DispositionCode":"Transferred"`),
		wweVoice("ADDED", "RINGING", "1", bob, "2026-03-02T09:02:06Z", `"DispositionCode":"Transferred"`),
		wweVoice("ESTABLISHED", "TALKING", "1", bob, "2026-03-02T09:02:10Z", `"DispositionCode":"Transferred"`),
		wweVoice("ATTACHED_DATA_CHANGED", "TALKING", "1", bob, "2026-03-02T09:05:00Z", `"DispositionCode":"Sale"`),
		wweVoice("RELEASED", "IDLE", "1", bob, "2026-03-02T09:07:10Z", `"DispositionCode":"Sale"`),
	}
	if done {
		seq = append(seq,
			wweVoice("MARKDONE_APPLY", "IDLE", "1", ann, "2026-03-02T09:02:30Z", `"DispositionCode":"Transferred"`),
			wweVoice("MARKDONE_APPLY", "IDLE", "4", ann, "2026-03-02T09:02:30.3Z", `"DispositionCode":"Transferred"`),
			wweVoice("REMOVED", "IDLE", "1", ann, "2026-03-02T09:02:31Z", `"DispositionCode":"Transferred"`),
			wweVoice("MARKDONE_APPLY", "IDLE", "1", bob, "2026-03-02T09:08:00Z", `"DispositionCode":"Sale"`),
			wweVoice("REMOVED", "IDLE", "1", bob, "2026-03-02T09:08:01Z", `"DispositionCode":"Sale"`),
		)
	}
	return seq
}

type legWant struct {
	agent, leg, disposition string
	start, end              string
	duration                int
}

func checkLegs(t *testing.T, got []*connector.Interaction, want []legWant) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d interactions, want %d (one per agent)", len(got), len(want))
	}
	for i, w := range want {
		in := got[i]
		if in.ID != "00A1B2C3D4E5F6X" || in.Agent.ID != w.agent || in.Leg != w.leg {
			t.Errorf("interaction %d: id %q agent %q leg %q, want the callUuid, agent %q, leg %q", i, in.ID, in.Agent.ID, in.Leg, w.agent, w.leg)
		}
		if in.Disposition == nil || in.Disposition.Code != w.disposition {
			t.Errorf("interaction %d (%s): disposition %+v, want %q", i, w.agent, in.Disposition, w.disposition)
		}
		if in.Start == nil || in.Start.Format(time.RFC3339) != w.start || in.End == nil || in.End.Format(time.RFC3339) != w.end || in.Duration != w.duration {
			t.Errorf("interaction %d (%s): %v to %v, %d s; want %s to %s, %d s", i, w.agent, in.Start, in.End, in.Duration, w.start, w.end, w.duration)
		}
	}
	if got[0].Leg == got[1].Leg {
		t.Errorf("both legs are %q: their records would share a key", got[0].Leg)
	}
}

// TestTransfer_EachAgentsLeg: each agent's leg is an interaction of its own,
// with that agent's times and disposition, and the second tab's duplicates
// of Ann's leg make nothing more.
func TestTransfer_EachAgentsLeg(t *testing.T) {
	m := newDaemon(testDecoder())
	for i, body := range transferSequence(true) {
		if _, err := m.post(i+1, body); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
	}
	checkLegs(t, m.out, []legWant{
		{agent: "ann", leg: "ann", disposition: "Transferred", start: "2026-03-02T09:00:05Z", end: "2026-03-02T09:02:05Z", duration: 120},
		{agent: "bob", leg: "bob", disposition: "Sale", start: "2026-03-02T09:02:10Z", end: "2026-03-02T09:07:10Z", duration: 300},
	})
	if len(m.states) != 0 {
		t.Errorf("snapshots left after both REMOVED: %v", m.states)
	}
}

// TestTransfer_FlushEveryLeg: when neither agent marks done, the stale
// snapshot holds two ended legs, and FlushLegs logs both.
func TestTransfer_FlushEveryLeg(t *testing.T) {
	m := newDaemon(testDecoder())
	for i, body := range transferSequence(false) {
		if _, err := m.post(i+1, body); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
	}
	if len(m.out) != 0 || len(m.states) != 1 {
		t.Fatalf("%d interactions and %d snapshots before the flush, want 0 and 1", len(m.out), len(m.states))
	}
	legs, err := testDecoder().FlushLegs(m.states["00A1B2C3D4E5F6X"])
	if err != nil {
		t.Fatal(err)
	}
	checkLegs(t, legs, []legWant{
		{agent: "ann", leg: "ann", disposition: "Transferred", start: "2026-03-02T09:00:05Z", end: "2026-03-02T09:02:05Z", duration: 120},
		{agent: "bob", leg: "bob", disposition: "Sale", start: "2026-03-02T09:02:10Z", end: "2026-03-02T09:07:10Z", duration: 300},
	})
	for _, in := range legs {
		if in.Attached[FlagFlushed] == nil || in.Attached[FlagIncomplete] != true {
			t.Errorf("leg %s is not flagged as flushed: %v", in.Leg, in.Attached)
		}
	}
}
