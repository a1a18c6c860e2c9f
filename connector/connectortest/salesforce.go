package connectortest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Salesforce is a fake Salesforce org, as crm-apis.md describes it: the
// OAuth token endpoint (client credentials and JWT bearer), upsert by
// external id, sObject Collections upsert, SOSL search in phone fields,
// describe, and Salesforce's errors and limits, quirks included:
//
//   - an upsert answers 201 with "created":true, or 200 with
//     "created":false when the external id exists; 300 when several
//     records hold it;
//   - errors are a JSON array of {"message","errorCode","fields"} (in
//     collection results the key is "statusCode");
//   - a token that expired is refused with 401 INVALID_SESSION_ID;
//   - every data response carries Sforce-Limit-Info: api-usage=N/M, and
//     past the daily limit the answer is 403 REQUEST_LIMIT_EXCEEDED;
//   - a string longer than its Task field is STRING_TOO_LONG, not cut;
//   - the external-id field is refused in a single upsert's body, and
//     TaskSubtype cannot be updated.
//
// It implements CRM for RunTargetSuite. Its data API answers under any
// /services/data/vNN.N/ prefix.
type Salesforce struct {
	*httptest.Server
	Faults
	TokenStore

	// ClientID and ClientSecret are the connected app's credentials that
	// the client credentials grant accepts.
	ClientID     string
	ClientSecret string

	mu        sync.Mutex
	jwtKeys   map[string]*rsa.PublicKey // username → key trusted for JWT bearer
	audience  string
	extIDs    map[string]string                 // object → its external-id field
	records   map[string]map[string][]*sfRecord // object → external id → records
	byID      map[string]*sfRecord
	people    []*sfRecord // Contacts and Leads, for search
	rejects   map[string]string
	seq       int
	used, max int
	calls     int
	requests  []SalesforceRequest
}

// SalesforceRequest is one data API request the fake received.
type SalesforceRequest struct {
	Method string
	// Path is relative to /services/data/vNN.N, such as "/sobjects/Task/CallLogKey__c/k1".
	Path  string
	Query url.Values
	Body  []byte
}

type sfRecord struct {
	object   string
	id       string
	fields   map[string]any
	modified time.Time
}

// SalesforceAudience is the JWT audience the fake accepts by default, that
// of a production org.
const SalesforceAudience = "https://login.salesforce.com"

// NewSalesforce starts a fake org with client credentials ClientID and
// ClientSecret, Task's external-id field CallLogKey__c, and a daily API
// limit of 100,000. It is closed when the test ends.
func NewSalesforce(tb testing.TB) *Salesforce {
	f := &Salesforce{
		ClientID:     "3MVG9fake.consumer.key",
		ClientSecret: "fake-consumer-secret-7c1e",
		jwtKeys:      map[string]*rsa.PublicKey{},
		audience:     SalesforceAudience,
		extIDs:       map[string]string{"Task": "CallLogKey__c"},
		records:      map[string]map[string][]*sfRecord{},
		byID:         map[string]*sfRecord{},
		rejects:      map[string]string{},
		max:          100000,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /services/oauth2/token", f.token)
	mux.HandleFunc("/services/data/{version}/", f.data)
	f.Server = httptest.NewServer(mux)
	tb.Cleanup(f.Close)
	return f
}

// TrustJWT makes the JWT bearer grant accept assertions for username
// signed by key's private half, issued by ClientID.
func (f *Salesforce) TrustJWT(username string, key *rsa.PublicKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jwtKeys[username] = key
}

// SetExternalID declares field as object's external-id field.
func (f *Salesforce) SetExternalID(object, field string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.extIDs[object] = field
}

// SetUsage sets the org's API usage as Sforce-Limit-Info reports it. From
// used ≥ max on, data requests are refused with 403 REQUEST_LIMIT_EXCEEDED.
func (f *Salesforce) SetUsage(used, max int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.used, f.max = used, max
}

// Reject makes every write of the record with external id key fail with a
// FIELD_CUSTOM_VALIDATION_EXCEPTION carrying message, as an org's
// validation rule does.
func (f *Salesforce) Reject(key, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rejects[key] = message
}

// AddPerson adds a Contact or Lead with a phone number, for search, and
// returns its id.
func (f *Salesforce) AddPerson(object, phone string, modified time.Time) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &sfRecord{object: object, id: f.newID(object), fields: map[string]any{"Phone": phone}, modified: modified}
	f.people = append(f.people, r)
	return r.id
}

