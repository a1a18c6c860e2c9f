package connector

import (
	"encoding/json"
	"time"
)

// Channels of an Interaction.
const (
	ChannelVoice = "voice"
	ChannelChat  = "chat"
	ChannelEmail = "email"
	ChannelOther = "other"
)

// Directions of an Interaction.
const (
	DirectionInbound  = "inbound"
	DirectionOutbound = "outbound"
	DirectionInternal = "internal"
	DirectionUnknown  = "unknown"
)

// Interaction is one finished call, chat or email, normalized across
// platforms. It is what mapping expressions see: the expr tags are the names
// an admin writes. Every source fills what its platform has; text it does not
// have is empty and records it does not have are nil.
type Interaction struct {
	Platform string `json:"platform" expr:"platform"`
	ID       string `json:"id" expr:"id"`
	// Leg tells apart the agents' legs of one platform interaction: the
	// agents of a transferred call share its ID (Genesys callUuid, Five9
	// interactionId), and each one's part is an Interaction of its own.
	// Sources set it to the agent's id (or login name) when they know the
	// agent; it is part of the default activity key. Tabs of one agent
	// give the same Leg, so their duplicates still make one record.
	Leg       string `json:"leg,omitempty" expr:"leg"`
	GlobalID  string `json:"globalId,omitempty" expr:"globalId"`
	Channel   string `json:"channel" expr:"channel"`
	Direction string `json:"direction" expr:"direction"`

	ANI   string `json:"ani,omitempty" expr:"ani"`
	DNIS  string `json:"dnis,omitempty" expr:"dnis"`
	Phone string `json:"phone,omitempty" expr:"phone"`
	Email string `json:"email,omitempty" expr:"email"`

	Agent    Agent  `json:"agent" expr:"agent"`
	Queue    string `json:"queue,omitempty" expr:"queue"`
	Campaign string `json:"campaign,omitempty" expr:"campaign"`

	Start *time.Time `json:"start,omitempty" expr:"start"`
	End   *time.Time `json:"end,omitempty" expr:"end"`
	// Duration is in whole seconds.
	Duration int `json:"duration" expr:"duration"`

	Disposition  *Disposition `json:"disposition,omitempty" expr:"disposition"`
	Subject      string       `json:"subject,omitempty" expr:"subject"`
	Notes        string       `json:"notes,omitempty" expr:"notes"`
	RecordingURL string       `json:"recordingUrl,omitempty" expr:"recordingUrl"`

	// Attached is the platform's custom data: Genesys userData, Five9 CAVs,
	// Bright Pattern attachedData.
	Attached map[string]any `json:"attached,omitempty" expr:"attached"`

	Who     *CRMObject  `json:"who,omitempty" expr:"who"`
	What    *CRMObject  `json:"what,omitempty" expr:"what"`
	Objects []CRMObject `json:"objects,omitempty" expr:"objects"`
	Parties []Party     `json:"parties,omitempty" expr:"parties"`

	IsConsultation bool `json:"isConsultation" expr:"isConsultation"`

	// Raw is the platform's original payload, for fields the normalized
	// form does not carry.
	Raw json.RawMessage `json:"raw,omitempty" expr:"-"`
}

// CustomerPhone is the customer's number: Phone when the platform gave one,
// else the caller's number of an inbound call and the number dialed of an
// outbound one.
func (in *Interaction) CustomerPhone() string {
	switch {
	case in.Phone != "":
		return in.Phone
	case in.Direction == DirectionInbound:
		return in.ANI
	case in.Direction == DirectionOutbound:
		return in.DNIS
	}
	return ""
}

// Agent is the agent who handled an interaction.
type Agent struct {
	ID       string `json:"id,omitempty" expr:"id"`
	Name     string `json:"name,omitempty" expr:"name"`
	Username string `json:"username,omitempty" expr:"username"`
	Email    string `json:"email,omitempty" expr:"email"`
}

// Disposition is the outcome an agent chose for an interaction.
type Disposition struct {
	Code string `json:"code,omitempty" expr:"code"`
	Name string `json:"name,omitempty" expr:"name"`
}

// CRMObject is a CRM record an interaction is linked to, such as a contact
// (a "who") or a case (a "what").
type CRMObject struct {
	Type string `json:"type" expr:"type"`
	ID   string `json:"id" expr:"id"`
	Name string `json:"name,omitempty" expr:"name"`
}

// Party is one participant of a call.
type Party struct {
	Name   string `json:"name,omitempty" expr:"name"`
	Phone  string `json:"phone,omitempty" expr:"phone"`
	UserID string `json:"userId,omitempty" expr:"userId"`
}
