package five9

import (
	"encoding/json"
	"fmt"
	"time"
)

// Bounds on what is copied from a body into the snapshot and Attached. The
// daemon already caps a body (1 MiB by default), but a snapshot is the merge
// of many bodies, and Attached goes into every CRM record: a domain with a
// runaway CAV layout must not make either grow without end. What does not
// fit is not copied and is counted in cavsDropped, which the snapshot and
// Interaction.Raw carry, so that a short Attached is visible as such; the
// event itself is stored whole by the daemon.
const (
	// maxCAVs is far above the few hundred CAVs of a large Five9 domain.
	maxCAVs = 1000
	// maxCAVBytes bounds the keys and values of the CAVs kept, in total.
	maxCAVBytes = 256 << 10
	// maxDispositions bounds the disposition list kept to resolve a
	// disposition's name from its id or the other way round.
	maxDispositions = 1000
	// maxEvents bounds the event names remembered, for diagnosis only.
	maxEvents = 32
	// snapshotVersion is written into every snapshot, so that a later
	// release can recognise (and, if need be, ignore) an older layout.
	snapshotVersion = 1
)

// facts is what the events of one interaction leg have said so far. Each
// event is read into facts; the snapshot stored between events is the merge
// of them (JSON, in the daemon's states table); a *Finished event merges its
// own facts into the snapshot and turns the result into an Interaction.
//
// Times named At are the bridge's receivedAt stamps, the fallback when the
// SDK's data carries no time of its own.
type facts struct {
	V int `json:"v"`
	// ID is the interaction id, for Flush, which has only the snapshot.
	ID      string   `json:"id,omitempty"`
	Channel string   `json:"channel,omitempty"`
	Events  []string `json:"events,omitempty"`

	CallType string     `json:"callType,omitempty"`
	ANI      string     `json:"ani,omitempty"`
	DNIS     string     `json:"dnis,omitempty"`
	Number   string     `json:"number,omitempty"`
	Email    string     `json:"email,omitempty"`
	Campaign string     `json:"campaign,omitempty"`
	Skill    string     `json:"skill,omitempty"`
	Subject  string     `json:"subject,omitempty"`
	Notes    string     `json:"notes,omitempty"`
	Start    *time.Time `json:"start,omitempty"`
	// Duration is the SDK's own, in whole seconds.
	Duration *int `json:"duration,omitempty"`

	DispositionID   string        `json:"dispositionId,omitempty"`
	DispositionName string        `json:"dispositionName,omitempty"`
	Dispositions    []disposition `json:"dispositions,omitempty"`

	CAVs        []cav `json:"cavs,omitempty"`
	CAVsDropped int   `json:"cavsDropped,omitempty"`

	NameObject      *crmRef `json:"nameObject,omitempty"`
	RelatedToObject *crmRef `json:"relatedToObject,omitempty"`

	AgentID     string `json:"agentId,omitempty"`
	TenantID    string `json:"tenantId,omitempty"`
	Transferred bool   `json:"transferred,omitempty"`

	FirstAt *time.Time `json:"firstAt,omitempty"`
	EndedAt *time.Time `json:"endedAt,omitempty"`
	LastAt  *time.Time `json:"lastAt,omitempty"`
}

// cav is one call attached variable, keyed group.name. The value is kept as
// the JSON the SDK sent, so that the snapshot does not change it.
type cav struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// disposition is one entry of getDispositions.
type disposition struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// crmRef is a CRM object as the SDK describes it (CrmObject). IsWho and
// IsWhat are pointers because "not said" and "false" route it differently.
type crmRef struct {
	Type   string `json:"type,omitempty"`
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	IsWho  *bool  `json:"isWho,omitempty"`
	IsWhat *bool  `json:"isWhat,omitempty"`
}

// loadSnapshot decodes a stored snapshot. A snapshot that does not decode
// (written by a future release, or damaged) is reported, not fatal: failing
// the event for it would refuse every later event of the interaction, and
// the event is worth more than the snapshot.
func loadSnapshot(b []byte) (*facts, error) {
	if b == nil {
		return nil, nil
	}
	var f facts
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("snapshot is not readable: %v", err)
	}
	if f.V != snapshotVersion {
		return nil, fmt.Errorf("snapshot version %d is not %d", f.V, snapshotVersion)
	}
	return &f, nil
}

