// Package five9 decodes the events that the Five9 browser bridge posts to
// POST /v1/events/five9 into connector.Events.
//
// The bridge subscribes to the Five9 CRM SDK's InteractionApi and posts each
// callback with its params exactly as the SDK passes them, plus what it read
// from the SDK's getters at that moment:
//
//	{"event":"callEnded",
//	 "params":{"callData":{…CallData…}},
//	 "cavs":[…getCav…], "dispositions":[…getDispositions…],
//	 "nameObject":{…getSelectedNameObject…}, "relatedToObject":{…getSelectedRelatedToObject…},
//	 "metadata":{"agentId":…,"tenantId":…}, "receivedAt":"2026-11-21T14:31:25Z"}
//
// # One interaction, several events
//
// The SDK wipes an interaction's data (CAVs, dispositions, Name and Related
// To objects) once it is finished, so callFinished alone cannot say much.
// The decoder therefore keeps a snapshot per interaction leg through
// connector.StateFunc: callStarted, callAccepted, callEnded, the chat and
// email equivalents (*Offered, *Accepted, *Transferred, chatEnded) and
// objectSelected merge what they carry into it; callFinished, chatFinished
// and emailFinished merge the snapshot with their own params and emit the
// Interaction, deleting the snapshot. A *Finished without a snapshot still
// emits what it has: the fields it cannot know stay empty, and
// Interaction.Raw says "snapshot": null. *Rejected means the agent turned
// the offer down; it deletes that agent's snapshot and emits nothing,
// because the interaction goes back to the queue and, when another agent
// takes it, is logged under the same interaction id.
//
// The snapshot key is the interaction id and the agent id (when the bridge
// sends metadata), so the two legs of a transferred call are kept apart.
//
// # Duplicates and late events
//
// Event.Key is <event>:<interactionId>[:<agentId>], the same whichever tab
// posts it and whenever (receivedAt is not part of it), so the daemon
// stores a second callFinished from another tab as a duplicate and emits
// nothing for it. objectSelected adds a hash of the selected objects, since
// one agent may select several in turn. A *Ended that arrives after its
// *Finished (its tab was slower) is a duplicate too when another tab posted
// it already; otherwise it creates a snapshot that nothing will finish. That
// is accepted: the daemon purges snapshots after the retention period, and
// the alternative, a tombstone instead of a deletion, would keep one row per
// interaction for the same period. What must not happen, and does not, is a
// second Interaction for the same finished leg.
//
// # Field names
//
// Five9's type reference (CallData, CallLogData, Cav, CrmObject) is not
// among the seeds. The names read here are those the SDK's own examples and
// public integrations use: interactionId, callType, number, ani, dnis,
// campaignName, skillName on the interaction data; dispositionId,
// dispositionName, subject, comments on the log data; group, name, value on
// a CAV; id, type or label, name, isWho, isWhat on a CRM object. Times are
// read from timestamp or startTimestamp (epoch seconds or milliseconds, or
// RFC 3339) and duration (seconds) when present, and otherwise from the
// bridge's receivedAt stamps, or, for an event without one, the time
// Decoder.Now says it was received: every interaction has an end, and a
// start when an event before its *Finished was seen.
//
// The disposition is read from the log data and from the top level of
// params (the SDK does not document which, and both occur), its name or id
// completed from the disposition list; an interaction without one is
// flagged with FlagNoDisposition. A CAV is keyed group.name, unless its
// name carries its group already. The one number the SDK gives fills ani
// of an inbound call and dnis of an outbound one when those are not set.
//
// Each agent's leg of a transferred call, which keeps its interactionId, is
// an Interaction of its own, with the agent's id as Interaction.Leg.
//
// Decoding is strict about the fields it reads (a wrong JSON type is an
// error naming the dotted path, such as params.callData.ani) and ignores all
// others, because Five9 adds fields between releases.
package five9

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// Platform is the name of this source in Event.Platform, Interaction.Platform
// and the URL path.
const Platform = "five9"

// role is what an event does to the interaction's snapshot.
type role int

