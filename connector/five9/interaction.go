package five9

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// interaction merges a *Finished event with the snapshot its interaction's
// earlier events left (snap, nil when there is none) and normalizes the
// result (DESIGN.md section 3). stored is the snapshot as read, and snapErr
// why it could not be used, both for Raw.
func (ev *event) interaction(snap *facts, snapErr error, stored, body []byte) (*connector.Interaction, error) {
	f := &facts{}
	if snap != nil {
		f = snap
	}
	f.merge(ev.facts)

	channel := channelOf(ev.family)
	in := &connector.Interaction{
		Platform:  Platform,
		ID:        ev.id,
		Leg:       f.AgentID,
		Channel:   channel,
		Direction: direction(channel, f.CallType),
		ANI:       f.ANI,
		DNIS:      f.DNIS,
		Email:     f.Email,
		Agent:     connector.Agent{ID: f.AgentID},
		Queue:     f.Skill,
		Campaign:  f.Campaign,
		Subject:   f.Subject,
		Notes:     f.Notes,
	}
	// number is the customer's number; for a call between agents the SDK
	// gives "agent:<name>" instead, which is no phone number. It is the
	// one number Five9 always gives: the caller's of an inbound call, the
	// number dialed of an outbound one.
	if !strings.Contains(f.Number, ":") {
		in.Phone = f.Number
		switch {
		case in.ANI == "" && in.Direction == connector.DirectionInbound:
			in.ANI = f.Number
		case in.DNIS == "" && in.Direction == connector.DirectionOutbound:
			in.DNIS = f.Number
		}
	}
	in.Start, in.End, in.Duration = times(f, ev.receivedAt)
	in.Disposition = f.disposition()
	in.Attached = f.attached()
	if in.Disposition == nil {
		if in.Attached == nil {
			in.Attached = map[string]any{}
		}
		in.Attached[FlagNoDisposition] = true
	}
	in.Who, in.What, in.Objects = whoWhat(f.NameObject, f.RelatedToObject)
	raw, err := rawOf(body, snap, stored, snapErr, f.CAVsDropped)
	if err != nil {
		return nil, err
	}
	in.Raw = raw
	return in, nil
}

// direction maps the SDK's call type onto the normalized direction. Chats
// and emails reach an agent only through *Offered, that is from a customer,
// so without a call type they are inbound.
func direction(channel, callType string) string {
	switch strings.ToUpper(callType) {
	case "INBOUND":
		return connector.DirectionInbound
	case "OUTBOUND", "PREVIEW", "MANUAL", "AUTODIAL", "TCPA_MANUAL":
		return connector.DirectionOutbound
	case "QUEUE_CALLBACK":
		// The customer asked to be called back; Five9 dials them.
		return connector.DirectionOutbound
	case "AGENT", "INTERNAL":
		return connector.DirectionInternal
	case "":
		if channel == connector.ChannelChat || channel == connector.ChannelEmail {
			return connector.DirectionInbound
		}
	}
	return connector.DirectionUnknown
}

// times picks start, end and duration. The SDK's own start and duration
// win; otherwise the bridge's stamps stand in: start is the first event
// seen, end the *Ended event, or the *Finished one (finished) when the
// interaction had no *Ended (emails) or it was not seen.
func times(f *facts, finished *time.Time) (start, end *time.Time, duration int) {
	start = f.Start
	if start == nil {
		start = f.FirstAt
	}
	switch {
	case f.Start != nil && f.Duration != nil && f.Start.Add(time.Duration(*f.Duration)*time.Second).UnixMilli() <= maxEpochMs:
		e := f.Start.Add(time.Duration(*f.Duration) * time.Second)
		end = &e
	case f.EndedAt != nil:
		end = f.EndedAt
	default:
		end = finished
	}
	switch {
	case f.Duration != nil:
		duration = *f.Duration
	case start != nil && end != nil && !end.Before(*start):
		duration = int(end.Sub(*start).Round(time.Second) / time.Second)
	}
	return start, end, duration
}

