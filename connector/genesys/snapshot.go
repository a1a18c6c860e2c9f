package genesys

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// snapshot is what is known of one interaction between its events: the
// Event.State stored under its id. It holds one leg per agent, because the
// agents of a transferred call see the same callUuid: each agent's part is
// tracked, and emitted, on its own.
type snapshot struct {
	V    int    `json:"v"`
	ID   string `json:"id"`
	Legs []*leg `json:"legs"`
}

// snapshotVersion changes when the stored form changes incompatibly; a
// snapshot of another version is read as none.
const snapshotVersion = 1

// maxLegs bounds the legs of one interaction; more agents than this on one
// call share the last leg.
const maxLegs = 4

// maxSnapshotBytes is more than the bounds on userData, parties and
// attributes allow a snapshot to reach; a larger stored one is not ours
// and is not read.
const maxSnapshotBytes = 512 << 10

// leg is one agent's view of an interaction. Times come from the bridge's
// receivedAt stamps, so that events posted out of order still give the
// right start and end: each time is the earliest event of its kind, and the
// attributes are those of the newest event, whatever order they arrive in.
type leg struct {
	Agent connector.Agent `json:"agent"`

	// AttrsAt is the time of the newest event the attributes come from.
	AttrsAt   time.Time         `json:"attrsAt,omitzero"`
	State     string            `json:"state,omitempty"`
	Media     string            `json:"media,omitempty"`
	Voice     bool              `json:"voice,omitempty"`
	CallType  string            `json:"callType,omitempty"`
	Direction string            `json:"direction,omitempty"`
	ANI       string            `json:"ani,omitempty"`
	DNIS      string            `json:"dnis,omitempty"`
	Consult   *bool             `json:"consult,omitempty"`
	UserData  map[string]any    `json:"userData,omitempty"`
	Truncated bool              `json:"truncated,omitempty"`
	Parties   []connector.Party `json:"parties,omitempty"`

	// First is the earliest event that starts an interaction (ADDED,
	// RINGING, DIALING, INVITED…); nil when the leg was first seen mid-way.
	First *time.Time `json:"first,omitempty"`
	// Answered is the earliest ESTABLISHED (voice) or ACCEPTED, CREATED,
	// PULLED (multimedia): when the agent started handling it.
	Answered *time.Time `json:"answered,omitempty"`
	// Ended is the earliest RELEASED, ENDED or COMPLETED.
	Ended *time.Time `json:"ended,omitempty"`
	// Call reports that a call existed (it rang, dialed, was established,
	// held or released), as opposed to an outbound preview record.
	Call bool `json:"call,omitempty"`
	// Emitted reports that the leg's Interaction was returned: it is kept,
	// emptied, until REMOVED, so that a later done event does not emit it
	// again.
	Emitted bool `json:"emitted,omitempty"`
	// Touched is the newest event time, to route events without an agent.
	Touched time.Time `json:"touched,omitzero"`
}

// Event kinds by their effect on a leg.
var (
	startKinds = kinds(EventAdded, EventRinging, EventDialing, EventEstablished, EventInvited,
		EventAccepted, EventCreated, EventPulled, "PREVIEWING", "JOIN_PENDING")
	answerKinds = kinds(EventEstablished, EventAccepted, EventCreated, EventPulled)
	endKinds    = kinds(EventReleased, EventEnded, EventCompleted)
	callKinds   = kinds(EventRinging, EventDialing, EventEstablished, EventHeld, EventReleased)
)

