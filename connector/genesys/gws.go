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
func (d Decoder) gws(top node, at time.Time, agent connector.Agent) (connector.Event, *observation, error) {
	var f fields
	channel := f.str(top, "channel")
	data, ok := f.object(top, "data")
	if f.err != nil {
		return connector.Event{}, nil, f.err
	}
	if !ok {
		return connector.Event{}, nil, connector.BadPayload("data", "required")
	}
	messageType := f.str(data, "messageType")
	notificationType := f.str(data, "notificationType")
	if f.err != nil {
		return connector.Event{}, nil, f.err
	}
	if messageType == "" {
		return connector.Event{}, nil, connector.BadPayload("data.messageType", "required")
	}
	typ := clip(messageType)
	if notificationType != "" {
		typ += "." + clip(notificationType)
	}

	member, voice := "call", true
	in, ok := f.object(data, member)
	if !ok && f.err == nil {
		member, voice = "interaction", false
		in, ok = f.object(data, member)
	}
	if f.err != nil {
		return connector.Event{}, nil, f.err
	}
	if !ok {
		return connector.Event{Platform: Platform, Type: typ, Key: "gws:" + typ + ":" + digest(data.raw, nil)}, nil, nil
	}

	o := &observation{at: at, agent: agent, raw: in.raw, voice: voice}
	gwsID := f.str(in, "id")
	callUUID := f.str(in, "callUuid")
	path := "data." + member + ".id"
	o.id = gwsID
	if voice {
		// The GWS call id is not the callUuid that WWE keys calls by; the
		// callUuid keeps both sources on one snapshot.
		if callUUID != "" {
			o.id, path = callUUID, "data.call.callUuid"
		}
	}
	if f.err != nil {
		return connector.Event{}, nil, f.err
	}
	if o.id == "" {
		if voice {
			return connector.Event{}, nil, connector.BadPayload("data.call.callUuid", "required (or id)")
		}
		return connector.Event{}, nil, connector.BadPayload(path, "required")
	}
	if err := checkID(path, o.id); err != nil {
		return connector.Event{}, nil, err
	}

	o.state = strings.ToUpper(truncate(f.str(in, "state"), maxText))
	o.kind = gwsNotifications[strings.ToUpper(notificationType)]
	if o.kind == "" {
		o.kind = gwsStates[o.state]
	}
	o.final = o.kind == EventCompleted || o.kind == EventRemoved

	switch {
	case voice:
		o.media = "voice"
	default:
		o.media = strings.ToLower(truncate(f.firstStr(in, "mediaType", "mediatype", "media"), maxText))
		if o.media == "" {
			o.media = channelMedia[channel]
		}
		o.voice = callUUID != ""
	}
	o.callType = truncate(f.str(in, "callType"), maxText)
	o.direction = truncate(f.str(in, "direction"), maxText)
	o.ani = truncate(f.str(in, "ani"), maxText)
	o.dnis = truncate(f.str(in, "dnis"), maxText)
	o.consult = f.boolean(in, "isConsultation")
	o.userData, o.hasUserData = f.userData(in, "userData", d.priorityKeys())
	o.parties = f.parties(in, "participants")
	if f.err != nil {
		return connector.Event{}, nil, f.err
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
