package genesys

import (
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// WWE Service Client API topics: the event member of a message, as
// genesys.wwe.service.subscribe delivers it.
const (
	TopicInteraction = "interaction"
	TopicAgent       = "agent"
	TopicSystem      = "system"
	TopicOutbound    = "outbound"
	TopicMarkDone    = "markdone"
)

// topics are the WWE topics accepted. Only interaction messages describe
// interactions; the others are stored as they are, so that a bridge that
// subscribes to more than it needs is not refused.
var topics = map[string]bool{
	TopicInteraction: true, TopicAgent: true, TopicSystem: true,
	TopicOutbound: true, TopicMarkDone: true,
}

// WWE interaction eventTypes that drive the snapshot, as the Service Client
// API spells them.
const (
	EventAdded               = "ADDED"
	EventRemoved             = "REMOVED"
	EventAttachedDataChanged = "ATTACHED_DATA_CHANGED"
	EventDialing             = "DIALING"
	EventRinging             = "RINGING"
	EventEstablished         = "ESTABLISHED"
	EventHeld                = "HELD"
	EventPartyChanged        = "PARTY_CHANGED"
	EventReleased            = "RELEASED"
	EventMarkDoneApply       = "MARKDONE_APPLY"
	EventInvited             = "INVITED"
	EventAccepted            = "ACCEPTED"
	EventCreated             = "CREATED"
	EventPulled              = "PULLED"
	EventCompleted           = "COMPLETED"
	EventEnded               = "ENDED"
)

// eventTypes are the interaction eventTypes the Service Client API
// documents (common, voice, OpenMedia, chat, outbound email, outbound
// preview and case events). true marks the lifecycle events, which must
// carry an interaction with a stable id; the others update the snapshot
// when they carry one and are stored without it otherwise.
var eventTypes = map[string]bool{
	EventAdded: true, EventRemoved: true, EventAttachedDataChanged: true,
	EventDialing: true, EventRinging: true, EventEstablished: true, EventHeld: true,
	EventPartyChanged: true, EventReleased: true, EventMarkDoneApply: true,
	EventInvited: true, EventAccepted: true, EventCreated: true, EventPulled: true,
	EventCompleted: true, EventEnded: true,

	"CASE_OR_BUNDLE_ID_CHANGED": false, "CASE_ID_CHANGED": false, "NEW_MESSAGE": false,
	"ERROR": false, "CONTACT_CHANGED": false, "CALL_RECORDING_STATE_CHANGED": false,
	"COMPOSING": false, "INSERT_STANDARD_RESPONSE": false, "INVITED_CONFERENCE": false,
	"IN_QUEUE_FAILED": false, "IN_WORKBIN": false, "IN_WORKBIN_FAILED": false,
	"LEFT_CONFERENCE": false, "PULL_FAILED": false, "PULL_WORKBIN_FAILED": false,
	"REVOKED": false, "TRANSFER_COMPLETED": false, "CANCELED": false,
	"JOIN_FAILED": false, "JOIN_PENDING": false, "CANCELLED": false, "SENT": false,
	"PREVIEWING": false, "STATE_CHANGE": false, "RECORDS_RETRIEVED": false,
	"CASE_COLLAPSED": false, "CASE_EXPANDED": false, "CASE_SELECTED": false,
}

// perTab are the members of a WWE interaction that differ between the
// browser tabs of one agent for the same event: the client-side ids, which
// each tab numbers itself ("lost on the next session or refresh"), and the
// case panel's UI state. They are left out of the event key.
var perTab = map[string]bool{
	"interactionId": true, "parentInteractionId": true, "caseId": true,
	"isCaseSelected": true, "isCaseExpanded": true, "isMainCaseInteraction": true,
}

// perPost are the members the bridge adds to each post, which differ
// between tabs posting the same message.
var perPost = map[string]bool{"receivedAt": true, "agent": true}

// previewStates are the states of an outbound preview record, which is not
// a call yet and may have no callUuid.
var previewStates = map[string]bool{
	"PREVIEW": true, "PREVIEWING": true, "READY": true, "REJECTED": true, "CANCELED": true,
}

// wwe reads an interaction message of the Service Client API. It returns
// the stored-only Event for messages that do not describe an interaction
// with a stable id, and an observation for those that do.
func (d Decoder) wwe(top connector.Object, at time.Time, agent connector.Agent) (connector.Event, *observation, error) {
	var r reader
	data, ok := r.Obj(top, "data")
	if r.Err() != nil {
		return connector.Event{}, nil, r.Err()
	}
	if !ok {
		return connector.Event{}, nil, connector.BadPayload("data", "required")
	}
	eventType := r.Str(data, "eventType")
	if r.Err() != nil {
		return connector.Event{}, nil, r.Err()
	}
	if eventType == "" {
		return connector.Event{}, nil, connector.BadPayload("data.eventType", "required")
	}
	// stored is the Event of a message kept without state; its key hashes
	// the whole data object, as there is no observation to hash.
	stored := func() connector.Event {
		return connector.Event{Platform: Platform, Type: connector.Clip(eventType),
			Key: "wwe:" + connector.Clip(eventType) + ":" + digest(data.Raw(), perTab)}
	}

	lifecycle, known := eventTypes[eventType]
	if !known {
		// Genesys adds eventTypes between releases and the bridge forwards
		// them all: store them, so that nothing is lost and a later
		// version can use them, but do not guess what they mean.
		return stored(), nil, nil
	}
	in, ok := r.Obj(data, "interaction")
	if r.Err() != nil {
		return connector.Event{}, nil, r.Err()
	}
	if !ok {
		if lifecycle {
			return connector.Event{}, nil, connector.BadPayload("data.interaction", "required")
		}
		return stored(), nil, nil
	}

	o := &observation{kind: eventType, at: at, agent: agent, raw: in.Raw()}
	uuid := r.Str(in, "interactionUUID")
	callUUID := r.Str(in, "callUuid")
	o.id = uuid
	if o.id == "" {
		o.id = callUUID
	}
	o.state = strings.ToUpper(truncate(r.Str(in, "state"), maxText))
	o.previousState = strings.ToUpper(truncate(r.Str(in, "previousState"), maxText))
	o.callType = truncate(r.Str(in, "callType"), maxText)
	if r.Err() != nil {
		return connector.Event{}, nil, r.Err()
	}
	if o.id == "" {
		preview := previewStates[o.state] || strings.Contains(strings.ToUpper(o.callType), "PREVIEW")
		if preview || !lifecycle {
			return stored(), nil, nil
		}
		// Never the client-side interactionId: each tab numbers its own,
		// and a refresh renumbers them.
		return connector.Event{}, nil, connector.BadPayload("data.interaction.interactionUUID",
			"required (or callUuid); interactionId is a per-tab id and cannot identify the interaction")
	}
	path := "data.interaction.interactionUUID"
	if uuid == "" {
		path = "data.interaction.callUuid"
	}
	if err := connector.CheckID(path, o.id); err != nil {
		return connector.Event{}, nil, err
	}

	o.media = strings.ToLower(truncate(r.Str(data, "media"), maxText))
	if o.media == "" {
		o.media = strings.ToLower(truncate(r.Str(in, "media"), maxText))
	}
	o.direction = truncate(r.Str(in, "direction"), maxText)
	o.ani = truncate(r.Str(in, "ani"), maxText)
	o.dnis = truncate(r.Str(in, "dnis"), maxText)
	o.consult = r.Bool(in, "isConsultation")
	o.voice = callUUID != "" || o.callType != "" || o.direction != ""
	o.userData, o.hasUserData = r.userData(in, "userData", d.priorityKeys())
	o.parties = r.parties(in, "parties")
	if r.Err() != nil {
		return connector.Event{}, nil, r.Err()
	}
	ev := connector.Event{Platform: Platform, Type: eventType, Key: "wwe:" + eventType + ":" + o.id + ":" + o.digest()}
	return ev, o, nil
}

// storedTopic returns the Event of a message of a WWE topic other than
// interaction: kept, but describing no interaction.
func storedTopic(event string, top connector.Object) (connector.Event, error) {
	var r reader
	data, _ := r.Obj(top, "data")
	eventType := r.Str(data, "eventType")
	if r.Err() != nil {
		return connector.Event{}, r.Err()
	}
	typ := event
	if eventType != "" {
		typ += "." + connector.Clip(eventType)
	}
	key := digest(data.Raw(), perTab)
	if data.Raw() == nil {
		key = digest(top.Raw(), perPost)
	}
	return connector.Event{Platform: Platform, Type: typ, Key: "wwe:" + typ + ":" + key}, nil
}