const (
	// update merges the event into the snapshot.
	update role = iota
	// finish merges the snapshot and emits the Interaction.
	finish
	// reject ends the agent's leg without an activity.
	reject
)

// Interaction families, named as the SDK's interactionType values.
const (
	familyCall  = "Call"
	familyChat  = "Chat"
	familyEmail = "Email"
)

// eventSpec describes one SDK event. family is empty for objectSelected,
// whose family comes from params.interactionType.
type eventSpec struct {
	family      string
	role        role
	ended       bool // the customer or agent left: its receivedAt is the end
	transferred bool
}

// knownEvents are InteractionApiEvents, in the SDK's own order. There is no
// callOffered or callTransferred: a call is offered with callStarted, and a
// transferred call ends with callEnded and callFinished like any other.
var knownEvents = []string{
	"callStarted", "callAccepted", "callRejected", "callEnded", "callFinished",
	"emailOffered", "emailAccepted", "emailRejected", "emailTransferred", "emailFinished",
	"chatOffered", "chatAccepted", "chatRejected", "chatTransferred", "chatEnded", "chatFinished",
	"objectSelected",
}

var eventSpecs = map[string]eventSpec{
	"callStarted":      {family: familyCall},
	"callAccepted":     {family: familyCall},
	"callRejected":     {family: familyCall, role: reject},
	"callEnded":        {family: familyCall, ended: true},
	"callFinished":     {family: familyCall, role: finish},
	"emailOffered":     {family: familyEmail},
	"emailAccepted":    {family: familyEmail},
	"emailRejected":    {family: familyEmail, role: reject},
	"emailTransferred": {family: familyEmail, transferred: true},
	"emailFinished":    {family: familyEmail, role: finish},
	"chatOffered":      {family: familyChat},
	"chatAccepted":     {family: familyChat},
	"chatRejected":     {family: familyChat, role: reject},
	"chatTransferred":  {family: familyChat, transferred: true},
	"chatEnded":        {family: familyChat, ended: true},
	"chatFinished":     {family: familyChat, role: finish},
	"objectSelected":   {},
}

// Decoder turns Five9 CRM SDK events into connector.Events. Its zero value is
// ready to use; it keeps no state of its own, all of it goes through the
// StateFunc, so one Decoder serves any number of requests at once.
type Decoder struct {
	// Now is the time an event without the bridge's receivedAt stamp is
	// received, which stands in for it; nil is time.Now.
	Now func() time.Time
}

// Decode decodes one posted event. Errors wrap connector.ErrBadPayload when
// the body is not JSON or not the bridge's shape, naming the field at fault,
// and connector.ErrUnknownEvent when the event is not one of the SDK's;
// an error from state is returned wrapped, unclassified, because it is the
// daemon's storage failing, not the payload.
//
// Decode calls state exactly once for a well-formed event, with the key it
// returns in Event.StateKey, and not at all for a malformed one. A nil state
// counts as "no snapshot".
func (d Decoder) Decode(body []byte, state connector.StateFunc) (connector.Event, error) {
	top, err := connector.ParseObject(body)
	if err != nil {
		return connector.Event{}, err
	}
	var r reader
	name := r.Str(top, "event")
	if r.Err() != nil {
		return connector.Event{}, r.Err()
	}
	spec, ok := eventSpecs[name]
	if name == "" {
		return connector.Event{}, connector.BadPayload("event", "required")
	}
	if !ok {
		return connector.Event{}, fmt.Errorf("%w %q: known events are %s",
			connector.ErrUnknownEvent, connector.Clip(name), strings.Join(knownEvents, ", "))
	}

	ev, err := read(&r, top, name, spec, d.now())
	if err != nil {
		return connector.Event{}, err
	}

	var stored []byte
	if state != nil {
		if stored, err = state(ev.stateKey); err != nil {
			return connector.Event{}, fmt.Errorf("five9: load snapshot %q: %w", ev.stateKey, err)
		}
	}
	snap, snapErr := loadSnapshot(stored)

	out := connector.Event{Platform: Platform, Type: name, Key: ev.key, StateKey: ev.stateKey}
	switch spec.role {
	case update:
		merged := &facts{}
		if snap != nil {
			merged = snap
		}
		merged.merge(ev.facts)
		if out.State, err = merged.encode(); err != nil {
			return connector.Event{}, err
		}
	case finish:
		if out.Interaction, err = ev.interaction(snap, snapErr, stored, body); err != nil {
			return connector.Event{}, err
		}
	case reject:
		// State stays nil: the leg is over for this agent.
	}
	return out, nil
}