// encode is the snapshot's stored form. facts holds strings, bounded times
// and JSON that decoded once already, so an error means a bug, reported as
// an error rather than a panic in the request path.
func (f *facts) encode() ([]byte, error) {
	f.V = snapshotVersion
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("five9: encode snapshot: %w", err)
	}
	return b, nil
}

// merge folds the facts of a later-arriving event n into f. Values n has
// win over f's, and values n lacks never erase f's: after an interaction is
// finished the SDK's getters return nothing, so an empty list on *Finished
// means "no longer known", not "none".
//
// Events can arrive out of order (two tabs, a slow network). When n's
// receivedAt is before the latest one f has merged, n only fills what f
// does not know yet, so that a late callAccepted cannot overwrite the CAVs
// that callEnded captured.
func (f *facts) merge(n *facts) {
	older := n.LastAt != nil && f.LastAt != nil && n.LastAt.Before(*f.LastAt)
	str := func(dst *string, v string) {
		if v != "" && (!older || *dst == "") {
			*dst = v
		}
	}
	str(&f.ID, n.ID)
	str(&f.Channel, n.Channel)
	str(&f.CallType, n.CallType)
	str(&f.ANI, n.ANI)
	str(&f.DNIS, n.DNIS)
	str(&f.Number, n.Number)
	str(&f.Email, n.Email)
	str(&f.Campaign, n.Campaign)
	str(&f.Skill, n.Skill)
	str(&f.Subject, n.Subject)
	str(&f.Notes, n.Notes)
	str(&f.DispositionID, n.DispositionID)
	str(&f.DispositionName, n.DispositionName)
	str(&f.AgentID, n.AgentID)
	str(&f.TenantID, n.TenantID)
	if n.Start != nil && (!older || f.Start == nil) {
		f.Start = n.Start
	}
	if n.Duration != nil && (!older || f.Duration == nil) {
		f.Duration = n.Duration
	}
	if len(n.Dispositions) > 0 && (!older || len(f.Dispositions) == 0) {
		f.Dispositions = n.Dispositions
	}
	if n.NameObject != nil && (!older || f.NameObject == nil) {
		f.NameObject = n.NameObject
	}
	if n.RelatedToObject != nil && (!older || f.RelatedToObject == nil) {
		f.RelatedToObject = n.RelatedToObject
	}
	f.Transferred = f.Transferred || n.Transferred
	f.FirstAt = earliest(f.FirstAt, n.FirstAt)
	f.EndedAt = earliest(f.EndedAt, n.EndedAt)
	if n.LastAt != nil && (f.LastAt == nil || n.LastAt.After(*f.LastAt)) {
		f.LastAt = n.LastAt
	}
	f.CAVsDropped = max(f.CAVsDropped, n.CAVsDropped)
	f.addCAVs(n.CAVs, older)
	f.Events = append(f.Events, n.Events...)
	if len(f.Events) > maxEvents {
		f.Events = f.Events[len(f.Events)-maxEvents:]
	}
}

// addCAVs merges CAVs by key within the bounds, keeping first-seen order so
// that Attached and the snapshot are stable across replays. When older is
// set, known keys keep their values.
func (f *facts) addCAVs(in []cav, older bool) {
	if len(in) == 0 {
		return
	}
	at := make(map[string]int, len(f.CAVs))
	size := 0
	for i, c := range f.CAVs {
		at[c.Key] = i
		size += len(c.Key) + len(c.Value)
	}
	for _, c := range in {
		if i, ok := at[c.Key]; ok {
			grown := size - len(f.CAVs[i].Value) + len(c.Value)
			switch {
			case older:
			case grown > maxCAVBytes:
				f.CAVsDropped++
			default:
				f.CAVs[i].Value, size = c.Value, grown
			}
			continue
		}
		if len(f.CAVs) >= maxCAVs || size+len(c.Key)+len(c.Value) > maxCAVBytes {
			f.CAVsDropped++
			continue
		}
		at[c.Key] = len(f.CAVs)
		f.CAVs = append(f.CAVs, c)
		size += len(c.Key) + len(c.Value)
	}
}

// earliest returns the earlier of two optional times.
func earliest(a, b *time.Time) *time.Time {
	switch {
	case a == nil:
		return b
	case b == nil || a.Before(*b) || a.Equal(*b):
		return a
	}
	return b
}
