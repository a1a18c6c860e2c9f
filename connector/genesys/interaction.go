package genesys

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// userData keys that click-to-dial writes (the bridge passes them as the
// userData of voice.dialEx), naming the CRM records the call was placed
// from. They become Interaction.Who and Interaction.What.
const (
	KeyWhoType  = "ctibridge_who_type"
	KeyWhoID    = "ctibridge_who_id"
	KeyWhoName  = "ctibridge_who_name"
	KeyWhatType = "ctibridge_what_type"
	KeyWhatID   = "ctibridge_what_id"
	KeyWhatName = "ctibridge_what_name"
)

// userData keys of Genesys outbound (OCS) records.
const (
	KeyCampaign = "GSW_CAMPAIGN_NAME"
	KeyPhone    = "GSW_PHONE"
)

// Keys that ctibridge adds to Interaction.Attached to say what it does not
// know. Whatever userData holds under these names is replaced.
const (
	// FlagIncomplete is true when the interaction was emitted without its
	// beginning: a done event arrived with no snapshot (the daemon was down
	// or the tab opened mid-call), so start and duration are unknown; or
	// Flush emitted it from a stale snapshot (FlagFlushed says why), so the
	// disposition and notes of wrap-up are missing.
	FlagIncomplete = "ctibridge_incomplete"
	// FlagTruncated is true when userData exceeded the bounds and was cut.
	FlagTruncated = "ctibridge_truncated"
)

// DefaultDispositionKey is the userData key of the disposition when
// Decoder.DispositionKey is empty: WWE's own default.
const DefaultDispositionKey = "DispositionCode"

// Other userData keys read when present, first match wins.
var (
	queueKeys   = []string{"Queue", "VirtualQueue"}
	subjectKeys = []string{"Subject"}
	notesKeys   = []string{"Notes", "Comment"}
	emailKeys   = []string{"EmailAddress", "FromAddress"}
	// interactionTypeKey gives the direction of multimedia interactions,
	// which have no callType ("Inbound", "Outbound", "Internal").
	interactionTypeKey = "InteractionType"
)

// maxRaw bounds Interaction.Raw: the interaction object of the event that
// completed the interaction, left out when larger.
const maxRaw = 64 << 10

func (d Decoder) dispositionKey() string {
	if d.DispositionKey != "" {
		return d.DispositionKey
	}
	return DefaultDispositionKey
}

// priorityKeys are the userData keys kept whatever the bounds cut.
func (d Decoder) priorityKeys() []string {
	keys := []string{d.dispositionKey(), KeyCampaign, KeyPhone,
		KeyWhoType, KeyWhoID, KeyWhoName, KeyWhatType, KeyWhatID, KeyWhatName, interactionTypeKey}
	for _, ks := range [][]string{queueKeys, subjectKeys, notesKeys, emailKeys} {
		keys = append(keys, ks...)
	}
	return keys
}

