// Package brightpattern decodes the events that the Bright Pattern browser
// bridge posts to POST /v1/events/brightpattern into connector.Events.
//
// The bridge forwards Agent Desktop client API callbacks as they are:
//
//	{"event":"ON_SAVE_ACTIVITY_RECORD","agentId":"…","data":{…InteractionData…},"receivedAt":"…"}
//
// ON_SAVE_ACTIVITY_RECORD carries the whole InteractionData once the agent has
// finished wrap-up, so it is the event that becomes an activity.
// ON_INTERACTION_END carries the same data earlier, before the disposition and
// notes are final; it is stored but, unless Decoder.LogOnEnd is set, produces
// no activity.
//
// startTime, endTime and duration are optional: the end is then start plus
// duration, or the bridge's receivedAt stamp (or Decoder.Now for an event
// without one), so that every interaction has an end. Each agent who saves
// a record for an interaction (a transfer) makes an event and an
// Interaction of their own: the agent's id is in Event.Key and is
// Interaction.Leg.
//
// Decoding is strict about the fields it reads (a wrong JSON type is an error
// naming the dotted path, such as data.startTime) and tolerant of everything
// else, because Bright Pattern adds fields between releases.
package brightpattern

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// Platform is the name of this source in Event.Platform, Interaction.Platform
// and the URL path.
const Platform = "brightpattern"

// Event names the bridge posts, as the Agent Desktop API spells them.
const (
	EventSaveActivityRecord = "ON_SAVE_ACTIVITY_RECORD"
	EventInteractionEnd     = "ON_INTERACTION_END"
)

// Decoder turns Bright Pattern Agent Desktop events into connector.Events.
// Its zero value is ready to use.
type Decoder struct {
	// LogOnEnd makes ON_INTERACTION_END produce an activity too. By default
	// only ON_SAVE_ACTIVITY_RECORD does, and ON_INTERACTION_END is stored and
	// acknowledged with a nil Interaction. Set it for deployments where the
	// save-activity callback is not configured in Bright Pattern.
	LogOnEnd bool
	// Now is the time an event without the bridge's receivedAt stamp is
	// received, the end of an interaction that gives no end of its own;
	// nil is time.Now.
	Now func() time.Time
}

// Decode decodes one posted event. Errors wrap connector.ErrBadPayload when
// the body is not JSON or not the bridge's shape, naming the field at fault,
// and connector.ErrUnknownEvent when the event name is not one of the known
// ones. The Event's Key is <event>:<interactionId>[:<agentId>], so the same
// event for the same interaction posted from two browser tabs is one event.
//
// Bright Pattern sends the whole interaction in one event, so Decode keeps no
// state and never calls state.
func (d Decoder) Decode(body []byte, state connector.StateFunc) (connector.Event, error) {
	if err := connector.CheckObject(body); err != nil {
		return connector.Event{}, err
	}
	top := parseObject("", -1, body[skipSpace(body, 0):])
	var r reader
	name := r.Str(top, "event")
	if r.Err() != nil {
		return connector.Event{}, r.Err()
	}
	switch name {
	case EventSaveActivityRecord, EventInteractionEnd:
	case "":
		return connector.Event{}, connector.BadPayload("event", "required")
	default:
		return connector.Event{}, fmt.Errorf("%w %q: known events are %s and %s",
			connector.ErrUnknownEvent, connector.Clip(name), EventSaveActivityRecord, EventInteractionEnd)
	}
	agentID := r.ID(top, "agentId")
	at := d.receivedAt(&r, top)
	data, ok := r.Obj(top, "data")
	if r.Err() != nil {
		return connector.Event{}, r.Err()
	}
	if !ok {
		return connector.Event{}, connector.BadPayload("data", "required")
	}
	in, err := normalize(data, agentID, at)
	if err != nil {
		return connector.Event{}, err
	}
	ev := connector.Event{Platform: Platform, Type: name, Key: name + ":" + in.ID}
	if in.Leg != "" {
		// Each agent who handled the interaction saves their own record.
		ev.Key += ":" + in.Leg
	}
	if name == EventSaveActivityRecord || d.LogOnEnd {
		ev.Interaction = in
	}
	return ev, nil
}