// Duplicate stores a second record of object holding external id key, so
// that an upsert of key matches several records.
func (f *Salesforce) Duplicate(object, key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.insert(object, f.extIDs[object], key, map[string]any{})
}

// Records returns the ids of the records whose external-id field holds
// key, over all objects.
func (f *Salesforce) Records(key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, object := range slices.Sorted(maps.Keys(f.records)) {
		for _, r := range f.records[object][key] {
			ids = append(ids, r.id)
		}
	}
	return ids
}

// Record returns the fields of the record with id, or nil.
func (f *Salesforce) Record(id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.byID[id]; ok {
		return maps.Clone(r.fields)
	}
	return nil
}

// APICalls counts the data API requests received: what an org's daily
// limit counts. Token requests are not counted.
func (f *Salesforce) APICalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Requests returns every data API request received, in order.
func (f *Salesforce) Requests() []SalesforceRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// newID returns an 18-character id with object's key prefix. The suffix
// has a bit per upper-case letter of each 5 characters: past the prefix
// there are digits only, so it is "AAA", or "EAA" after Lead's "00Q" and
// Task's "00T".
func (f *Salesforce) newID(object string) string {
	f.seq++
	switch object {
	case "Task":
		return fmt.Sprintf("00T%012dEAA", f.seq)
	case "Lead":
		return fmt.Sprintf("00Q%012dEAA", f.seq)
	case "Contact":
		return fmt.Sprintf("003%012dAAA", f.seq)
	case "Account":
		return fmt.Sprintf("001%012dAAA", f.seq)
	}
	return fmt.Sprintf("a00%012dAAA", f.seq)
}

func (f *Salesforce) insert(object, extField, key string, fields map[string]any) *sfRecord {
	r := &sfRecord{object: object, id: f.newID(object), fields: maps.Clone(fields)}
	r.fields[extField] = key
	if f.records[object] == nil {
		f.records[object] = map[string][]*sfRecord{}
	}
	f.records[object][key] = append(f.records[object][key], r)
	f.byID[r.id] = r
	return r
}