// interaction normalizes an emitted leg (DESIGN.md section 3). doneAt is
// the time of the event that completed it, which is the end when no
// RELEASED, ENDED or COMPLETED was seen.
func (d Decoder) interaction(id string, l *leg, doneAt time.Time, raw json.RawMessage) *connector.Interaction {
	ud := l.UserData
	in := &connector.Interaction{
		Platform:  Platform,
		ID:        id,
		Leg:       legOf(l.Agent),
		Channel:   l.channel(),
		Direction: l.direction(),
		ANI:       l.ANI,
		DNIS:      l.DNIS,
		Agent:     l.Agent,
		Queue:     first(ud, queueKeys),
		Campaign:  loose(ud[KeyCampaign]),
		Subject:   first(ud, subjectKeys),
		Notes:     first(ud, notesKeys),
		Email:     first(ud, emailKeys),
		Parties:   l.Parties,
	}
	in.Phone = loose(ud[KeyPhone])
	if in.Phone == "" && in.Channel == connector.ChannelVoice {
		switch in.Direction {
		case connector.DirectionInbound:
			in.Phone = in.ANI
		case connector.DirectionOutbound:
			in.Phone = in.DNIS
		}
	}
	in.IsConsultation = (l.Consult != nil && *l.Consult) || strings.EqualFold(l.CallType, "CONSULT")

	// Start is when the agent answered or, for a call that never was
	// (missed, abandoned), when it was first offered; duration counts from
	// the answer only, so a missed call lasts 0 seconds.
	in.Start = l.Answered
	if in.Start == nil {
		in.Start = l.First
	}
	end := doneAt
	if l.Ended != nil {
		end = *l.Ended
	}
	in.End = &end
	if l.Answered != nil && !end.Before(*l.Answered) {
		in.Duration = int(end.Sub(*l.Answered).Round(time.Second) / time.Second)
	}

	if code := loose(ud[d.dispositionKey()]); code != "" {
		// WWE attaches the disposition's code; its display name lives in
		// a business attribute the event does not carry.
		in.Disposition = &connector.Disposition{Code: code, Name: code}
	}
	in.Who = crmObject(ud, KeyWhoType, KeyWhoID, KeyWhoName)
	in.What = crmObject(ud, KeyWhatType, KeyWhatID, KeyWhatName)
	for _, o := range []*connector.CRMObject{in.Who, in.What} {
		if o != nil {
			in.Objects = append(in.Objects, *o)
		}
	}

	in.Attached = make(map[string]any, len(ud)+3)
	for k, v := range ud {
		in.Attached[k] = v
	}
	delete(in.Attached, FlagIncomplete)
	delete(in.Attached, FlagTruncated)
	delete(in.Attached, FlagFlushed)
	if in.Start == nil {
		in.Attached[FlagIncomplete] = true
	}
	if l.Truncated {
		in.Attached[FlagTruncated] = true
	}
	if len(in.Attached) == 0 {
		in.Attached = nil
	}
	if len(raw) <= maxRaw {
		in.Raw = raw
	}
	return in
}

// legOf is Interaction.Leg: the agent's id, or their login name when the
// bridge gave no id.
func legOf(a connector.Agent) string {
	if a.ID != "" {
		return a.ID
	}
	return a.Username
}

// channel maps WWE's media names; a leg without one is voice when it
// carries voice-only attributes.
func (l *leg) channel() string {
	switch l.Media {
	case "voice":
		return connector.ChannelVoice
	case "chat":
		return connector.ChannelChat
	case "email":
		return connector.ChannelEmail
	case "":
		if l.Voice {
			return connector.ChannelVoice
		}
	}
	return connector.ChannelOther
}

// direction reads callType first (INBOUND, OUTBOUND…, INTERNAL, CONSULT:
// the most specific), then WWE's direction (IN, OUT), then userData's
// InteractionType, which multimedia interactions carry instead; an
// outbound campaign record is outbound.
func (l *leg) direction() string {
	ct := strings.ToUpper(l.CallType)
	switch {
	case strings.HasPrefix(ct, "INBOUND"):
		return connector.DirectionInbound
	case strings.HasPrefix(ct, "OUTBOUND"):
		return connector.DirectionOutbound
	case ct == "INTERNAL" || ct == "CONSULT":
		return connector.DirectionInternal
	}
	switch strings.ToUpper(l.Direction) {
	case "IN":
		return connector.DirectionInbound
	case "OUT":
		return connector.DirectionOutbound
	}
	switch strings.ToUpper(loose(l.UserData[interactionTypeKey])) {
	case "INBOUND":
		return connector.DirectionInbound
	case "OUTBOUND":
		return connector.DirectionOutbound
	case "INTERNAL":
		return connector.DirectionInternal
	}
	if loose(l.UserData[KeyCampaign]) != "" {
		return connector.DirectionOutbound
	}
	return connector.DirectionUnknown
}

// first returns the first of keys with a text value.
func first(ud map[string]any, keys []string) string {
	for _, k := range keys {
		if v := loose(ud[k]); v != "" {
			return v
		}
	}
	return ""
}

// crmObject reads a who or what written by click-to-dial; nil without an
// id.
func crmObject(ud map[string]any, typeKey, idKey, nameKey string) *connector.CRMObject {
	id := loose(ud[idKey])
	if id == "" {
		return nil
	}
	return &connector.CRMObject{Type: loose(ud[typeKey]), ID: id, Name: loose(ud[nameKey])}
}
