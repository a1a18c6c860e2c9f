package brightpattern

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// This is the decoder as it was before the one-pass reader (commit 36ce872),
// kept as the oracle of FuzzDecode_SameAsOld: it parses the body with
// connector.ParseObject and reads members through connector.Reader. Only its
// names changed; oneOf, whoWhat and the time limits are shared.

// OldDecode decodes body the way Decoder.Decode did before the one-pass
// reader.
func OldDecode(d Decoder, body []byte) (connector.Event, error) { return oldDecode(d, body, nil) }

// oldDecode decodes one posted event. Errors wrap connector.ErrBadPayload when
// the body is not JSON or not the bridge's shape, naming the field at fault,
// and connector.ErrUnknownEvent when the event name is not one of the known
// ones. The Event's Key is <event>:<interactionId>[:<agentId>], so the same
// event for the same interaction posted from two browser tabs is one event.
//
// Bright Pattern sends the whole interaction in one event, so Decode keeps no
// state and never calls state.
func oldDecode(d Decoder, body []byte, state connector.StateFunc) (connector.Event, error) {
	top, err := connector.ParseObject(body)
	if err != nil {
		return connector.Event{}, err
	}
	var r oldReader
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
	at := oldReceivedAt(d, &r, top)
	data, ok := r.Obj(top, "data")
	if r.Err() != nil {
		return connector.Event{}, r.Err()
	}
	if !ok {
		return connector.Event{}, connector.BadPayload("data", "required")
	}
	in, err := oldNormalize(data, agentID, at)
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

// oldReceivedAt reads the bridge's stamp: when the event reached the browser,
// the end of an interaction that gives none. Without it, the time of
// decoding stands in.
func oldReceivedAt(d Decoder, r *oldReader, top connector.Object) time.Time {
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

// oldNormalize maps InteractionData onto the normalized Interaction (DESIGN.md
// section 3). agentID is the bridge's top-level agentId, which wins over
// data.agentId because the bridge reads it from the logged-in session. at
// is when the event was received.
func oldNormalize(data connector.Object, agentID string, at time.Time) (*connector.Interaction, error) {
	var r oldReader
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

	in.Start = r.oldTime(data, "startTime")
	in.End = r.oldTime(data, "endTime")
	in.Start, in.End, in.Duration = r.oldTimes(data, in.Start, in.End, at)

	if name := r.Str(data, "disposition"); name != "" {
		in.Disposition = &connector.Disposition{Name: name}
	}
	in.Subject = r.Str(data, "subject")
	in.Notes = r.Str(data, "description")
	in.RecordingURL = r.Str(data, "recordingUrl")
	if in.RecordingURL == "" {
		in.RecordingURL = r.Str(data, "playbackUrl")
	}

	in.Attached = r.oldAttached(data, "attachedData")
	in.Parties = r.oldParties(data, "callParties")
	in.Objects = r.oldCRMObjects(data, "associatedObjects")
	in.Who, in.What = whoWhat(in.Objects)

	if r.Err() != nil {
		return nil, r.Err()
	}
	return in, nil
}

// oldTime reads an epoch time in seconds or milliseconds. Zero counts as unset:
// it is what an uninitialised JavaScript number serializes to, never a real
// interaction time.
func (r *oldReader) oldTime(o connector.Object, name string) *time.Time {
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

// oldTimes completes start and end, which InteractionData may leave out
// (all three are optional), and reads the duration in seconds. The end is
// never missing: without endTime it is start plus duration, or else at,
// when the event was received (ON_SAVE_ACTIVITY_RECORD comes after
// wrap-up, so that is a little late). The start is missing only when
// neither startTime nor duration says it. The duration falls back to end
// minus start when it is absent or negative, and is never negative.
func (r *oldReader) oldTimes(o connector.Object, start, end *time.Time, at time.Time) (*time.Time, *time.Time, int) {
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

// oldParties reads callParties; their id is the platform's leg id, which no CRM
// field needs, so it is not kept.
func (r *oldReader) oldParties(o connector.Object, name string) []connector.Party {
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

// oldReader is connector.Reader with the readers of Bright Pattern's members.
type oldReader struct{ connector.Reader }

// oldAttached reads attachedData as a map for mapping expressions; absent is
// nil.
func (r *oldReader) oldAttached(o connector.Object, name string) map[string]any {
	v := o.Get(name)
	if r.Err() != nil || v == nil {
		return nil
	}
	if connector.Kind(v) != "object" {
		r.WrongType(o, name, "object")
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(v, &m); err != nil {
		// The only failure left for valid JSON is a number too large for
		// float64; say so rather than quote encoding/json's Go types.
		num := "a number"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			num = connector.Clip(te.Value)
		}
		r.Fail(connector.BadPayload(o.At(name), "%s is out of range", num))
		return nil
	}
	return m
}

// oldCRMObjects reads associatedObjects. Bright Pattern documents each object
// ({id, type, displayName, displayType, customFields}) but not the container
// holding them, so this accepts an array of objects, or an object whose
// values are objects or arrays of them, keeps document order, and skips
// entries that are not objects with an id instead of rejecting the event.
func (r *oldReader) oldCRMObjects(o connector.Object, name string) []connector.CRMObject {
	v := o.Get(name)
	if r.Err() != nil || v == nil {
		return nil
	}
	var out []connector.CRMObject
	switch connector.Kind(v) {
	case "array":
		out = oldAppendCRMObjects(out, v)
	case "object":
		for _, m := range oldMembers(v) {
			out = oldAppendCRMObjects(out, m)
		}
	default:
		r.WrongType(o, name, "object or array")
	}
	return out
}

// oldAppendCRMObjects appends v when it is an associated object, or the
// associated objects among its elements when it is an array.
func oldAppendCRMObjects(out []connector.CRMObject, v json.RawMessage) []connector.CRMObject {
	switch connector.Kind(v) {
	case "array":
		var elems []json.RawMessage
		_ = json.Unmarshal(v, &elems)
		for _, e := range elems {
			if connector.Kind(e) == "object" {
				out = oldAppendCRMObjects(out, e)
			}
		}
	case "object":
		var m map[string]json.RawMessage
		_ = json.Unmarshal(v, &m)
		if id := oldLoose(m["id"]); id != "" {
			out = append(out, connector.CRMObject{Type: oldLoose(m["type"]), ID: id, Name: oldLoose(m["displayName"])})
		}
	}
	return out
}

// oldMembers returns an object's values in document order, which a Go map
// would lose: Who and What are the first of their kind.
func oldMembers(v json.RawMessage) []json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(v))
	if _, err := dec.Token(); err != nil { // {
		return nil
	}
	var vals []json.RawMessage
	for dec.More() {
		if _, err := dec.Token(); err != nil { // key
			return vals
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return vals
		}
		vals = append(vals, val)
	}
	return vals
}

// oldLoose reads a string, or a number as written (some CRMs have numeric
// record ids), trimmed; anything else is "".
func oldLoose(v json.RawMessage) string {
	switch connector.Kind(v) {
	case "string":
		var s string
		_ = json.Unmarshal(v, &s)
		return strings.TrimSpace(s)
	case "number":
		return string(bytes.TrimSpace(v))
	}
	return ""
}