// sfError is one element of Salesforce's error array.
type sfError struct {
	Message    string   `json:"message"`
	ErrorCode  string   `json:"errorCode,omitempty"`
	StatusCode string   `json:"statusCode,omitempty"`
	Fields     []string `json:"fields,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeSFError(w http.ResponseWriter, status int, code, message string, fields ...string) {
	writeJSON(w, status, []sfError{{Message: message, ErrorCode: code, Fields: fields}})
}

// token is the OAuth 2.0 token endpoint.
func (f *Salesforce) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request", "error_description": "bad form"})
		return
	}
	fail := func(code, desc string) {
		writeJSON(w, 400, map[string]string{"error": code, "error_description": desc})
	}
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		if u, p, ok := r.BasicAuth(); ok {
			id, secret = u, p
		}
		if id != f.ClientID || secret != f.ClientSecret {
			fail("invalid_client", "invalid client credentials")
			return
		}
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		if err := f.checkJWT(r.PostForm.Get("assertion")); err != "" {
			fail("invalid_grant", err)
			return
		}
	default:
		fail("unsupported_grant_type", "grant type not supported")
		return
	}
	writeJSON(w, 200, map[string]string{
		"access_token": f.Issue(),
		"instance_url": f.URL,
		"id":           f.URL + "/id/00D000000000001AAA/005000000000001AAA",
		"token_type":   "Bearer",
		"issued_at":    fmt.Sprint(time.Now().UnixMilli()),
		"signature":    "fake",
	})
}

// checkJWT verifies an RS256 assertion as Salesforce does, and returns
// why it is refused, or "".
func (f *Salesforce) checkJWT(assertion string) string {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return "invalid assertion"
	}
	var header struct{ Alg string }
	var claims struct {
		Iss, Sub, Aud string
		Exp           int64
	}
	for i, v := range []any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(raw, v) != nil {
			return "invalid assertion"
		}
	}
	f.mu.Lock()
	key, aud := f.jwtKeys[claims.Sub], f.audience
	f.mu.Unlock()
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch {
	case header.Alg != "RS256":
		return "invalid assertion algorithm"
	case key == nil:
		return "user hasn't approved this consumer"
	case err != nil || rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig) != nil:
		return "invalid signature"
	case claims.Iss != f.ClientID:
		return "invalid client_id"
	case claims.Aud != aud:
		return "audience is invalid"
	case claims.Exp < time.Now().Unix():
		return "expired authorization code"
	}
	return ""
}

var dataVersion = regexp.MustCompile(`^v\d+\.\d$`)

// data serves the REST data API: it counts the call against the daily
// limit, checks the session, and routes.
func (f *Salesforce) data(w http.ResponseWriter, r *http.Request) {
	version := r.PathValue("version")
	body, _ := io.ReadAll(r.Body)
	path := strings.TrimPrefix(r.URL.Path, "/services/data/"+version)
	f.mu.Lock()
	f.calls++
	f.used++
	f.requests = append(f.requests, SalesforceRequest{Method: r.Method, Path: path, Query: r.URL.Query(), Body: body})
	used, max := f.used, f.max
	f.mu.Unlock()
	w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", used, max))

	switch {
	case !dataVersion.MatchString(version):
		writeSFError(w, 404, "NOT_FOUND", "The requested resource does not exist")
		return
	case !f.Valid(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")):
		writeSFError(w, 401, "INVALID_SESSION_ID", "Session expired or invalid")
		return
	case used > max:
		writeSFError(w, 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
		return
	}
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case r.Method == http.MethodPatch && len(segs) == 4 && segs[0] == "sobjects":
		f.upsert(w, r, segs[1], segs[2], segs[3], body)
	case r.Method == http.MethodPatch && len(segs) == 4 && segs[0] == "composite" && segs[1] == "sobjects":
		f.upsertCollection(w, r, segs[2], segs[3], body)
	case r.Method == http.MethodGet && path == "/search":
		f.search(w, r)
	case r.Method == http.MethodGet && len(segs) == 3 && segs[0] == "sobjects" && segs[2] == "describe":
		f.describe(w, segs[1])
	default:
		writeSFError(w, 404, "NOT_FOUND", "The requested resource does not exist")
	}
}

// fault answers a scripted fault, and reports whether it did. write
// stores the record, for the faults that happen after the CRM wrote it.
func (f *Salesforce) fault(w http.ResponseWriter, r *http.Request, write func()) bool {
	ft, ok := f.Next()
	if !ok {
		return false
	}
	switch ft.Kind {
	case Validation:
		writeSFError(w, 400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", ft.Message, "Subject")
	case Throttled:
		RetryAfterHeader(w.Header(), ft.RetryAfter)
		writeSFError(w, 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
	case ServerError:
		writeSFError(w, 503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
	case Timeout:
		Hang(r)
	case ResetAfterWrite:
		write()
		Reset(w)
	case Malformed:
		write()
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, ft.Message)
	}
	return true
}

// taskLimits are the Task string fields' lengths (crm-apis.md 1.3).
var taskLimits = map[string]int{
	"Subject": 255, "CallObject": 255, "CallDisposition": 255, "CallType": 40, "Description": 32000,
}

// taskFields are the Task fields the fake knows, with their describe
// types; custom fields end in __c.
var taskFields = map[string]string{
	"Subject": "combobox", "TaskSubtype": "picklist", "CallType": "picklist", "CallDurationInSeconds": "int",
	"CallObject": "string", "CallDisposition": "string", "Description": "textarea", "ActivityDate": "date",
	"Status": "picklist", "Priority": "picklist", "WhoId": "reference", "WhatId": "reference", "OwnerId": "reference",
}

var idShape = regexp.MustCompile(`^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$`)

// check validates a record's fields as Salesforce would for object, and
// returns the first error, or nil.
func (f *Salesforce) check(object string, fields map[string]any, update bool) *sfError {
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		v := fields[name]
		if object == "Task" && taskFields[name] == "" && !strings.HasSuffix(name, "__c") {
			return &sfError{ErrorCode: "INVALID_FIELD", Message: fmt.Sprintf("No such column '%s' on sobject of type Task", name)}
		}
		s, isString := v.(string)
		if n, ok := taskLimits[name]; ok && object == "Task" && isString && len([]rune(s)) > n {
			return &sfError{ErrorCode: "STRING_TOO_LONG", Message: fmt.Sprintf("%s: data value too large: %.20s... (max length=%d)", name, s, n), Fields: []string{name}}
		}
		switch name {
		case "WhoId", "WhatId", "OwnerId":
			if !isString || !idShape.MatchString(s) {
				return &sfError{ErrorCode: "MALFORMED_ID", Message: fmt.Sprintf("%s: id value of incorrect type: %v", name, v), Fields: []string{name}}
			}
			if name == "WhoId" && !strings.HasPrefix(s, "003") && !strings.HasPrefix(s, "00Q") {
				return &sfError{ErrorCode: "FIELD_INTEGRITY_EXCEPTION", Message: "Name ID: id value of incorrect type: " + s, Fields: []string{name}}
			}
		case "CallDurationInSeconds":
			if n, ok := v.(float64); !ok || n != float64(int64(n)) {
				return &sfError{ErrorCode: "JSON_PARSER_ERROR", Message: fmt.Sprintf("Cannot deserialize instance of int from %v", v)}
			}
		case "TaskSubtype":
			if update {
				return &sfError{ErrorCode: "INVALID_FIELD_FOR_INSERT_UPDATE", Message: "Unable to create/update fields: TaskSubtype. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", Fields: []string{name}}
			}
		}
	}
	return nil
}

// write upserts one record by external id and returns its id, whether it
// was created, the ids when several match, or an error.
func (f *Salesforce) write(object, extField, key string, fields map[string]any) (id string, created bool, several []string, e *sfError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.extIDs[object] != extField {
		return "", false, nil, &sfError{ErrorCode: "NOT_FOUND", Message: fmt.Sprintf("Provided external ID field does not exist or is not accessible: %s", extField)}
	}
	if msg, ok := f.rejects[key]; ok {
		return "", false, nil, &sfError{ErrorCode: "FIELD_CUSTOM_VALIDATION_EXCEPTION", Message: msg}
	}
	matches := f.records[object][key]
	if len(matches) > 1 {
		for _, r := range matches {
			several = append(several, r.id)
		}
		return "", false, several, nil
	}
	if e := f.check(object, fields, len(matches) == 1); e != nil {
		return "", false, nil, e
	}
	if len(matches) == 1 {
		maps.Copy(matches[0].fields, fields)
		return matches[0].id, false, nil, nil
	}
	return f.insert(object, extField, key, fields).id, true, nil, nil
}

// saveResult is a SaveResult / UpsertResult.
type saveResult struct {
	ID      string    `json:"id,omitempty"`
	Success bool      `json:"success"`
	Errors  []sfError `json:"errors"`
	Created *bool     `json:"created,omitempty"`
}

// upsert is PATCH /sobjects/{object}/{field}/{key}.
func (f *Salesforce) upsert(w http.ResponseWriter, r *http.Request, object, extField, key string, body []byte) {
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		writeSFError(w, 400, "JSON_PARSER_ERROR", "Unexpected character in the request body")
		return
	}
	if _, ok := fields[extField]; ok {
		writeSFError(w, 400, "INVALID_FIELD", fmt.Sprintf("The external ID field %s must not be in the request body of an upsert by that field", extField), extField)
		return
	}
	if f.fault(w, r, func() { f.write(object, extField, key, fields) }) {
		return
	}
	id, created, several, e := f.write(object, extField, key, fields)
	switch {
	case e != nil:
		writeSFError(w, map[bool]int{true: 404, false: 400}[e.ErrorCode == "NOT_FOUND"], e.ErrorCode, e.Message, e.Fields...)
	case several != nil:
		var urls []string
		for _, id := range several {
			urls = append(urls, "/services/data/"+r.PathValue("version")+"/sobjects/"+object+"/"+id)
		}
		writeJSON(w, http.StatusMultipleChoices, urls)
	default:
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		writeJSON(w, status, saveResult{ID: id, Success: true, Errors: []sfError{}, Created: &created})
	}
}

// upsertCollection is PATCH /composite/sobjects/{object}/{field}: up to
// 200 records, each with its external id in its body, each answered on
// its own (allOrNone false).
func (f *Salesforce) upsertCollection(w http.ResponseWriter, r *http.Request, object, extField string, body []byte) {
	var req struct {
		AllOrNone bool             `json:"allOrNone"`
		Records   []map[string]any `json:"records"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeSFError(w, 400, "JSON_PARSER_ERROR", "Unexpected character in the request body")
		return
	}
	if len(req.Records) > 200 {
		writeSFError(w, 400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
		return
	}
	if req.AllOrNone {
		writeSFError(w, 400, "INVALID_FIELD", "the fake supports allOrNone false only")
		return
	}
	writeAll := func() []saveResult {
		results := make([]saveResult, len(req.Records))
		for i, rec := range req.Records {
			key, _ := rec[extField].(string)
			fields := maps.Clone(rec)
			delete(fields, extField)
			delete(fields, "attributes")
			var id string
			var created bool
			var several []string
			e := &sfError{StatusCode: "MISSING_ARGUMENT", Message: extField + " not specified", Fields: []string{extField}}
			if key != "" {
				id, created, several, e = f.write(object, extField, key, fields)
			}
			switch {
			case e != nil:
				code := e.ErrorCode
				e.ErrorCode, e.StatusCode = "", code
				results[i] = saveResult{Errors: []sfError{*e}}
			case several != nil:
				results[i] = saveResult{Errors: []sfError{{StatusCode: "DUPLICATE_EXTERNAL_ID", Message: "Duplicate external id specified: " + key, Fields: []string{extField}}}}
			default:
				results[i] = saveResult{ID: id, Success: true, Errors: []sfError{}, Created: &created}
			}
		}
		return results
	}
	if f.fault(w, r, func() { writeAll() }) {
		return
	}
	writeJSON(w, http.StatusOK, writeAll())
}