// now is the receipt time.
func (d Decoder) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

// event is one decoded post.
type event struct {
	family   string
	id       string
	key      string
	stateKey string
	// receivedAt is the bridge's stamp, or else when the daemon received
	// the event: Five9's events carry no time of their own.
	receivedAt *time.Time
	facts      *facts
}

// read decodes everything an event carries, before any state is loaded, so
// that a bad payload never takes the interaction's lock.
func read(r *reader, top connector.Object, name string, spec eventSpec, now time.Time) (*event, error) {
	ev := &event{family: spec.family}
	ev.receivedAt = r.stamp(top, "receivedAt")
	if ev.receivedAt == nil {
		ev.receivedAt = &now
	}

	meta, _ := r.Obj(top, "metadata")
	agentID := r.ident(meta, "agentId")
	tenantID := r.ident(meta, "tenantId")

	if top.Get("params") == nil && r.Err() == nil {
		return nil, connector.BadPayload("params", "required")
	}
	params, _ := r.Obj(top, "params")

	if ev.family == "" {
		// objectSelected names its interaction's type; without it the
		// family is unknown and the snapshot keeps its own.
		ev.family = family(r.Str(params, "interactionType"))
	}
	data, logData := containers(r, params, ev.family, spec.family == "")

	idIn := data
	if data.Get("interactionId") == nil && params.Get("interactionId") != nil {
		idIn = params
	}
	ev.id = r.Str(idIn, "interactionId")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if ev.id == "" {
		return nil, connector.BadPayload(idIn.At("interactionId"), "required")
	}
	if err := connector.CheckID(idIn.At("interactionId"), ev.id); err != nil {
		return nil, err
	}
	if err := connector.CheckID("metadata.agentId", agentID); err != nil {
		return nil, err
	}

	f := &facts{ID: ev.id, Events: []string{name}, AgentID: agentID, TenantID: tenantID, Transferred: spec.transferred}
	f.Channel = channelOf(ev.family)
	readData(r, data, f)
	// Where the disposition is depends on the callback: the log data, or
	// the top level of params; the log data wins.
	readDisposition(r, params, f)
	readLog(r, logData, f)
	f.addCAVs(readCAVs(r, top, "cavs", &f.CAVsDropped), false)
	f.Dispositions = readDispositions(r, top, "dispositions")
	f.NameObject = readCRMObject(r, top, "nameObject")
	f.RelatedToObject = readCRMObject(r, top, "relatedToObject")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if spec.role != finish {
		// A *Finished comes after wrap-up: its stamp is neither when the
		// interaction started nor when it ended.
		f.FirstAt = ev.receivedAt
		f.LastAt = ev.receivedAt
		if spec.ended {
			f.EndedAt = ev.receivedAt
		}
	}
	ev.facts = f

	ev.stateKey = ev.id
	if agentID != "" {
		ev.stateKey += ":" + agentID
	}
	ev.key = name + ":" + ev.stateKey
	if name == "objectSelected" {
		ev.key += ":" + selectionHash(f.NameObject, f.RelatedToObject)
	}
	return ev, nil
}

// containers finds the SDK's interaction data and log data in params. The
// callbacks pass {callData, callLogData}, {chatData, chatLogData} or
// {emailData, emailLogData}; the hook callbacks and objectSelected use
// {interactionData, interactionLogData}. Either is accepted for any event;
// generic says which one an error about a missing member should name.
func containers(r *reader, params connector.Object, fam string, generic bool) (data, logData connector.Object) {
	prefix := map[string]string{familyCall: "call", familyChat: "chat", familyEmail: "email"}[fam]
	pick := func(suffix string) connector.Object {
		names := []string{prefix + suffix, "interaction" + suffix}
		if prefix == "" {
			names = names[1:]
		} else if generic {
			names[0], names[1] = names[1], names[0]
		}
		name := names[0]
		for _, alt := range names[1:] {
			if params.Get(name) == nil && params.Get(alt) != nil {
				name = alt
			}
		}
		o, _ := r.Obj(params, name)
		return o
	}
	return pick("Data"), pick("LogData")
}