func kinds(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// loadSnapshot reads a stored snapshot. One that cannot be read (another
// version, a damaged row) counts as none: the interaction is then emitted
// from the events that follow and flagged incomplete, which is better than
// refusing every later event of the call.
func loadSnapshot(b []byte, id string) *snapshot {
	s := &snapshot{V: snapshotVersion, ID: id}
	if len(b) == 0 || len(b) > maxSnapshotBytes {
		return s
	}
	var got snapshot
	if json.Unmarshal(b, &got) != nil || got.V != snapshotVersion || got.ID != id {
		return s
	}
	for _, l := range got.Legs {
		if l != nil && len(s.Legs) < maxLegs {
			s.Legs = append(s.Legs, l)
		}
	}
	return s
}

// encode returns the snapshot to store, or nil, which deletes it, when no
// leg is left.
func (s *snapshot) encode() []byte {
	if len(s.Legs) == 0 {
		return nil
	}
	b, err := json.Marshal(s)
	if err == nil && len(b) > maxSnapshotBytes {
		// Only a snapshot that was not written by this package gets here:
		// keep its times, not its data.
		for _, l := range s.Legs {
			l.UserData, l.Parties, l.Truncated = nil, nil, true
		}
		b, err = json.Marshal(s)
	}
	if err != nil || len(b) > maxSnapshotBytes {
		// Every member is a string, bool, bounded number or time read from
		// RFC 3339; should one still fail, dropping the snapshot loses
		// times, not the interaction.
		return nil
	}
	return b
}

// apply records o in the leg of o's agent and reports the leg to emit,
// if o completes it. A REMOVED (or a final GWS notification) drops the
// leg; the snapshot is deleted when no leg is left.
func (s *snapshot) apply(o *observation) (emit *leg) {
	l := s.route(o)
	if !l.Emitted {
		l.record(o)
	}
	if !l.Emitted && l.done(o) {
		emit = l.clone()
		// The tombstone keeps the agent, which routes later events to it,
		// and the times; the data goes, to keep the row small.
		*l = leg{Agent: l.Agent, First: l.First, Answered: l.Answered, Ended: l.Ended,
			Emitted: true, Touched: l.Touched, Media: l.Media, Voice: l.Voice}
	}
	if o.kind == EventRemoved || o.final {
		s.Legs = slices.DeleteFunc(s.Legs, func(x *leg) bool { return x == l })
	}
	return emit
}

// route returns the leg o belongs to, adding one when needed. Events name
// their agent when the bridge adds it; those that do not (an early event,
// a GWS notification) go to the live leg touched last, or else to the
// tombstone of the leg already emitted, which absorbs them.
func (s *snapshot) route(o *observation) *leg {
	key := agentKey(o.agent)
	var live, anonymous, last *leg
	for _, l := range s.Legs {
		if key != "" && agentKey(l.Agent) == key {
			return l
		}
		newest := func(cur *leg) bool { return cur == nil || !l.Touched.Before(cur.Touched) }
		if !l.Emitted && newest(live) {
			live = l
		}
		if !l.Emitted && agentKey(l.Agent) == "" && newest(anonymous) {
			anonymous = l
		}
		if newest(last) {
			last = l
		}
	}
	switch {
	case key != "" && anonymous != nil:
		// The bridge posted this agent's first events before agent.get
		// answered.
		return anonymous
	case key == "" && live != nil:
		return live
	case key == "" && last != nil:
		return last
	case len(s.Legs) >= maxLegs:
		return last
	}
	l := &leg{}
	s.Legs = append(s.Legs, l)
	return l
}

// agentKey identifies an agent across events.
func agentKey(a connector.Agent) string {
	if a.ID != "" {
		return "id:" + a.ID
	}
	if a.Username != "" {
		return "user:" + a.Username
	}
	return ""
}

// record applies o to a live leg.
func (l *leg) record(o *observation) {
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fill(&l.Agent.ID, o.agent.ID)
	fill(&l.Agent.Name, o.agent.Name)
	fill(&l.Agent.Username, o.agent.Username)
	fill(&l.Agent.Email, o.agent.Email)

	// Attributes: the newest event's win; an older one arriving late only
	// fills what is still unknown.
	newer := !o.at.Before(l.AttrsAt)
	set := func(dst *string, v string) {
		if v != "" && (newer || *dst == "") {
			*dst = v
		}
	}
	set(&l.State, o.state)
	set(&l.Media, o.media)
	set(&l.CallType, o.callType)
	set(&l.Direction, o.direction)
	set(&l.ANI, o.ani)
	set(&l.DNIS, o.dnis)
	l.Voice = l.Voice || o.voice
	if o.consult != nil && (newer || l.Consult == nil) {
		c := *o.consult
		l.Consult = &c
	}
	// An empty userData says nothing: some events (REMOVED of a preview
	// record) carry none, and it must not wipe the disposition.
	if o.hasUserData && len(o.userData.m) > 0 && (newer || l.UserData == nil) {
		l.UserData, l.Truncated = o.userData.m, o.userData.truncated
	}
	if len(o.parties) > 0 && (newer || l.Parties == nil) {
		l.Parties = o.parties
	}
	if newer {
		l.AttrsAt = o.at
	}

	earliest := func(t **time.Time) {
		if *t == nil || o.at.Before(**t) {
			at := o.at
			*t = &at
		}
	}
	if startKinds[o.kind] {
		earliest(&l.First)
	}
	if answerKinds[o.kind] {
		earliest(&l.Answered)
	}
	if endKinds[o.kind] {
		earliest(&l.Ended)
	}
	if callKinds[o.kind] {
		l.Call = true
	}
	if o.at.After(l.Touched) {
		l.Touched = o.at
	}
}

// done reports whether o completes the leg (DESIGN.md section 3): voice at
// MARKDONE_APPLY or REMOVED; OpenMedia at COMPLETED; chat at COMPLETED or
// MARKDONE_APPLY, or REMOVED once ENDED.
func (l *leg) done(o *observation) bool {
	switch o.kind {
	case EventMarkDoneApply, EventCompleted:
		return true
	case EventRemoved:
		switch l.channel() {
		case connector.ChannelVoice:
			// Removed after the call: done, even if the RELEASED was
			// lost. A preview record that was never dialed is not a call.
			return l.Call || !previewStates[o.state]
		case connector.ChannelChat:
			// A chat removed before it ended was transferred away; the
			// agent who ends it logs it.
			return l.Ended != nil
		}
		// OpenMedia removed without COMPLETED went to a workbin, a queue
		// or another agent: whoever completes it logs it.
		return false
	}
	return false
}

// clone copies l so that the emitted leg does not share the snapshot's
// maps.
func (l *leg) clone() *leg {
	c := *l
	c.UserData = make(map[string]any, len(l.UserData))
	for k, v := range l.UserData {
		c.UserData[k] = v
	}
	c.Parties = slices.Clone(l.Parties)
	return &c
}