// describe is GET /sobjects/{object}/describe, for Task and the objects
// with an external-id field: the object's name and rights and its fields'
// names, types, lengths and external-id and unique flags.
func (f *Salesforce) describe(w http.ResponseWriter, object string) {
	f.mu.Lock()
	ext, ok := f.extIDs[object]
	f.mu.Unlock()
	if !ok && object != "Task" {
		writeSFError(w, 404, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	type field struct {
		Name       string `json:"name"`
		Type       string `json:"type"`
		Length     int    `json:"length"`
		ExternalID bool   `json:"externalId"`
		Unique     bool   `json:"unique"`
		Createable bool   `json:"createable"`
		Updateable bool   `json:"updateable"`
	}
	var fields []field
	if object == "Task" {
		for _, name := range slices.Sorted(maps.Keys(taskFields)) {
			fields = append(fields, field{Name: name, Type: taskFields[name], Length: taskLimits[name], Createable: true, Updateable: name != "TaskSubtype"})
		}
	}
	if ext != "" {
		fields = append(fields, field{Name: ext, Type: "string", Length: 255, ExternalID: true, Unique: true, Createable: true, Updateable: true})
	}
	writeJSON(w, 200, map[string]any{"name": object, "createable": true, "updateable": true, "fields": fields})
}

// search is GET /search?q=FIND {…} IN PHONE FIELDS RETURNING …: it
// matches each term of the FIND ("a OR b"), as its digits, against the
// digits of the people's phones.
func (f *Salesforce) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	m := regexp.MustCompile(`^FIND \{([^}]*)\} IN PHONE FIELDS RETURNING (.+)$`).FindStringSubmatch(q)
	if m == nil {
		writeSFError(w, 400, "MALFORMED_SEARCH", "the fake understands FIND {number} IN PHONE FIELDS RETURNING ... only")
		return
	}
	if f.fault(w, r, func() {}) {
		return
	}
	var terms []string
	for _, term := range strings.Split(m[1], " OR ") {
		if d := digitsOf(term); d != "" {
			terms = append(terms, d)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	type hit struct {
		Attributes       map[string]string `json:"attributes"`
		ID               string            `json:"Id"`
		LastModifiedDate string            `json:"LastModifiedDate"`
	}
	hits := []hit{}
	for _, p := range f.people {
		if slices.Contains(terms, digitsOf(p.fields["Phone"].(string))) && strings.Contains(m[2], p.object+"(") {
			hits = append(hits, hit{
				Attributes:       map[string]string{"type": p.object, "url": "/services/data/" + r.PathValue("version") + "/sobjects/" + p.object + "/" + p.id},
				ID:               p.id,
				LastModifiedDate: p.modified.UTC().Format("2006-01-02T15:04:05.000+0000"),
			})
		}
	}
	writeJSON(w, 200, map[string]any{"searchRecords": hits})
}

func digitsOf(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}