// family maps params.interactionType ("Call", "Chat", "Email") onto a
// family; anything else is unknown.
func family(interactionType string) string {
	for _, f := range []string{familyCall, familyChat, familyEmail} {
		if strings.EqualFold(interactionType, f) {
			return f
		}
	}
	return ""
}

// channelOf is the normalized channel of a family; "" when unknown.
func channelOf(fam string) string {
	switch fam {
	case familyCall:
		return connector.ChannelVoice
	case familyChat:
		return connector.ChannelChat
	case familyEmail:
		return connector.ChannelEmail
	}
	return ""
}

// readData reads CallData, ChatData or EmailData.
func readData(r *reader, data connector.Object, f *facts) {
	f.CallType = r.Str(data, "callType")
	f.ANI = r.ident(data, "ani")
	f.DNIS = r.ident(data, "dnis")
	f.Number = r.ident(data, "number")
	f.Campaign = r.Str(data, "campaignName")
	f.Skill = r.Str(data, "skillName")
	f.Email = r.Str(data, "email")
	if f.Email == "" {
		// EmailData's sender; its shape is not documented, so it is only
		// taken when it is a plain address, never rejected.
		if s, ok := loose(data, "from"); ok && strings.Contains(s, "@") {
			f.Email = s
		}
	}
	f.Subject = r.Str(data, "subject")
	f.Start = r.firstTime(data, "startTimestamp", "timestamp")
	f.Duration = r.seconds(data, "duration")
}

// readLog reads CallLogData, ChatLogData or EmailLogData: what the agent
// chose at wrap-up.
func readLog(r *reader, logData connector.Object, f *facts) {
	readDisposition(r, logData, f)
	if s := r.Str(logData, "subject"); s != "" {
		f.Subject = s
	}
	f.Notes = r.Str(logData, "comments")
	if t := r.firstTime(logData, "startTimestamp", "timestamp"); t != nil {
		f.Start = t
	}
	if d := r.seconds(logData, "duration"); d != nil {
		f.Duration = d
	}
}

// readDisposition reads a disposition's id and name from o, over what an
// earlier read found.
func readDisposition(r *reader, o connector.Object, f *facts) {
	if id := r.ident(o, "dispositionId"); id != "" {
		f.DispositionID = id
	}
	if name := r.Str(o, "dispositionName"); name != "" {
		f.DispositionName = name
	}
}

// readCAVs reads getCav's result. A CAV is keyed group.name, the way Five9
// admins name them; one without a name is not copied (counted in dropped)
// rather than failing the event, since its value is unusable anyway.
func readCAVs(r *reader, top connector.Object, member string, dropped *int) []cav {
	var out []cav
	for o := range r.Objects(top, member) {
		group := r.Str(o, "group")
		name := r.Str(o, "name")
		value := r.anyValue(o, "value")
		if r.Err() != nil {
			return nil
		}
		if name == "" {
			*dropped++
			continue
		}
		key := name
		if group != "" && !strings.HasPrefix(name, group+".") {
			// Some domains name a CAV "Call.Comments" in group "Call"
			// already.
			key = group + "." + name
		}
		if value == nil {
			value = []byte("null")
		}
		out = append(out, cav{Key: key, Value: value})
	}
	return out
}

// readDispositions reads getDispositions' result, within maxDispositions.
func readDispositions(r *reader, top connector.Object, member string) []disposition {
	var out []disposition
	for o := range r.Objects(top, member) {
		d := disposition{ID: r.ident(o, "id"), Name: r.Str(o, "name")}
		if (d.ID != "" || d.Name != "") && len(out) < maxDispositions {
			out = append(out, d)
		}
	}
	return out
}