// disposition is the outcome chosen at wrap-up. The log data may carry only
// the id or only the name; the disposition list captured earlier fills in
// the other.
func (f *facts) disposition() *connector.Disposition {
	d := connector.Disposition{Code: f.DispositionID, Name: f.DispositionName}
	for _, e := range f.Dispositions {
		switch {
		case d.Name == "" && d.Code != "" && e.ID == d.Code:
			d.Name = e.Name
		case d.Code == "" && d.Name != "" && strings.EqualFold(e.Name, d.Name):
			d.Code = e.ID
		}
	}
	if d.Code == "" && d.Name == "" {
		return nil
	}
	return &d
}

// attached is the CAVs as a map for mapping expressions.
func (f *facts) attached() map[string]any {
	if len(f.CAVs) == 0 {
		return nil
	}
	m := make(map[string]any, len(f.CAVs))
	for _, c := range f.CAVs {
		var v any
		if err := json.Unmarshal(c.Value, &v); err != nil {
			// Checked when the event was read; a value from a damaged
			// snapshot is left out rather than failing the interaction.
			continue
		}
		m[c.Key] = v
	}
	return m
}

// whoWhat routes the selected Name and Related To objects by their isWho
// and isWhat flags. An object that says neither is routed by its slot: the
// Name object is a who, the Related To object a what. Both go into Objects.
func whoWhat(name, related *crmRef) (who, what *connector.CRMObject, objs []connector.CRMObject) {
	isWho := func(o *crmRef, def bool) bool {
		switch {
		case o.IsWho != nil:
			return *o.IsWho
		case o.IsWhat != nil:
			return false
		}
		return def
	}
	isWhat := func(o *crmRef, def bool) bool {
		switch {
		case o.IsWhat != nil:
			return *o.IsWhat
		case o.IsWho != nil:
			return false
		}
		return def
	}
	conv := func(o *crmRef) *connector.CRMObject {
		return &connector.CRMObject{Type: o.Type, ID: o.ID, Name: o.Name}
	}
	if name != nil {
		objs = append(objs, *conv(name))
		if isWho(name, true) {
			who = conv(name)
		}
	}
	if related != nil {
		if name == nil || related.ID != name.ID || related.Type != name.Type {
			objs = append(objs, *conv(related))
		}
		if isWhat(related, true) {
			what = conv(related)
		}
		if who == nil && isWho(related, false) {
			who = conv(related)
		}
	}
	if what == nil && name != nil && isWhat(name, false) {
		what = conv(name)
	}
	return who, what, objs
}

// rawOf is Interaction.Raw: the *Finished body as posted and the snapshot it
// was merged with, so that every field the normalized form drops, such as
// the tenant id, the campaign id or isTransferredCall, is still at hand,
// and so that an interaction finished without a snapshot says so
// ("snapshot": null, with snapshotError when one was found but unusable).
func rawOf(body []byte, snap *facts, stored []byte, snapErr error, cavsDropped int) (json.RawMessage, error) {
	doc := struct {
		Finished      json.RawMessage `json:"finished"`
		Snapshot      json.RawMessage `json:"snapshot"`
		SnapshotError string          `json:"snapshotError,omitempty"`
		CAVsDropped   int             `json:"cavsDropped,omitempty"`
	}{Finished: body, CAVsDropped: cavsDropped}
	if snap != nil {
		doc.Snapshot = stored
	}
	if snapErr != nil {
		doc.SnapshotError = snapErr.Error()
	}
	b, err := json.Marshal(doc)
	if err != nil {
		// body parsed as JSON and stored decoded as a snapshot, so both
		// are valid JSON and this is a bug; it is an error, not a panic.
		return nil, fmt.Errorf("five9: encode raw: %w", err)
	}
	return b, nil
}
