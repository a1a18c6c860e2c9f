package connector

// Activity is one CRM record that a mapping rule made of an Interaction, to
// be delivered to one target. Its JSON form is what the outbox stores and
// what the generic targets send.
type Activity struct {
	// Key is the idempotency key: the same Key is the same record, and a
	// target writes it at most once. By default {platform}:{id}:{rule},
	// with the interaction's Leg before the rule when it has one.
	Key           string `json:"key"`
	Rule          string `json:"rule"`
	Target        string `json:"target"`
	Object        string `json:"object"`
	Platform      string `json:"platform"`
	InteractionID string `json:"interactionId"`
	// Fields maps CRM field names to values.
	Fields map[string]any `json:"fields"`
	// Who and What are the CRM records the interaction is about, from the
	// platform or click-to-dial: a CRM target links the record to them
	// (Salesforce WhoId/WhatId, HubSpot associations) without the rule
	// having to name them as fields.
	Who  *CRMObject `json:"who,omitempty"`
	What *CRMObject `json:"what,omitempty"`
	// Phone is the customer's number (E.164 when it parses), for a target
	// that finds the caller's CRM record when Who is nil.
	Phone string `json:"phone,omitempty"`
}
