package connectortest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// hubspotDo sends body to the fake and returns the status and the decoded
// answer.
func hubspotDo(t *testing.T, h *connectortest.HubSpot, token, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: answer is not JSON: %s", path, raw)
	}
	return resp.StatusCode, out
}

func TestHubSpot_Quirks(t *testing.T) {
	h := connectortest.NewHubSpot(t, connectortest.HubSpotOptions{PrivateAppToken: "pat-1"})
	const create = "/crm/v3/objects/calls"
	tests := []struct {
		name, path, body string
		status           int
		category         string
	}{
		{"create without associations", create, `{"properties":{"hs_timestamp":"1"}}`, 400, "VALIDATION_ERROR"},
		{"create with a number", create, `{"properties":{"hs_timestamp":"1","hs_call_duration":5},"associations":[]}`, 400, "VALIDATION_ERROR"},
		{"create without hs_timestamp", create, `{"properties":{"hs_call_title":"x"},"associations":[]}`, 400, "VALIDATION_ERROR"},
		{"create linked to a record it does not have", create, `{"properties":{"hs_timestamp":"1"},"associations":[{"to":{"id":"9"},"types":[{"associationCategory":"HUBSPOT_DEFINED","associationTypeId":194}]}]}`, 400, "VALIDATION_ERROR"},
		{"create", create, `{"properties":{"hs_timestamp":"1","ctibridge_key":"k1"},"associations":[]}`, 201, ""},
		{"create with a key taken", create, `{"properties":{"hs_timestamp":"1","ctibridge_key":"k1"},"associations":[]}`, 409, "CONFLICT"},
		{"upsert by a property that is not unique", "/crm/v3/objects/calls/batch/upsert", `{"inputs":[{"idProperty":"hs_call_title","id":"k1","properties":{"hs_timestamp":"1"}}]}`, 400, "VALIDATION_ERROR"},
	}
	for _, tc := range tests {
		status, out := hubspotDo(t, h, "pat-1", tc.path, tc.body)
		if status != tc.status || tc.category != "" && out["category"] != tc.category {
			t.Errorf("%s: %d %v, want %d %s", tc.name, status, out, tc.status, tc.category)
		}
	}
	// Upsert by the unique property: the existing call, not a second.
	status, out := hubspotDo(t, h, "pat-1", "/crm/v3/objects/calls/batch/upsert",
		`{"inputs":[{"idProperty":"ctibridge_key","id":"k1","properties":{"hs_timestamp":"2"},"objectWriteTraceId":"0"},{"idProperty":"ctibridge_key","id":"k2","properties":{"hs_timestamp":"2"},"objectWriteTraceId":"1"}]}`)
	results, _ := out["results"].([]any)
	if status != 200 || len(results) != 2 {
		t.Fatalf("upsert: %d %v", status, out)
	}
	for i, wantNew := range []bool{false, true} {
		if r := results[i].(map[string]any); r["new"] != wantNew {
			t.Errorf("upsert result %d: new = %v, want %v", i, r["new"], wantNew)
		}
	}
	if ids := h.Records("k1"); len(ids) != 1 || h.Calls()[ids[0]].Properties["hs_timestamp"] != "2" {
		t.Errorf("k1: %v, want one call, updated", ids)
	}
	// A 423 scripted once, then the normal answer.
	h.FailNextStatus(connectortest.HubSpotLocked())
	if status, _ := hubspotDo(t, h, "pat-1", create, `{"properties":{"hs_timestamp":"1"},"associations":[]}`); status != 423 {
		t.Errorf("scripted 423: got %d", status)
	}
	if status, out := hubspotDo(t, h, "wrong", create, `{}`); status != 401 || out["category"] != "INVALID_AUTHENTICATION" {
		t.Errorf("unknown token: %d %v", status, out)
	}
}

func TestHubSpot_OAuthAndSearch(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 17, 2, 11, 0, time.UTC)
	h := connectortest.NewHubSpot(t, connectortest.HubSpotOptions{ClientID: "c", ClientSecret: "s", RefreshToken: "r"})
	token := func(form url.Values) (int, map[string]any) {
		resp, err := http.PostForm(h.URL+"/oauth/v1/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if status, out := token(url.Values{"grant_type": {"refresh_token"}, "client_id": {"c"}, "client_secret": {"s"}, "refresh_token": {"bad"}}); status != 400 || out["status"] != "BAD_REFRESH_TOKEN" {
		t.Errorf("bad refresh token: %d %v", status, out)
	}
	status, out := token(url.Values{"grant_type": {"refresh_token"}, "client_id": {"c"}, "client_secret": {"s"}, "refresh_token": {"r"}})
	access, _ := out["access_token"].(string)
	if status != 200 || access == "" || out["expires_in"] != float64(1800) {
		t.Fatalf("refresh: %d %v", status, out)
	}
	older := h.AddRecord("contacts", map[string]string{"phone": "+14155550142"}, t0)
	newer := h.AddRecord("contacts", map[string]string{"mobilephone": "+14155550142"}, t0.Add(1))
	h.AddRecord("contacts", map[string]string{"phone": "+14155550000"}, t0)
	status, out = hubspotDo(t, h, access, "/crm/v3/objects/contacts/search",
		`{"filterGroups":[{"filters":[{"propertyName":"phone","operator":"EQ","value":"+14155550142"}]},{"filters":[{"propertyName":"mobilephone","operator":"EQ","value":"+14155550142"}]}],"sorts":[{"propertyName":"lastmodifieddate","direction":"DESCENDING"}],"limit":1}`)
	results, _ := out["results"].([]any)
	if status != 200 || out["total"] != float64(2) || len(results) != 1 || results[0].(map[string]any)["id"] != newer {
		t.Errorf("search: %d %v, want total 2 and %s (newer than %s) first", status, out, newer, older)
	}
	h.ExpireTokens()
	if status, out := hubspotDo(t, h, access, "/crm/v3/objects/calls", `{}`); status != 401 || out["category"] != "EXPIRED_AUTHENTICATION" {
		t.Errorf("expired token: %d %v", status, out)
	}
}
