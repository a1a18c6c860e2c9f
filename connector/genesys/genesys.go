// Package genesys decodes the Genesys events posted to POST
// /v1/events/genesys into connector.Events. Two wire formats arrive there:
//
//   - WWE Service Client API messages, exactly as the browser bridge's
//     genesys.wwe.service.subscribe handler receives them, plus the agent
//     (from agent.get) and the time the browser received them:
//
//     {"event":"interaction","data":{"eventType":"ESTABLISHED","interaction":{…}},"agent":{…},"receivedAt":"…"}
//
//   - Genesys Web Services CometD notifications, as the daemon's subscriber
//     wraps them (it may add "agent" too):
//
//     {"source":"gws","channel":"/v2/me/interactions","data":{"messageType":…,"interaction":{…}},"receivedAt":"…"}
//
// Genesys spreads an interaction over many events and none of them carries
// a time, so the decoder keeps a snapshot per interaction (Event.State,
// keyed by interactionUUID or callUuid, never the per-tab interactionId):
// ADDED, RINGING, DIALING, ESTABLISHED, ATTACHED_DATA_CHANGED,
// PARTY_CHANGED, RELEASED and the OpenMedia and chat events update it, with
// the bridge's receivedAt stamps as times, and the event that completes the
// interaction returns it as Event.Interaction: voice at MARKDONE_APPLY, or
// REMOVED after the call; OpenMedia at COMPLETED; chat at COMPLETED or
// MARKDONE_APPLY, or REMOVED after ENDED. The snapshot holds one leg per
// agent, so that both agents of a transferred call, which share its
// callUuid, get their own interaction, told apart by Interaction.Leg (the
// agent's id, or login name); FlushLegs logs every leg left unlogged.
//
// Several browser tabs of one agent post the same events. Their Event.Key
// is the same (eventType, id and a hash of what the event tells the
// snapshot, which leaves out the per-tab members), so the daemon stores
// them once; and an emitted interaction leaves a tombstone until REMOVED,
// so a later done event does not emit it twice. A done event that finds no
// snapshot emits what it carries, marked with FlagIncomplete in
// Interaction.Attached; its end is the done event's time, its start is
// missing.
//
// Click-to-dial links a call to CRM records through the userData keys
// KeyWhoType, KeyWhoID, KeyWhoName, KeyWhatType, KeyWhatID and KeyWhatName.
// userData is copied within bounds (100 keys, 2 KiB a value, 32 KiB in
// all; the disposition and the keys above first), so that a huge attachment
// cannot bloat the snapshot that every later event of the call reads and
// writes.
//
// Decoding is strict about the members it reads (a wrong JSON type is an
// error naming the dotted path) and tolerant of the others, which Genesys
// adds between releases. Unknown eventTypes are stored, not refused: see
// Decode.
package genesys

import (
	"fmt"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// Platform is the name of this source in Event.Platform, Interaction.Platform
// and the URL path.
const Platform = "genesys"

// Decoder turns Genesys WWE events and GWS notifications into
// connector.Events. Its zero value is ready to use.
type Decoder struct {
	// DispositionKey is the userData key holding the disposition; ""
	// means DefaultDispositionKey ("DispositionCode").
	DispositionKey string

	// Now is the time an event without the bridge's receivedAt stamp is
	// received, which stands in for it; nil is time.Now.
	Now func() time.Time
}

// Decode decodes one posted message, loading and returning the snapshot of
// the interaction it describes.
//
// Errors wrap connector.ErrBadPayload when the body is not one of the two
// shapes or a member read has the wrong type, naming the member
// (data.interaction.callUuid: want string, got number), and
// connector.ErrUnknownEvent when the top-level event is not a Service Client
// API topic. An unknown eventType inside a known topic is not an error: it
// is stored, with Type set to it and no state and no Interaction. The
// topics are a closed list that only a broken or foreign bridge gets wrong,
// which 422 tells its author; eventTypes grow with every Genesys release,
// and refusing them would make a working bridge fail, and lose the events,
// after a WWE upgrade. An error from state is returned wrapped, not as a bad
// payload.
func (d Decoder) Decode(body []byte, state connector.StateFunc) (connector.Event, error) {
	top, err := connector.ParseObject(body)
	if err != nil {
		return connector.Event{}, err
	}
	var r reader
	source := r.Str(top, "source")
	event := r.Str(top, "event")
	agent := r.agent(top)
	at := d.receivedAt(&r, top)
	if r.Err() != nil {
		return connector.Event{}, r.Err()
	}

	var ev connector.Event
	var o *observation
	switch {
	case source == SourceGWS:
		ev, o, err = d.gws(top, at, agent)
	case source != "":
		return connector.Event{}, connector.BadPayload("source", "want %q or no source, got %q", SourceGWS, connector.Clip(source))
	case event == "":
		return connector.Event{}, connector.BadPayload("event", "required")
	case event == TopicInteraction:
		ev, o, err = d.wwe(top, at, agent)
	case topics[event]:
		ev, err = storedTopic(event, top)
	default:
		return connector.Event{}, fmt.Errorf("%w %q: known events are agent, interaction, markdone, outbound and system",
			connector.ErrUnknownEvent, connector.Clip(event))
	}
	if err != nil || o == nil {
		return ev, err
	}
	return d.track(ev, o, state)
}

// receivedAt reads the bridge's stamp. WWE events carry no time of their
// own, so this is how start and end are known; without it, the time of
// decoding stands in.
func (d Decoder) receivedAt(r *reader, top connector.Object) time.Time {
	s := r.Str(top, "receivedAt")
	if s == "" {
		if d.Now != nil {
			return d.Now().UTC()
		}
		return time.Now().UTC()
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		r.Fail(connector.BadPayload("receivedAt", "want an RFC 3339 time, got %q", connector.Clip(s)))
		return time.Time{}
	}
	if t = t.UTC(); t.Year() > 9999 {
		// A zone offset can push 9999-12-31 into a year JSON cannot carry.
		r.Fail(connector.BadPayload("receivedAt", "%s is out of range", t.Format(time.RFC3339)))
		return time.Time{}
	}
	return t
}

// track applies o to the interaction's snapshot and fills ev's state and,
// when o completes the interaction, its Interaction.
func (d Decoder) track(ev connector.Event, o *observation, state connector.StateFunc) (connector.Event, error) {
	var prev []byte
	if state != nil {
		var err error
		if prev, err = state(o.id); err != nil {
			return connector.Event{}, fmt.Errorf("genesys: loading the snapshot of %s: %w", o.id, err)
		}
	}
	s := loadSnapshot(prev, o.id)
	l := s.apply(o)
	ev.StateKey, ev.State = o.id, s.encode()
	if l != nil {
		ev.Interaction = d.interaction(o.id, l, o.at, o.raw)
	}
	return ev, nil
}
