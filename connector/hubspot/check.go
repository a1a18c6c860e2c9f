package hubspot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Finding is one line of Check's report.
type Finding struct {
	// OK is false for a problem that stops deliveries or may write a
	// record twice.
	OK   bool
	Text string
}

// Describe returns HubSpot's properties of object (GET
// /crm/v3/properties/{object}) as HubSpot sends them: their names, types
// and options, for a schema file.
func (t *Target) Describe(ctx context.Context, object string) (json.RawMessage, error) {
	if !validPropertyName(object) {
		return nil, fmt.Errorf("hubspot describe: %q is not an object name such as calls", object)
	}
	var raw json.RawMessage
	if _, err := t.do(ctx, http.MethodGet, t.propertiesURL()+"/"+object, nil, &raw); err != nil {
		return nil, fmt.Errorf("hubspot properties of %s: %w", object, err)
	}
	return raw, nil
}

// propertiesURL is the properties API beside the objects API:
// /crm/v3/objects → /crm/v3/properties, and for date-versioned paths
// /crm/objects/2026-03 → /crm/properties/2026-03.
func (t *Target) propertiesURL() string {
	i := strings.LastIndex(t.objects, "/objects")
	return t.objects[:i] + "/properties" + t.objects[i+len("/objects"):]
}

// Check signs in, reads one call and the calls properties, writing
// nothing, and reports one finding per fact: the token, that calls can be
// read (writing them needs the crm.objects.calls.write scope too, which
// only a write would prove), and that id_property exists on calls with
// "unique value" set, without which a retry could log a call twice.
func (t *Target) Check(ctx context.Context) []Finding {
	if _, err := t.auth.token(ctx); err != nil {
		return []Finding{{Text: "sign in (" + t.auth.kind() + "): " + err.Error()}}
	}
	var list struct {
		Results []json.RawMessage `json:"results"`
	}
	if _, err := t.do(ctx, http.MethodGet, t.objects+"/calls?limit=1", nil, &list); err != nil {
		return []Finding{{Text: "calls: cannot read them: " + err.Error()}}
	}
	out := []Finding{{OK: true, Text: "signed in (" + t.auth.kind() + "); calls readable at " + t.objects + "/calls"}}
	raw, err := t.Describe(ctx, "calls")
	if err != nil {
		return append(out, Finding{Text: "calls properties: " + err.Error()})
	}
	var props struct {
		Results []struct {
			Name           string `json:"name"`
			Type           string `json:"type"`
			HasUniqueValue bool   `json:"hasUniqueValue"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &props); err != nil {
		return append(out, Finding{Text: "calls properties: the answer is not what HubSpot documents"})
	}
	f := Finding{Text: fmt.Sprintf("id_property %s: calls have no such property; create it as a single-line text with \"unique value\" set", t.idProperty)}
	for _, p := range props.Results {
		if p.Name != t.idProperty {
			continue
		}
		switch {
		case !p.HasUniqueValue:
			f.Text = fmt.Sprintf("id_property %s: not set to \"unique value\" on calls, so a retry may log a call twice", p.Name)
		case p.Type != "string":
			f.Text = fmt.Sprintf("id_property %s: is %s, not text: the keys are text", p.Name, p.Type)
		default:
			f = Finding{OK: true, Text: fmt.Sprintf("id_property %s: text with a unique value on calls", p.Name)}
		}
	}
	return append(out, f)
}
