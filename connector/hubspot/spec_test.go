package hubspot

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// recorder is a testing.TB that notes failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestSpecCatchesBadRequests shows that the spec check the other tests
// rely on fails requests HubSpot would refuse.
func TestSpecCatchesBadRequests(t *testing.T) {
	f := newFake(t)
	many := strings.Repeat(`{"idProperty":"k","id":"1","properties":{"hs_timestamp":"1"}},`, 101)
	tests := []struct{ name, path, body string }{
		{"create without associations", "/crm/v3/objects/calls", `{"properties":{"hs_timestamp":"1"}}`},
		{"a number property", "/crm/v3/objects/calls", `{"properties":{"hs_timestamp":"1","hs_call_duration":312000},"associations":[]}`},
		{"duration not in whole milliseconds", "/crm/v3/objects/calls", `{"properties":{"hs_timestamp":"1","hs_call_duration":"312.5"},"associations":[]}`},
		{"association id not digits", "/crm/v3/objects/calls", `{"properties":{"hs_timestamp":"1"},"associations":[{"to":{"id":"003x"},"types":[{"associationCategory":"HUBSPOT_DEFINED","associationTypeId":194}]}]}`},
		{"101 upserts", "/crm/v3/objects/calls/batch/upsert", `{"inputs":[` + strings.TrimSuffix(many, ",") + `]}`},
		{"unknown path", "/crm/v3/objects/notes", `{}`},
	}
	for _, tc := range tests {
		rec := &recorder{TB: t}
		c := client(rec, f.URL, 0)
		resp, err := c.Post(f.URL+tc.path, "application/json", strings.NewReader(tc.body))
		if err == nil {
			resp.Body.Close()
		}
		if len(rec.errors) == 0 {
			t.Errorf("%s: the spec check let it through", tc.name)
		}
	}
	rec := &recorder{TB: t}
	resp, err := client(rec, f.URL, 0).Post(f.URL+"/crm/v3/objects/calls", "application/json",
		strings.NewReader(`{"properties":{"hs_timestamp":"1","hs_call_duration":"312000"},"associations":[]}`))
	if err == nil {
		resp.Body.Close()
	}
	if len(rec.errors) != 0 || err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a valid create: spec errors %v, %v; want none (and the fake's 401 without a token)", rec.errors, err)
	}
}
