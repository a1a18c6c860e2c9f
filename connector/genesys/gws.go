package genesys

import (
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// SourceGWS is the source member of a Genesys Web Services notification as
// the daemon's CometD subscriber wraps it:
//
//	{"source":"gws","channel":"/v2/me/interactions","data":{…Bayeux data…},"receivedAt":"…"}
const SourceGWS = "gws"

// gwsStates maps the state of a GWS call or interaction (Title case on the
// wire) to the WWE eventType with the same effect on the snapshot. A state
// not listed updates the snapshot's attributes only.
var gwsStates = map[string]string{
	"RINGING":     EventRinging,
	"DIALING":     EventDialing,
	"ESTABLISHED": EventEstablished,
	"TALKING":     EventEstablished,
	"HELD":        EventHeld,
	"RELEASED":    EventReleased,
	"INVITED":     EventInvited,
	"ACCEPTED":    EventAccepted,
	"CREATED":     EventCreated,
	"PULLED":      EventPulled,
	"ENDED":       EventEnded,
	// Completed is the Complete operation of seed 001: the agent's work on
	// the interaction is over, for calls (after-call work) as for
	// multimedia. GWS sends nothing after it.
	"COMPLETED": EventCompleted,
}

// gwsNotifications maps a notificationType that is not about the state to
// its WWE eventType.
var gwsNotifications = map[string]string{
	"ATTACHEDDATACHANGED": EventAttachedDataChanged,
	"PARTICIPANTSUPDATED": EventPartyChanged,
	// The interaction left the agent's list, like WWE's REMOVED.
	"DELETED":            EventRemoved,
	"INTERACTIONDELETED": EventRemoved,
	"CALLDELETED":        EventRemoved,
}

// gws reads a GWS CometD notification. Calls (channel /v2/me/calls) carry
// data.call, multimedia interactions (/v2/me/interactions) data.interaction;
// device and agent notifications carry neither and are stored only.
func (d Decoder) gws(top connector.Object, at time.Time, agent connector.Agent) (connector.Event, *observation, error) {
	var r reader
	channel := r.Str(top, "channel")
	data, ok := r.Obj(top, "data")
	if r.Err() != nil {
		return connector.Event{}, nil, r.Err()
	}
	if !ok {
		return connector.Event{}, nil, connector.BadPayload("data", "required")
	}
	messageType := r.Str(data, "messageType")
	notificationType := r.Str(data, "notificationType")
	if r.Err() != nil {
		return connector.Event{}, nil, r.Err()
	}
	if messageType == "" {
		return connector.Event{}, nil, connector.BadPayload("data.messageType", "required")
	}
	typ := connector.Clip(messageType)
	if notificationType != "" {
		typ += "." + connector.Clip(notificationType)
	}

	member, voice := "call", true
	in, ok := r.Obj(data, member)
	if !ok && r.Err() == nil {
		member, voice = "interaction", false
		in, ok = r.Obj(data, member)
	}
	if r.Err() != nil {
		return connector.Event{}, nil, r.Err()
	}
	if !ok {
		return connector.Event{Platform: Platform, Type: typ, Key: "gws:" + typ + ":" + digest(data.Raw(), nil)}, nil, nil
	}

	o := &observation{at: at, agent: agent, raw: in.Raw(), voice: voice}
	gwsID := r.Str(in, "id")
	callUUID := r.Str(in, "callUuid")
	path := "data." + member + ".id"
	o.id = gwsID
	if voice {
		// The GWS call id is not the callUuid that WWE keys calls by; the
		// callUuid keeps both sources on one snapshot.
		if callUUID != "" {
			o.id, path = callUUID, "data.call.callUuid"
		}
	}
	if r.Err() != nil {
		return connector.Event{}, nil, r.Err()
	}
	if o.id == "" {
		if voice {
			return connector.Event{}, nil, connector.BadPayload("data.call.callUuid", "required (or id)")
		}
		return connector.Event{}, nil, connector.BadPayload(path, "required")
	}
	if err := connector.CheckID(path, o.id); err != nil {
		return connector.Event{}, nil, err
	}

	o.state = strings.ToUpper(truncate(r.Str(in, "state"), maxText))
	o.kind = gwsNotifications[strings.ToUpper(notificationType)]
	if o.kind == "" {
		o.kind = gwsStates[o.state]
	}
	o.final = o.kind == EventCompleted || o.kind == EventRemoved

	switch {
	case voice:
		o.media = "voice"
	default:
		o.media = strings.ToLower(truncate(r.firstStr(in, "mediaType", "mediatype", "media"), maxText))
		if o.media == "" {
			o.media = channelMedia[channel]
		}
		o.voice = callUUID != ""
	}
	o.callType = truncate(r.Str(in, "callType"), maxText)
	o.direction = truncate(r.Str(in, "direction"), maxText)
	o.ani = truncate(r.Str(in, "ani"), maxText)
	o.dnis = truncate(r.Str(in, "dnis"), maxText)
	o.consult = r.Bool(in, "isConsultation")
	o.userData, o.hasUserData = r.userData(in, "userData", d.priorityKeys())
	o.parties = r.parties(in, "participants")
	if r.Err() != nil {
		return connector.Event{}, nil, r.Err()
	}
	ev := connector.Event{Platform: Platform, Type: typ, Key: "gws:" + typ + ":" + o.id + ":" + o.digest()}
	return ev, o, nil
}

// channelMedia names the media of the per-media GWS channels, for
// interactions that do not say it themselves.
var channelMedia = map[string]string{
	"/v2/me/chats":  "chat",
	"/v2/me/emails": "email",
}
