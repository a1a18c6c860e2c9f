package connectortest

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// hubspotProperty is a calls property as HubSpot's properties API
// describes it (the members a schema reads).
type hubspotProperty struct {
	Name                 string          `json:"name"`
	Label                string          `json:"label"`
	Type                 string          `json:"type"`
	FieldType            string          `json:"fieldType"`
	Options              []hubspotOption `json:"options"`
	HasUniqueValue       bool            `json:"hasUniqueValue"`
	Calculated           bool            `json:"calculated"`
	ModificationMetadata map[string]bool `json:"modificationMetadata"`
}

type hubspotOption struct {
	Label  string `json:"label"`
	Value  string `json:"value"`
	Hidden bool   `json:"hidden"`
}

// documentedCallProperties are the calls properties HubSpot's calls guide lists,
// with the types its properties API gives them, and two it sets itself.
var documentedCallProperties = []hubspotProperty{
	{Name: "hs_timestamp", Label: "Activity date", Type: "datetime", FieldType: "date"},
	{Name: "hs_call_title", Label: "Call title", Type: "string", FieldType: "text"},
	{Name: "hs_call_body", Label: "Call notes", Type: "string", FieldType: "html"},
	{Name: "hs_call_duration", Label: "Call duration", Type: "number", FieldType: "number"},
	{Name: "hs_call_direction", Label: "Call direction", Type: "enumeration", FieldType: "select",
		Options: options("INBOUND", "OUTBOUND")},
	{Name: "hs_call_disposition", Label: "Call outcome", Type: "string", FieldType: "text"},
	{Name: "hs_call_status", Label: "Call status", Type: "enumeration", FieldType: "select",
		Options: options("BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED",
			"IN_PROGRESS", "NO_ANSWER", "QUEUED", "RINGING")},
	{Name: "hs_call_from_number", Label: "From number", Type: "string", FieldType: "phonenumber"},
	{Name: "hs_call_to_number", Label: "To number", Type: "string", FieldType: "phonenumber"},
	{Name: "hs_call_recording_url", Label: "Recording URL", Type: "string", FieldType: "text"},
	{Name: "hs_call_source", Label: "Call source", Type: "enumeration", FieldType: "select",
		Options: options("INTEGRATIONS_PLATFORM")},
	{Name: "hubspot_owner_id", Label: "Activity assigned to", Type: "enumeration", FieldType: "select"},
	{Name: "hs_createdate", Label: "Create date", Type: "datetime", FieldType: "date",
		ModificationMetadata: map[string]bool{"readOnlyValue": true}},
	{Name: "hs_object_id", Label: "Record ID", Type: "number", FieldType: "number",
		ModificationMetadata: map[string]bool{"readOnlyValue": true}},
}

func options(values ...string) []hubspotOption {
	out := make([]hubspotOption, len(values))
	for i, v := range values {
		out[i] = hubspotOption{Label: v, Value: v}
	}
	return out
}

// propertiesPath is the properties API's root beside objectsPath:
// /crm/v3/objects → /crm/v3/properties, /crm/objects/2026-03 →
// /crm/properties/2026-03.
func propertiesPath(objectsPath string) string {
	i := strings.LastIndex(objectsPath, "/objects")
	if i < 0 {
		return objectsPath
	}
	return objectsPath[:i] + "/properties" + objectsPath[i+len("/objects"):]
}

// properties is GET /crm/v3/properties/calls: the documented calls
// properties and the unique-value key property.
func (h *HubSpot) properties(w http.ResponseWriter, _ *http.Request) {
	props := slices.Clone(documentedCallProperties)
	props = append(props, hubspotProperty{Name: h.opts.IDProperty, Label: "ctibridge key", Type: "string",
		FieldType: "text", HasUniqueValue: true})
	hubspotJSON(w, http.StatusOK, map[string]any{"results": props})
}

// listCalls is GET /crm/v3/objects/calls?limit=N: the first calls, by id.
func (h *HubSpot) listCalls(w http.ResponseWriter, r *http.Request) {
	limit := 10
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			hubspotAnswer(w, http.StatusBadRequest, nil, HubSpotError("VALIDATION_ERROR", "limit must be between 1 and 100"))
			return
		}
		limit = n
	}
	h.mu.Lock()
	ids := slices.Sorted(maps.Keys(h.calls))
	results := []map[string]any{}
	for _, id := range ids[:min(limit, len(ids))] {
		results = append(results, map[string]any{"id": id, "properties": map[string]string{"hs_object_id": id}, "archived": false})
	}
	h.mu.Unlock()
	hubspotJSON(w, http.StatusOK, map[string]any{"results": results})
}
