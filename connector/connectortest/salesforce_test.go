package connectortest_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// sfCall sends one request to the fake and returns the status, the body and
// the Sforce-Limit-Info header.
func sfCall(t *testing.T, method, u, token, body string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if strings.HasSuffix(u, "/oauth2/token") {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Sforce-Limit-Info")
}

func sfToken(t *testing.T, f *connectortest.Salesforce, form url.Values) (int, map[string]string) {
	t.Helper()
	status, body, _ := sfCall(t, "POST", f.URL+"/services/oauth2/token", "", form.Encode())
	var m map[string]string
	json.Unmarshal([]byte(body), &m)
	return status, m
}

func TestSalesforceToken(t *testing.T) {
	f := connectortest.NewSalesforce(t)
	status, m := sfToken(t, f, url.Values{"grant_type": {"client_credentials"}, "client_id": {f.ClientID}, "client_secret": {f.ClientSecret}})
	if status != 200 || m["instance_url"] != f.URL || !f.Valid(m["access_token"]) {
		t.Errorf("client credentials: %d %v", status, m)
	}
	status, m = sfToken(t, f, url.Values{"grant_type": {"client_credentials"}, "client_id": {f.ClientID}, "client_secret": {"wrong"}})
	if status != 400 || m["error"] != "invalid_client" {
		t.Errorf("bad secret: %d %v, want 400 invalid_client", status, m)
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f.TrustJWT("agent@example.com", &key.PublicKey)
	assertion := func(iss, sub string, exp time.Time) string {
		enc := base64.RawURLEncoding.EncodeToString
		head := enc([]byte(`{"alg":"RS256"}`))
		claims, _ := json.Marshal(map[string]any{"iss": iss, "sub": sub, "aud": connectortest.SalesforceAudience, "exp": exp.Unix()})
		signed := head + "." + enc(claims)
		digest := sha256.Sum256([]byte(signed))
		sig, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
		return signed + "." + enc(sig)
	}
	jwt := func(a string) (int, map[string]string) {
		return sfToken(t, f, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {a}})
	}
	soon := time.Now().Add(3 * time.Minute)
	if status, m := jwt(assertion(f.ClientID, "agent@example.com", soon)); status != 200 || m["access_token"] == "" {
		t.Errorf("JWT bearer: %d %v", status, m)
	}
	for name, a := range map[string]string{
		"other issuer":   assertion("someone-else", "agent@example.com", soon),
		"unknown user":   assertion(f.ClientID, "nobody@example.com", soon),
		"expired":        assertion(f.ClientID, "agent@example.com", time.Now().Add(-time.Minute)),
		"bad signature":  assertion(f.ClientID, "agent@example.com", soon)[:20] + "x" + assertion(f.ClientID, "agent@example.com", soon)[21:],
		"not a JWT":      "abc",
		"signature gone": strings.TrimRight(assertion(f.ClientID, "agent@example.com", soon), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"),
	} {
		if status, m := jwt(a); status != 400 || m["error"] != "invalid_grant" {
			t.Errorf("%s: %d %v, want 400 invalid_grant", name, status, m)
		}
	}
}

func TestSalesforceUpsert(t *testing.T) {
	f := connectortest.NewSalesforce(t)
	_, m := sfToken(t, f, url.Values{"grant_type": {"client_credentials"}, "client_id": {f.ClientID}, "client_secret": {f.ClientSecret}})
	tok := m["access_token"]
	base := f.URL + "/services/data/v62.0"
	upsert := func(key, body string) (int, string, string) {
		return sfCall(t, "PATCH", base+"/sobjects/Task/CallLogKey__c/"+url.PathEscape(key), tok, body)
	}

	status, body, limit := upsert("k1", `{"Subject":"Call","TaskSubtype":"Call","CallDurationInSeconds":12}`)
	if status != 201 || !strings.Contains(body, `"created":true`) || limit != "api-usage=1/100000" {
		t.Errorf("first upsert: %d %s %q, want 201 created and api-usage=1/100000", status, body, limit)
	}
	if status, body, _ = upsert("k1", `{"Subject":"Call"}`); status != 200 || !strings.Contains(body, `"created":false`) {
		t.Errorf("second upsert: %d %s, want 200 created false", status, body)
	}
	if n := len(f.Records("k1")); n != 1 {
		t.Errorf("records for k1 = %d, want 1", n)
	}
	checks := []struct {
		name, key, body string
		status          int
		want            string
	}{
		{"TaskSubtype on update", "k1", `{"TaskSubtype":"Call"}`, 400, "INVALID_FIELD_FOR_INSERT_UPDATE"},
		{"too long", "k2", `{"Subject":"` + strings.Repeat("é", 256) + `"}`, 400, "STRING_TOO_LONG"},
		{"unknown field", "k2", `{"Duration":1}`, 400, "INVALID_FIELD"},
		{"external id in body", "k2", `{"CallLogKey__c":"k2"}`, 400, "INVALID_FIELD"},
		{"malformed who", "k2", `{"WhoId":"003abc"}`, 400, "MALFORMED_ID"},
		{"who not a person", "k2", `{"WhoId":"001000000000001AAA"}`, 400, "FIELD_INTEGRITY_EXCEPTION"},
		{"fractional duration", "k2", `{"CallDurationInSeconds":1.5}`, 400, "JSON_PARSER_ERROR"},
	}
	for _, c := range checks {
		if status, body, _ := upsert(c.key, c.body); status != c.status || !strings.Contains(body, `"errorCode":"`+c.want+`"`) {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, body, c.status, c.want)
		}
	}
	if status, body, _ := sfCall(t, "PATCH", base+"/sobjects/Task/Other__c/k3", tok, `{}`); status != 404 || !strings.Contains(body, "NOT_FOUND") {
		t.Errorf("unknown external id field: %d %s, want 404 NOT_FOUND", status, body)
	}
	f.Duplicate("Task", "k1")
	if status, body, _ = upsert("k1", `{"Subject":"x"}`); status != 300 || strings.Count(body, "/sobjects/Task/00T") != 2 {
		t.Errorf("ambiguous upsert: %d %s, want 300 with two record URLs", status, body)
	}

	f.ExpireTokens()
	if status, body, _ = upsert("k4", `{}`); status != 401 || !strings.Contains(body, "INVALID_SESSION_ID") {
		t.Errorf("expired token: %d %s, want 401 INVALID_SESSION_ID", status, body)
	}
	_, m = sfToken(t, f, url.Values{"grant_type": {"client_credentials"}, "client_id": {f.ClientID}, "client_secret": {f.ClientSecret}})
	tok = m["access_token"]
	f.SetUsage(100000, 100000)
	if status, body, limit = upsert("k4", `{}`); status != 403 || !strings.Contains(body, "REQUEST_LIMIT_EXCEEDED") || limit != "api-usage=100001/100000" {
		t.Errorf("over the limit: %d %s %q, want 403 REQUEST_LIMIT_EXCEEDED", status, body, limit)
	}
	if len(f.Records("k4")) != 0 {
		t.Error("a refused upsert wrote a record")
	}
}

func TestSalesforceCollection(t *testing.T) {
	f := connectortest.NewSalesforce(t)
	_, m := sfToken(t, f, url.Values{"grant_type": {"client_credentials"}, "client_id": {f.ClientID}, "client_secret": {f.ClientSecret}})
	tok := m["access_token"]
	u := f.URL + "/services/data/v62.0/composite/sobjects/Task/CallLogKey__c"
	records := func(n int) string {
		var recs []string
		for i := range n {
			recs = append(recs, fmt.Sprintf(`{"attributes":{"type":"Task"},"CallLogKey__c":"b%d","Subject":"s"}`, i))
		}
		return `{"allOrNone":false,"records":[` + strings.Join(recs, ",") + `]}`
	}
	if status, body, _ := sfCall(t, "PATCH", u, tok, records(201)); status != 400 || !strings.Contains(body, "EXCEEDED_ID_LIMIT") {
		t.Errorf("201 records: %d %.200s, want 400 EXCEEDED_ID_LIMIT", status, body)
	}
	f.Reject("b1", "Calls need a subject that is not s")
	status, body, _ := sfCall(t, "PATCH", u, tok, records(3))
	var results []struct {
		ID      string
		Success bool
		Created bool
		Errors  []struct{ StatusCode, Message string }
	}
	if err := json.Unmarshal([]byte(body), &results); err != nil || status != 200 || len(results) != 3 {
		t.Fatalf("collection: %d %s, want 200 with 3 results", status, body)
	}
	if !results[0].Success || !results[0].Created || results[1].Success || results[1].Errors[0].StatusCode != "FIELD_CUSTOM_VALIDATION_EXCEPTION" || !results[2].Success {
		t.Errorf("collection results = %+v, want the second rejected on its own", results)
	}
	sfCall(t, "PATCH", u, tok, records(3))
	if n := len(f.Records("b0")); n != 1 {
		t.Errorf("records for b0 after two collection upserts = %d, want 1", n)
	}
	if f.APICalls() != 3 {
		t.Errorf("APICalls = %d, want 3", f.APICalls())
	}
}

func TestSalesforceSearch(t *testing.T) {
	f := connectortest.NewSalesforce(t)
	_, m := sfToken(t, f, url.Values{"grant_type": {"client_credentials"}, "client_id": {f.ClientID}, "client_secret": {f.ClientSecret}})
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := f.AddPerson("Contact", "(415) 555-0100", t0)
	f.AddPerson("Lead", "+1 650 555 0199", t0)
	q := url.QueryEscape("FIND {14155550100 OR 4155550100} IN PHONE FIELDS RETURNING Contact(Id, LastModifiedDate), Lead(Id, LastModifiedDate)")
	status, body, _ := sfCall(t, "GET", f.URL+"/services/data/v62.0/search?q="+q, m["access_token"], "")
	if status != 200 || !strings.Contains(body, c) || strings.Count(body, `"Id"`) != 1 || !strings.Contains(body, "2026-01-02T03:04:05.000+0000") {
		t.Errorf("search: %d %s, want the one contact %s", status, body, c)
	}
}