// readCRMObject reads a CrmObject. An object without an id is "nothing
// selected", which is what the SDK returns for "None".
func readCRMObject(r *reader, top connector.Object, member string) *crmRef {
	o, ok := r.Obj(top, member)
	if !ok {
		return nil
	}
	ref := &crmRef{
		ID:   r.ident(o, "id"),
		Type: r.Str(o, "type"),
		Name: r.Str(o, "name"),
	}
	if ref.Type == "" {
		ref.Type = r.Str(o, "label")
	}
	ref.IsWho = r.Bool(o, "isWho")
	ref.IsWhat = r.Bool(o, "isWhat")
	if ref.ID == "" {
		return nil
	}
	return ref
}

// selectionHash distinguishes one objectSelected from the next for the
// same interaction, so that the daemon does not take a new selection for a
// duplicate of the previous one.
func selectionHash(objs ...*crmRef) string {
	h := fnv.New64a()
	for _, o := range objs {
		if o != nil {
			fmt.Fprintf(h, "%s\x00%s\x00", o.Type, o.ID)
		}
		h.Write([]byte{0xff})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// stamp reads receivedAt, the bridge's RFC 3339 stamp.
func (r *reader) stamp(o connector.Object, name string) *time.Time {
	s := r.Str(o, name)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		r.Fail(connector.BadPayload(o.At(name), "want an RFC 3339 time, got %q", connector.Clip(s)))
		return nil
	}
	return r.inRange(o.At(name), t)
}

// inRange returns t in UTC when it lies in years 0 to 9999, the times JSON
// can carry on (a zone offset can push 9999-12-31 into year 10000).
func (r *reader) inRange(path string, t time.Time) *time.Time {
	t = t.UTC()
	if t.Year() < 0 || t.Year() > 9999 {
		r.Fail(connector.BadPayload(path, "%s is out of range", t.Format(time.RFC3339)))
		return nil
	}
	return &t
}

// Epoch times are JavaScript numbers. Seconds above 1e11 would be after the
// year 5000, so larger values are milliseconds; the upper bound is the end
// of year 9999, the last time encoding/json writes back out.
const (
	secondsBelow = 1e11
	maxEpochMs   = 253402300799999
	// maxSeconds (about 31 years) keeps a nonsense duration from
	// overflowing int.
	maxSeconds = 1e9
)

// firstTime reads the first of names that is set, as an epoch number or an
// RFC 3339 string. Zero is unset: it is what an uninitialised JavaScript
// number serializes to.
func (r *reader) firstTime(o connector.Object, names ...string) *time.Time {
	for _, name := range names {
		raw := o.Get(name)
		if raw == nil {
			continue
		}
		if connector.Kind(raw) == "string" {
			s := r.Str(o, name)
			if s == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				r.Fail(connector.BadPayload(o.At(name), "want an epoch time or an RFC 3339 time, got %q", connector.Clip(s)))
				return nil
			}
			return r.inRange(o.At(name), t)
		}
		v, ok := r.Num(o, name)
		if !ok || v == 0 {
			return nil
		}
		ms := v
		if v < secondsBelow {
			ms = v * 1000
		}
		if ms < 0 || ms > maxEpochMs {
			r.Fail(connector.BadPayload(o.At(name), "%v is out of range for an epoch time", v))
			return nil
		}
		t := time.UnixMilli(int64(ms)).UTC()
		return &t
	}
	return nil
}

// seconds reads a duration in seconds, rounded; negative is unset.
func (r *reader) seconds(o connector.Object, name string) *int {
	v, ok := r.Num(o, name)
	if !ok || v < 0 {
		return nil
	}
	if v > maxSeconds {
		r.Fail(connector.BadPayload(o.At(name), "%v seconds is out of range", v))
		return nil
	}
	s := int(v + 0.5)
	return &s
}

// loose returns a string member as is, without type errors: for members
// whose shape the SDK does not document.
func loose(o connector.Object, name string) (string, bool) {
	if connector.Kind(o.Get(name)) != "string" {
		return "", false
	}
	var r connector.Reader
	s := r.Str(o, name)
	return s, r.Err() == nil && s != ""
}
