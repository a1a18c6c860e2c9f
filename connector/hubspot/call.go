package hubspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ctibridge/ctibridge/connector"
)

// Association type ids of a call to each kind of record, all
// HUBSPOT_DEFINED.
const (
	callToContact = 194
	callToCompany = 182
	callToDeal    = 206
	callToTicket  = 220
)

// toObjects maps the record types platforms and desktops use to HubSpot's
// object type and the call's association type id to it. Salesforce-style
// names are accepted because several desktops use them whatever the CRM.
var toObjects = map[string]struct {
	objectType string
	typeID     int
}{
	"contact":     {"contacts", callToContact},
	"company":     {"companies", callToCompany},
	"account":     {"companies", callToCompany},
	"deal":        {"deals", callToDeal},
	"opportunity": {"deals", callToDeal},
	"ticket":      {"tickets", callToTicket},
	"case":        {"tickets", callToTicket},
}

// call is one activity made ready for HubSpot.
type call struct {
	key    string
	rule   string
	props  map[string]string
	assocs []association // never nil: HubSpot requires the member
}

// association links a call to one record, in HubSpot's create shape.
// toType is the record's object type, for the v4 association endpoints.
type association struct {
	To     assocTo     `json:"to"`
	Types  []assocType `json:"types"`
	toType string
}

type assocTo struct {
	ID string `json:"id"`
}

type assocType struct {
	Category string `json:"associationCategory"`
	TypeID   int    `json:"associationTypeId"`
}

// prepare reads d's activity and builds its call: every field a text
// property, the key in the id property, associations from who and what
// (or the caller match) and from a field named "associations". Errors are
// permanent, naming the rule and field, except a failed caller match,
// which is retried like any other HubSpot error.
func (t *Target) prepare(ctx context.Context, d connector.Delivery) (*call, error) {
	var a connector.Activity
	if err := decodeJSON(d.Body, &a); err != nil {
		return nil, connector.Permanent(fmt.Errorf("delivery %q: stored activity is not JSON: %v", d.Key, err))
	}
	if a.Key == "" {
		a.Key = d.Key
	}
	bad := func(format string, args ...any) error {
		return connector.Permanent(fmt.Errorf("rule %q: %s", a.Rule, fmt.Sprintf(format, args...)))
	}
	if a.Object != "" && a.Object != "calls" {
		return nil, bad("object %q: the hubspot target writes calls only", a.Object)
	}
	c := &call{key: a.Key, rule: a.Rule, props: make(map[string]string, len(a.Fields)+1), assocs: []association{}}
	for name, v := range a.Fields {
		if name == "associations" {
			extra, err := parseAssociations(v)
			if err != nil {
				return nil, bad("field associations: %v", err)
			}
			c.add(extra...)
			continue
		}
		s, ok, err := text(v)
		if err != nil {
			return nil, bad("field %s: %v", name, err)
		}
		if ok {
			c.props[name] = s
		}
	}
	if c.props["hs_timestamp"] == "" {
		return nil, bad("field hs_timestamp: required by HubSpot (the call's time, epoch milliseconds or ISO 8601)")
	}
	c.props[t.idProperty] = a.Key

	for _, o := range []struct {
		role string
		obj  *connector.CRMObject
	}{{"who", a.Who}, {"what", a.What}} {
		if o.obj == nil {
			continue
		}
		as, err := linkTo(*o.obj)
		if err != nil {
			return nil, bad("%s: %v", o.role, err)
		}
		c.add(as)
	}
	if a.Who == nil && t.match != nil && a.Phone != "" {
		if err := t.matchCaller(ctx, c, a.Phone); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// add appends links c does not have yet.
func (c *call) add(as ...association) {
	for _, a := range as {
		dup := false
		for _, have := range c.assocs {
			if have.To == a.To && have.toType == a.toType {
				dup = true
				break
			}
		}
		if !dup {
			c.assocs = append(c.assocs, a)
		}
	}
}

// linkTo makes the association to o, checking its type and id.
func linkTo(o connector.CRMObject) (association, error) {
	to, ok := toObjects[strings.ToLower(o.Type)]
	if !ok {
		return association{}, fmt.Errorf("type %q cannot be linked to a HubSpot call (contact, company, deal or ticket)", o.Type)
	}
	if !isID(o.ID) {
		return association{}, fmt.Errorf("%s id %q is not a HubSpot record id (digits)", o.Type, o.ID)
	}
	return association{
		To:     assocTo{ID: o.ID},
		Types:  []assocType{{Category: "HUBSPOT_DEFINED", TypeID: to.typeID}},
		toType: to.objectType,
	}, nil
}

// typeIDs maps an association type id of a call to the object type it
// links to, for associations a rule gives in HubSpot's shape.
var typeIDs = map[int]string{
	callToContact: "contacts", callToCompany: "companies", callToDeal: "deals", callToTicket: "tickets",
}

// parseAssociations reads a rule's "associations" field: a list in
// HubSpot's create shape with HUBSPOT_DEFINED call association types.
func parseAssociations(v any) ([]association, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var as []association
	if err := json.Unmarshal(b, &as); err != nil {
		return nil, errors.New(`want a list of {"to": {"id": …}, "types": [{"associationCategory": …, "associationTypeId": …}]}`)
	}
	for i := range as {
		a := &as[i]
		if !isID(a.To.ID) {
			return nil, fmt.Errorf("item %d: to.id %q is not a HubSpot record id (digits)", i+1, a.To.ID)
		}
		if len(a.Types) != 1 || a.Types[0].Category != "HUBSPOT_DEFINED" || typeIDs[a.Types[0].TypeID] == "" {
			return nil, fmt.Errorf("item %d: want one HUBSPOT_DEFINED type: 194 (contact), 182 (company), 206 (deal) or 220 (ticket)", i+1)
		}
		a.toType = typeIDs[a.Types[0].TypeID]
	}
	return as, nil
}

// text turns a field's value into a HubSpot property value. ok is false
// for null, which is not sent.
func text(v any) (s string, ok bool, err error) {
	switch v := v.(type) {
	case nil:
		return "", false, nil
	case string:
		return v, true, nil
	case json.Number:
		return v.String(), true, nil
	case bool:
		return strconv.FormatBool(v), true, nil
	}
	return "", false, errors.New("HubSpot property values are text; this one is a list or an object")
}

func isID(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