// receivedAt reads the bridge's stamp: when the event reached the browser,
// the end of an interaction that gives none. Without it, the time of
// decoding stands in.
func (d Decoder) receivedAt(r *reader, top object) time.Time {
	s := r.Str(top, "receivedAt")
	if s == "" {
		if d.Now != nil {
			return d.Now().UTC()
		}
		return time.Now().UTC()
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.Year() < 0 || t.UTC().Year() > 9999 {
		r.Fail(connector.BadPayload("receivedAt", "want an RFC 3339 time, got %q", connector.Clip(s)))
		return time.Time{}
	}
	return t.UTC()
}

// normalize maps InteractionData onto the normalized Interaction (DESIGN.md
// section 3). agentID is the bridge's top-level agentId, which wins over
// data.agentId because the bridge reads it from the logged-in session. at
// is when the event was received.
func normalize(data object, agentID string, at time.Time) (*connector.Interaction, error) {
	var r reader
	in := &connector.Interaction{Platform: Platform, Raw: data.Raw()}

	in.ID = r.ID(data, "interactionId")
	if in.ID == "" && r.Err() == nil {
		return nil, connector.BadPayload("data.interactionId", "required")
	}
	if data.Get("type") == nil && r.Err() == nil {
		return nil, connector.BadPayload("data.type", "required")
	}
	in.Channel = oneOf(r.Str(data, "type"), connector.ChannelOther,
		connector.ChannelVoice, connector.ChannelChat, connector.ChannelEmail)
	in.Direction = oneOf(r.Str(data, "callDirection"), connector.DirectionUnknown,
		connector.DirectionInbound, connector.DirectionOutbound)
	in.GlobalID = r.Str(data, "globalInteractionId")

	in.ANI = r.Str(data, "ANI")
	in.DNIS = r.Str(data, "DNIS")
	in.Phone = r.Str(data, "phoneNumber")
	in.Email = r.Str(data, "email")

	in.Agent.ID = r.ID(data, "agentId")
	if agentID != "" {
		in.Agent.ID = agentID
	}
	in.Leg = in.Agent.ID
	in.Queue = r.Str(data, "service")

	in.Start = r.time(data, "startTime")
	in.End = r.time(data, "endTime")
	in.Start, in.End, in.Duration = r.times(data, in.Start, in.End, at)

	if name := r.Str(data, "disposition"); name != "" {
		in.Disposition = &connector.Disposition{Name: name}
	}
	in.Subject = r.Str(data, "subject")
	in.Notes = r.Str(data, "description")
	in.RecordingURL = r.Str(data, "recordingUrl")
	if in.RecordingURL == "" {
		in.RecordingURL = r.Str(data, "playbackUrl")
	}

	in.Attached = r.attached(data, "attachedData")
	in.Parties = r.parties(data, "callParties")
	in.Objects = r.crmObjects(data, "associatedObjects")
	in.Who, in.What = whoWhat(in.Objects)

	if r.Err() != nil {
		return nil, r.Err()
	}
	return in, nil
}

// oneOf returns s lowercased when it is one of allowed, else def: the
// normalized vocabulary is closed so that mapping rules can rely on it.
func oneOf(s, def string, allowed ...string) string {
	s = strings.ToLower(s)
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	return def
}

// Times are JavaScript numbers whose unit the API does not document. Epoch
// seconds above 1e11 would be after the year 5000, so larger values are
// milliseconds. The upper bound is the last millisecond of year 9999, the
// largest time that encoding/json can write back out.
const (
	millisAbove = 1e11
	maxMillis   = 253402300799999
	// maxDuration (about 31 years) keeps a nonsense duration from
	// overflowing int.
	maxDuration = 1e9
)

// time reads an epoch time in seconds or milliseconds. Zero counts as unset:
// it is what an uninitialised JavaScript number serializes to, never a real
// interaction time.
func (r *reader) time(o object, name string) *time.Time {
	v, ok := r.Num(o, name)
	if !ok || v == 0 {
		return nil
	}
	ms := v
	if v <= millisAbove {
		ms = v * 1000
	}
	if ms < 0 || ms > maxMillis {
		r.Fail(connector.BadPayload(o.At(name), "%v is out of range for an epoch time", v))
		return nil
	}
	t := time.UnixMilli(int64(math.Round(ms))).UTC()
	return &t
}

// times completes start and end, which InteractionData may leave out
// (all three are optional), and reads the duration in seconds. The end is
// never missing: without endTime it is start plus duration, or else at,
// when the event was received (ON_SAVE_ACTIVITY_RECORD comes after
// wrap-up, so that is a little late). The start is missing only when
// neither startTime nor duration says it. The duration falls back to end
// minus start when it is absent or negative, and is never negative.
func (r *reader) times(o object, start, end *time.Time, at time.Time) (*time.Time, *time.Time, int) {
	v, ok := r.Num(o, "duration")
	if ok && v > maxDuration {
		r.Fail(connector.BadPayload(o.At("duration"), "%v seconds is out of range", v))
		return nil, nil, 0
	}
	ok = ok && v >= 0
	d := time.Duration(math.Round(v)) * time.Second
	// A time JSON cannot carry (after year 9999, or before year 0) is not
	// derived: the stored interaction must encode.
	storable := func(t time.Time) bool { return t.Year() >= 0 && t.Year() <= 9999 }
	switch {
	case end != nil:
	case start != nil && ok && storable(start.Add(d)):
		e := start.Add(d)
		end = &e
	default:
		end = &at
	}
	if start == nil && ok && storable(end.Add(-d)) {
		s := end.Add(-d)
		start = &s
	}
	switch {
	case ok:
		return start, end, int(math.Round(v))
	case start == nil || end.Before(*start):
		return start, end, 0
	}
	return start, end, int(end.Sub(*start).Round(time.Second) / time.Second)
}

// parties reads callParties; their id is the platform's leg id, which no CRM
// field needs, so it is not kept.
func (r *reader) parties(o object, name string) []connector.Party {
	var out []connector.Party
	for p := range r.Objects(o, name) {
		out = append(out, connector.Party{
			Name:   r.Str(p, "name"),
			Phone:  r.Str(p, "phone"),
			UserID: r.Str(p, "userId"),
		})
	}
	return out
}

// whoWhat picks the record an activity is about (who: a contact or lead) and
// the record it relates to (what: anything else), first of each in document
// order, the way Salesforce's WhoId and WhatId split them.
func whoWhat(objs []connector.CRMObject) (who, what *connector.CRMObject) {
	for _, o := range objs {
		isWho := strings.EqualFold(o.Type, "contact") || strings.EqualFold(o.Type, "lead")
		switch {
		case isWho && who == nil:
			who = &o
		case !isWho && what == nil:
			what = &o
		}
	}
	return who, what
}
