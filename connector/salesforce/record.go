package salesforce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/ctibridge/ctibridge/connector"
)

// taskLimits are the lengths of Task's string fields (crm-apis.md 1.3).
// Since API 15.0 Salesforce refuses a longer value (STRING_TOO_LONG)
// instead of cutting it.
var taskLimits = map[string]int{
	"Subject":         255,
	"CallObject":      255,
	"CallDisposition": 255,
	"CallType":        40,
	"Description":     32000,
}

// fieldLimits merges cfg.FieldLimits over Task's.
func fieldLimits(cfg Config) map[string]int {
	m := maps.Clone(taskLimits)
	maps.Copy(m, cfg.FieldLimits)
	return m
}

// record is an activity ready to be sent.
type record struct {
	key    string // the activity key
	extID  string // the key as the external-id field holds it
	rule   string
	object string
	fields map[string]any
}

// String names the record in errors.
func (r *record) String() string {
	return fmt.Sprintf("salesforce %s, rule %q, key %q", r.object, r.rule, r.key)
}

// dropSubtype removes TaskSubtype, which Salesforce sets on create only,
// for sending again to a Task that exists, and reports whether there was
// one to remove.
func (r *record) dropSubtype() bool {
	_, ok := r.fields["TaskSubtype"]
	delete(r.fields, "TaskSubtype")
	return ok
}

// prepare turns a delivery into a record: it reads the activity, links
// its who and what, matches the caller when its rule asks for it, and
// cuts strings to their field lengths. A record that cannot be sent is a
// permanent error naming the rule and the field.
func (t *Target) prepare(ctx context.Context, d connector.Delivery) (*record, error) {
	var a connector.Activity
	if err := json.Unmarshal(d.Body, &a); err != nil {
		return nil, connector.Permanent(fmt.Errorf("salesforce: key %q: the activity is not JSON: %v", d.Key, err))
	}
	key := d.Key
	if key == "" {
		key = a.Key
	}
	rec := &record{key: key, extID: externalID(key), rule: a.Rule, object: a.Object, fields: maps.Clone(a.Fields)}
	if rec.object == "" {
		rec.object = t.cfg.Object
	}
	if rec.fields == nil {
		rec.fields = map[string]any{}
	}
	if err := t.build(rec, &a); err != nil {
		return nil, connector.Permanent(fmt.Errorf("%s: %w", rec, err))
	}
	if t.match != nil && t.match.applies(&a, rec) {
		if err := t.matchCaller(ctx, &a, rec); err != nil {
			return nil, err
		}
	}
	for field, n := range t.limits {
		if s, ok := rec.fields[field].(string); ok {
			rec.fields[field] = cut(s, n)
		}
	}
	return rec, nil
}

// build checks the object and fields of rec and adds what the target
// sets itself: TaskSubtype, WhoId and WhatId.
func (t *Target) build(rec *record, a *connector.Activity) error {
	if !apiName.MatchString(rec.object) {
		return fmt.Errorf("object %q is not a Salesforce object API name", rec.object)
	}
	if rec.key == "" {
		return errors.New("the activity has no key")
	}
	// The key travels in the URL; Salesforce refuses it in the body too.
	delete(rec.fields, t.cfg.ExternalIDField)
	if _, ok := rec.fields["TaskSubtype"]; !ok && rec.object == "Task" {
		rec.fields["TaskSubtype"] = t.cfg.TaskSubtype
	}
	for _, f := range []string{"WhoId", "WhatId", "OwnerId"} {
		v, ok := rec.fields[f]
		if ok && (v == nil || v == "") {
			// A rule's 'who?.id' without a who: nothing to link, so the
			// who, the what or a caller match may fill it.
			delete(rec.fields, f)
		} else if ok {
			if s, _ := v.(string); !validID(s) {
				return fmt.Errorf("fields.%s: %v is not a Salesforce id (15 or 18 letters and digits, with a valid checksum)", f, v)
			}
		}
	}
	// What first: when the who is not a person, it goes to WhatId only if
	// the what did not take it.
	for _, link := range []struct {
		name string
		obj  *connector.CRMObject
	}{{"what", a.What}, {"who", a.Who}} {
		if link.obj == nil || link.obj.ID == "" {
			continue
		}
		if !validID(link.obj.ID) {
			return fmt.Errorf("%s.id %q is not a Salesforce id (15 or 18 letters and digits, with a valid checksum)", link.name, link.obj.ID)
		}
		slot := "WhatId"
		if isPerson(link.obj.Type, link.obj.ID) {
			slot = "WhoId"
		}
		if _, set := rec.fields[slot]; !set {
			rec.fields[slot] = link.obj.ID
		}
	}
	return nil
}

// isPerson reports whether a record is a Contact or a Lead (WhoId), by its
// id's key prefix or else its type.
func isPerson(typ, id string) bool {
	switch id[:3] {
	case "003", "00Q":
		return true
	case "001", "006", "500", "00T", "00U", "701", "800":
		return false // Account, Opportunity, Case, Task, Event, Campaign, Contract
	}
	return strings.EqualFold(typ, "Contact") || strings.EqualFold(typ, "Lead")
}

// validID reports whether id has the shape of a Salesforce id: 15
// case-sensitive letters and digits, or those and the 3-character suffix
// that encodes their case.
func validID(id string) bool {
	if len(id) != 15 && len(id) != 18 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return len(id) == 15 || strings.EqualFold(id[15:], idSuffix(id[:15]))
}

// idSuffix is the 18-character id's suffix for a 15-character id: for each
// 5 characters, a bit per upper-case letter, as one character of
// A–Z0–5.
func idSuffix(id15 string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	var b [3]byte
	for i := range 3 {
		flags := 0
		for j := range 5 {
			if c := id15[i*5+j]; 'A' <= c && c <= 'Z' {
				flags |= 1 << j
			}
		}
		b[i] = alphabet[flags]
	}
	return string(b[:])
}

// cut returns s cut to at most n characters.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// maxExtID is the length of a Text external-id field, at most.
const maxExtID = 255

// externalID returns the value the external-id field holds for key: key
// itself when it is at most 255 characters of letters, digits and
// "_-:@", which travel in a URL path as they are; otherwise those
// characters with the others replaced by "_", cut, and a hash of the whole
// key appended, so that two keys never share a value.
func externalID(key string) string {
	b := []byte(key)
	safe := len(b) <= maxExtID
	for i, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte("_-:@", c) >= 0) {
			b[i], safe = '_', false
		}
	}
	if safe {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	suffix := "~" + hex.EncodeToString(sum[:12])
	return string(b[:min(len(b), maxExtID-len(suffix))]) + suffix
}
