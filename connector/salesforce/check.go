package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Finding is one line of Check's report.
type Finding struct {
	// OK is false for a problem that stops deliveries or may write a
	// record twice.
	OK   bool
	Text string
}

// Describe returns Salesforce's description of object (GET
// /sobjects/{object}/describe) as Salesforce sends it: its fields with
// their types, lengths and picklist values, for a schema file.
func (t *Target) Describe(ctx context.Context, object string) (json.RawMessage, error) {
	if !apiName.MatchString(object) {
		return nil, fmt.Errorf("salesforce describe: %q is not an object API name", object)
	}
	ans, err := t.call(ctx, http.MethodGet, "/sobjects/"+url.PathEscape(object)+"/describe", nil)
	if err != nil {
		return nil, err
	}
	if ans.status == http.StatusOK {
		ans.parsed = json.Valid(ans.body)
		ans.success = ans.parsed
	} else {
		ans.parseErrors()
	}
	if v := classify(ans); v != delivered {
		return nil, t.failure(ans, v, "salesforce describe "+object)
	}
	return ans.body, nil
}

// Check signs in and reads the description of each object (default
// Config.Object), writing nothing, and reports one finding per fact: the
// session, each object's create and update rights (an upsert needs both)
// and its external-id field (present, External ID, Unique), and the
// org's API use.
func (t *Target) Check(ctx context.Context, objects ...string) []Finding {
	s, err := t.auth.get(ctx, "")
	if err != nil {
		return []Finding{{Text: "sign in at " + t.cfg.LoginURL + ": " + err.Error()}}
	}
	out := []Finding{{OK: true, Text: "signed in at " + t.cfg.LoginURL + "; instance " + s.instanceURL}}
	if len(objects) == 0 {
		objects = []string{t.cfg.Object}
	}
	for _, object := range objects {
		out = append(out, t.checkObject(ctx, object)...)
	}
	if used, max := t.Usage(); max > 0 {
		out = append(out, Finding{OK: float64(used) < t.cfg.LimitThreshold*float64(max),
			Text: fmt.Sprintf("API requests: %d of %d used in the last 24 hours (limit_threshold %.2f)", used, max, t.cfg.LimitThreshold)})
	}
	return out
}

// checkObject reports object's rights and external-id field.
func (t *Target) checkObject(ctx context.Context, object string) []Finding {
	raw, err := t.Describe(ctx, object)
	if err != nil {
		return []Finding{{Text: "object " + object + ": " + err.Error()}}
	}
	var desc struct {
		Createable, Updateable bool
		Fields                 []struct {
			Name       string
			ExternalID bool `json:"externalId"`
			Unique     bool
		}
	}
	if err := json.Unmarshal(raw, &desc); err != nil {
		return []Finding{{Text: "object " + object + ": describe answer is not what Salesforce documents"}}
	}
	out := []Finding{{OK: desc.Createable && desc.Updateable,
		Text: fmt.Sprintf("object %s: createable %t, updateable %t (an upsert needs both)", object, desc.Createable, desc.Updateable)}}
	ext := Finding{Text: fmt.Sprintf("external_id_field %s: %s has no such field", t.cfg.ExternalIDField, object)}
	for _, f := range desc.Fields {
		if f.Name != t.cfg.ExternalIDField {
			continue
		}
		switch {
		case !f.ExternalID:
			ext.Text = fmt.Sprintf("external_id_field %s: not flagged External ID on %s", f.Name, object)
		case !f.Unique:
			ext.Text = fmt.Sprintf("external_id_field %s: not Unique on %s, so a key may match several records (300)", f.Name, object)
		default:
			ext = Finding{OK: true, Text: fmt.Sprintf("external_id_field %s: External ID and Unique on %s", f.Name, object)}
		}
	}
	return append(out, ext)
}
