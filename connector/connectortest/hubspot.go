package connectortest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// HubSpotOptions configures a HubSpot fake; the zero value is usable.
type HubSpotOptions struct {
	// ObjectsPath and AssociationsPath are where the fake serves CRM
	// objects and v4 associations; defaults "/crm/v3/objects" and
	// "/crm/v4/associations" (HubSpot also serves date-versioned paths
	// such as "/crm/objects/2026-03").
	ObjectsPath      string
	AssociationsPath string
	// IDProperty is the calls property with a unique value; default
	// "ctibridge_key".
	IDProperty string
	// PrivateAppToken is a static token the fake accepts, if set.
	PrivateAppToken string
	// ClientID, ClientSecret and RefreshToken are what the token endpoint
	// (POST /oauth/v1/token) accepts for the refresh_token grant.
	ClientID, ClientSecret, RefreshToken string
	// TokenLifetime is the expires_in of the access tokens it issues;
	// default 30 minutes, as HubSpot's.
	TokenLifetime time.Duration
}

// HubSpotCall is a call the fake holds.
type HubSpotCall struct {
	ID         string
	Properties map[string]string
	// Links are the records the call is associated with, as
	// "objectType/id/associationTypeId".
	Links []string
}

// HubSpot is a fake HubSpot account on loopback that behaves as HubSpot's
// documentation says (crm-apis.md §2): bearer auth with a private app
// token or OAuth access tokens from the refresh_token grant (401
// EXPIRED_AUTHENTICATION once expired); calls created with both
// "properties" (text values only, hs_timestamp required) and
// "associations" (400 without them), answered 201; a unique-value call
// property that refuses a second call with the same value and that
// batch/upsert uses as idProperty (200, "new" per record, 207 with
// per-record errors); v4 batch association create; contact search;
// HubSpot's JSON error shape and rate-limit headers; reading calls (GET
// calls?limit=N) and the calls properties (GET /crm/v3/properties/calls),
// for `ctibridge targets check` and `targets describe`.
//
// What HubSpot does not document, the fake assumes: a create whose unique
// value exists is answered 409 CONFLICT, as HubSpot does for a contact's
// email.
//
// It implements CRM, so a HubSpot target runs RunTargetSuite against it;
// FailNext applies to the next create, batch/upsert or association
// request, and FailNextStatus scripts HubSpot's own answers (423, 477, a
// 429 with its headers) to the next API request of any kind.
type HubSpot struct {
	*httptest.Server
	Faults
	TokenStore

	opts HubSpotOptions

	mu       sync.Mutex
	calls    map[string]*HubSpotCall
	byKey    map[string][]string        // unique value → call ids
	records  map[string]map[string]bool // object type → ids of the records calls can link to
	contacts []hubspotContact
	nextID   int
	canned   []cannedAnswer
	requests int // API requests, not counting the token endpoint
}

type hubspotContact struct {
	id           string
	props        map[string]string
	lastModified time.Time
}

type cannedAnswer struct {
	path   string // the requests it answers: paths that contain it
	status int
	header http.Header
	body   string
}

// NewHubSpot starts a HubSpot fake, closed when the test ends.
func NewHubSpot(tb testing.TB, opts HubSpotOptions) *HubSpot {
	if opts.ObjectsPath == "" {
		opts.ObjectsPath = "/crm/v3/objects"
	}
	if opts.AssociationsPath == "" {
		opts.AssociationsPath = "/crm/v4/associations"
	}
	if opts.IDProperty == "" {
		opts.IDProperty = "ctibridge_key"
	}
	if opts.TokenLifetime == 0 {
		opts.TokenLifetime = 30 * time.Minute
	}
	h := &HubSpot{
		opts:    opts,
		calls:   map[string]*HubSpotCall{},
		byKey:   map[string][]string{},
		records: map[string]map[string]bool{},
		nextID:  1000,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/v1/token", h.token)
	mux.HandleFunc("POST "+opts.ObjectsPath+"/calls", h.api(h.write(h.create)))
	mux.HandleFunc("POST "+opts.ObjectsPath+"/calls/batch/upsert", h.api(h.write(h.upsert)))
	mux.HandleFunc("POST "+opts.AssociationsPath+"/calls/{toType}/batch/create", h.api(h.write(h.associate)))
	mux.HandleFunc("POST "+opts.ObjectsPath+"/contacts/search", h.api(h.search))
	mux.HandleFunc("GET "+opts.ObjectsPath+"/calls", h.api(h.listCalls))
	mux.HandleFunc("GET "+propertiesPath(opts.ObjectsPath)+"/calls", h.api(h.properties))
	h.Server = httptest.NewServer(mux)
	tb.Cleanup(h.Close)
	return h
}

// AddRecord adds a record calls can be linked to, of objectType
// ("contacts", "companies", "deals", "tickets"), and returns its id. A
// contact's properties, such as phone, are what contact search reads.
func (h *HubSpot) AddRecord(objectType string, props map[string]string, lastModified time.Time) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.newID()
	if h.records[objectType] == nil {
		h.records[objectType] = map[string]bool{}
	}
	h.records[objectType][id] = true
	if objectType == "contacts" {
		h.contacts = append(h.contacts, hubspotContact{id: id, props: props, lastModified: lastModified})
	}
	return id
}

// Records returns the ids of the calls whose unique property holds key.
func (h *HubSpot) Records(key string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.byKey[key])
}

// Calls returns every call the fake holds, by id.
func (h *HubSpot) Calls() map[string]HubSpotCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := make(map[string]HubSpotCall, len(h.calls))
	for id, c := range h.calls {
		m[id] = HubSpotCall{ID: c.ID, Properties: maps.Clone(c.Properties), Links: slices.Clone(c.Links)}
	}
	return m
}

// APIRequests counts the API requests received, not counting the token
// endpoint: what HubSpot's rate limits count.
func (h *HubSpot) APIRequests() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests
}

// FailNextStatus makes the fake answer the next API request (create,
// batch/upsert, association, search) with status, header and a HubSpot
// error body, before any Fault queued with FailNext. See HubSpotLocked,
// HubSpotMigrating and HubSpotRateLimited.
func (h *HubSpot) FailNextStatus(status int, header http.Header, body string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.canned = append(h.canned, cannedAnswer{"", status, header, body})
}

// FailNextStatusOn is FailNextStatus for the next request whose path
// contains path, such as "/batch/create" for the association requests.
func (h *HubSpot) FailNextStatusOn(path string, status int, header http.Header, body string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.canned = append(h.canned, cannedAnswer{path, status, header, body})
}

// HubSpotError is HubSpot's JSON error body.
func HubSpotError(category, message string) string {
	b, _ := json.Marshal(map[string]any{
		"status": "error", "message": message, "correlationId": correlationID(), "category": category,
	})
	return string(b)
}

// HubSpotRateLimited returns HubSpot's 429 for policy
// ("TEN_SECONDLY_ROLLING" or "DAILY"), with its rate-limit headers and,
// when retryAfter is not 0, a Retry-After.
func HubSpotRateLimited(policy string, retryAfter time.Duration) (int, http.Header, string) {
	h := http.Header{}
	rateLimitHeaders(h, 0, 0)
	RetryAfterHeader(h, retryAfter)
	limit := "ten_secondly_rolling"
	if policy == "DAILY" {
		limit = "daily"
	}
	b, _ := json.Marshal(map[string]any{
		"status": "error", "message": "You have reached your " + limit + " limit.", "errorType": "RATE_LIMIT",
		"correlationId": correlationID(), "policyName": policy,
	})
	return http.StatusTooManyRequests, h, string(b)
}

// HubSpotLocked returns HubSpot's 423 Locked.
func HubSpotLocked() (int, http.Header, string) {
	return http.StatusLocked, nil, HubSpotError("LOCKED", "The resource is locked; retry in about 2 seconds.")
}

// HubSpotMigrating returns HubSpot's 477 (the account is being migrated)
// with a Retry-After.
func HubSpotMigrating(retryAfter time.Duration) (int, http.Header, string) {
	h := http.Header{}
	RetryAfterHeader(h, retryAfter)
	return 477, h, HubSpotError("MIGRATION_IN_PROGRESS", "This account is being migrated between data centers.")
}

// token serves the refresh_token grant.
func (h *HubSpot) token(w http.ResponseWriter, r *http.Request) {
	fail := func(status, message string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"status": status, "message": message, "correlationId": correlationID()})
	}
	switch {
	case r.FormValue("grant_type") != "refresh_token":
		fail("BAD_GRANT_TYPE", "grant_type must be refresh_token")
	case h.opts.ClientID == "" || r.FormValue("client_id") != h.opts.ClientID:
		fail("BAD_CLIENT_ID", "missing or unknown client id")
	case r.FormValue("client_secret") != h.opts.ClientSecret:
		fail("BAD_CLIENT_SECRET", "missing or invalid client secret")
	case r.FormValue("refresh_token") != h.opts.RefreshToken:
		fail("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"token_type": "bearer", "refresh_token": h.opts.RefreshToken,
			"access_token": h.Issue(), "expires_in": int(h.opts.TokenLifetime / time.Second),
		})
	}
}

// api checks the bearer token, counts the request and adds HubSpot's
// rate-limit headers (which search answers do not carry).
func (h *HubSpot) api(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.requests++
		n := h.requests
		h.mu.Unlock()
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch {
		case tok != "" && (tok == h.opts.PrivateAppToken || h.Valid(tok)):
		case tok != "" && slices.Contains(h.Tokens(), tok):
			hubspotAnswer(w, http.StatusUnauthorized, nil, HubSpotError("EXPIRED_AUTHENTICATION",
				"The OAuth token used to make this call expired 0 second(s) ago."))
			return
		default:
			hubspotAnswer(w, http.StatusUnauthorized, nil, HubSpotError("INVALID_AUTHENTICATION",
				"Authentication credentials not found. This API supports OAuth 2.0 authentication."))
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/search") {
			rateLimitHeaders(w.Header(), n, n)
		}
		h.mu.Lock()
		var canned *cannedAnswer
		for i, c := range h.canned {
			if strings.Contains(r.URL.Path, c.path) {
				canned = &c
				h.canned = slices.Delete(h.canned, i, i+1)
				break
			}
		}
		h.mu.Unlock()
		if canned != nil {
			hubspotAnswer(w, canned.status, canned.header, canned.body)
			return
		}
		next(w, r)
	}
}

// write applies a scripted failure, if any, to a request that writes.
func (h *HubSpot) write(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, failing := h.Next()
		if !failing {
			next(w, r)
			return
		}
		switch f.Kind {
		case Validation:
			hubspotAnswer(w, http.StatusBadRequest, nil, HubSpotError("VALIDATION_ERROR", f.Message))
		case Throttled:
			status, header, body := HubSpotRateLimited("TEN_SECONDLY_ROLLING", f.RetryAfter)
			hubspotAnswer(w, status, header, body)
		case ServerError:
			hubspotAnswer(w, http.StatusBadGateway, nil, HubSpotError("INTERNAL_ERROR", "Bad gateway"))
		case Timeout:
			Hang(r)
		case ResetAfterWrite, Malformed:
			rec := httptest.NewRecorder()
			next(rec, r)
			if f.Kind == ResetAfterWrite {
				Reset(w)
				return
			}
			w.WriteHeader(rec.Code)
			io.WriteString(w, f.Message)
		}
	}
}

func hubspotAnswer(w http.ResponseWriter, status int, header http.Header, body string) {
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func hubspotJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	hubspotAnswer(w, status, nil, string(b))
}

func badRequest(w http.ResponseWriter, message string) {
	hubspotAnswer(w, http.StatusBadRequest, nil, HubSpotError("VALIDATION_ERROR", message))
}

// rateLimitHeaders sets HubSpot's rate-limit headers for a private app on
// Free/Starter (100 per 10 s, 250,000 a day) after used requests.
func rateLimitHeaders(h http.Header, usedDaily, used int) {
	h.Set("X-HubSpot-RateLimit-Daily", "250000")
	h.Set("X-HubSpot-RateLimit-Daily-Remaining", strconv.Itoa(max(250000-usedDaily, 0)))
	h.Set("X-HubSpot-RateLimit-Max", "100")
	h.Set("X-HubSpot-RateLimit-Remaining", strconv.Itoa(max(100-used%100, 0)))
	h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
}

// decodeBatch reads a batch request into v and checks that it has 1 to
// 100 inputs, as counted by n; it answers 400 and returns false when not.
func decodeBatch(w http.ResponseWriter, r *http.Request, v any, n func() int) bool {
	if err := decodeStrict(r, v); err != nil {
		badRequest(w, "Invalid input JSON: "+err.Error())
		return false
	}
	if n() == 0 || n() > 100 {
		badRequest(w, fmt.Sprintf("inputs: %d given, 1 to 100 allowed", n()))
		return false
	}
	return true
}

// decodeStrict reads a JSON body into v, refusing unknown members.
func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

type hubspotAssoc struct {
	To struct {
		ID string `json:"id"`
	} `json:"to"`
	Types []struct {
		Category string `json:"associationCategory"`
		TypeID   int    `json:"associationTypeId"`
	} `json:"types"`
}

// callLinkTypes are the HUBSPOT_DEFINED association types of a call.
var callLinkTypes = map[int]string{194: "contacts", 182: "companies", 206: "deals", 220: "tickets"}

func (h *HubSpot) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Properties   map[string]any  `json:"properties"`
		Associations *[]hubspotAssoc `json:"associations"`
	}
	if err := decodeStrict(r, &in); err != nil {
		badRequest(w, "Invalid input JSON: "+err.Error())
		return
	}
	if in.Associations == nil {
		badRequest(w, "Invalid input JSON on line 1: associations is required")
		return
	}
	props, msg := h.callProperties(in.Properties)
	if msg != "" {
		badRequest(w, msg)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var links []string
	for _, a := range *in.Associations {
		if len(a.Types) != 1 {
			badRequest(w, "each association needs one type")
			return
		}
		link, msg := h.link(a.To.ID, a.Types[0].Category, a.Types[0].TypeID, "")
		if msg != "" {
			badRequest(w, msg)
			return
		}
		links = append(links, link)
	}
	if key := props[h.opts.IDProperty]; key != "" && len(h.byKey[key]) > 0 {
		hubspotAnswer(w, http.StatusConflict, nil, HubSpotError("CONFLICT",
			fmt.Sprintf("A call with %s %q already exists. Existing ID: %s", h.opts.IDProperty, key, h.byKey[key][0])))
		return
	}
	c := h.store(props)
	c.Links = links
	hubspotJSON(w, http.StatusCreated, simpleObject(c, false))
}

// callProperties checks a call's properties: text values, hs_timestamp.
func (h *HubSpot) callProperties(in map[string]any) (map[string]string, string) {
	if in == nil {
		return nil, "Invalid input JSON on line 1: properties is required"
	}
	props := make(map[string]string, len(in))
	for k, v := range in {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Sprintf("Property values were not valid: %s must be a string", k)
		}
		props[k] = s
	}
	if props["hs_timestamp"] == "" {
		return nil, "Property values were not valid: hs_timestamp is required"
	}
	return props, ""
}

// link checks one association of a call, returning its description or
// HubSpot's message. toType, when set, is the object type of the path.
// Called with h.mu held.
func (h *HubSpot) link(toID, category string, typeID int, toType string) (string, string) {
	objectType := callLinkTypes[typeID]
	switch {
	case category != "HUBSPOT_DEFINED" || objectType == "":
		return "", fmt.Sprintf("association type %s/%d is not a call association type", category, typeID)
	case toType != "" && toType != objectType:
		return "", fmt.Sprintf("association type %d links calls to %s, not %s", typeID, objectType, toType)
	case !h.records[objectType][toID]:
		return "", fmt.Sprintf("No %s with ID %s exist", objectType, toID)
	}
	return fmt.Sprintf("%s/%s/%d", objectType, toID, typeID), ""
}

// store adds a call. Called with h.mu held.
func (h *HubSpot) store(props map[string]string) *HubSpotCall {
	c := &HubSpotCall{ID: h.newID(), Properties: props}
	h.calls[c.ID] = c
	if key := props[h.opts.IDProperty]; key != "" {
		h.byKey[key] = append(h.byKey[key], c.ID)
	}
	return c
}

func (h *HubSpot) newID() string {
	h.nextID++
	return strconv.Itoa(h.nextID)
}

func simpleObject(c *HubSpotCall, isNew bool) map[string]any {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	return map[string]any{"id": c.ID, "properties": c.Properties, "createdAt": now, "updatedAt": now, "archived": false, "new": isNew}
}

// batchOutcome answers a batch: 200 when every input succeeded, else 207
// with the errors.
func batchOutcome(w http.ResponseWriter, results, errs []map[string]any) {
	status := http.StatusOK
	out := map[string]any{"status": "COMPLETE", "results": results, "startedAt": time.Now().UTC(), "completedAt": time.Now().UTC()}
	if len(errs) > 0 {
		status = http.StatusMultiStatus
		out["errors"], out["numErrors"] = errs, len(errs)
	}
	hubspotJSON(w, status, out)
}

func itemError(category, message, trace string) map[string]any {
	e := map[string]any{"status": "error", "category": category, "message": message, "context": map[string]any{}}
	if trace != "" {
		e["objectWriteTraceId"] = trace
	}
	return e
}

func (h *HubSpot) upsert(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Inputs []struct {
			IDProperty         string         `json:"idProperty"`
			ID                 string         `json:"id"`
			Properties         map[string]any `json:"properties"`
			ObjectWriteTraceID string         `json:"objectWriteTraceId"`
		} `json:"inputs"`
	}
	if !decodeBatch(w, r, &in, func() int { return len(in.Inputs) }) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var results, errs []map[string]any
	for _, inp := range in.Inputs {
		if inp.IDProperty != h.opts.IDProperty {
			badRequest(w, fmt.Sprintf("Unable to perform update/upsert by non-unique 0-48 property %s", inp.IDProperty))
			return
		}
		props, msg := h.callProperties(inp.Properties)
		if msg != "" {
			errs = append(errs, itemError("VALIDATION_ERROR", msg, inp.ObjectWriteTraceID))
			continue
		}
		props[h.opts.IDProperty] = inp.ID
		var res map[string]any
		if ids := h.byKey[inp.ID]; len(ids) > 0 {
			c := h.calls[ids[0]]
			for k, v := range props {
				c.Properties[k] = v
			}
			res = simpleObject(c, false)
		} else {
			res = simpleObject(h.store(props), true)
		}
		res["objectWriteTraceId"] = inp.ObjectWriteTraceID
		results = append(results, res)
	}
	batchOutcome(w, results, errs)
}

func (h *HubSpot) associate(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Inputs []struct {
			From struct {
				ID string `json:"id"`
			} `json:"from"`
			hubspotAssoc
		} `json:"inputs"`
	}
	if !decodeBatch(w, r, &in, func() int { return len(in.Inputs) }) {
		return
	}
	toType := r.PathValue("toType")
	h.mu.Lock()
	defer h.mu.Unlock()
	var results, errs []map[string]any
	for _, inp := range in.Inputs {
		c := h.calls[inp.From.ID]
		if c == nil {
			errs = append(errs, itemError("OBJECT_NOT_FOUND", "No calls with ID "+inp.From.ID+" exist", ""))
			continue
		}
		if len(inp.Types) != 1 {
			errs = append(errs, itemError("VALIDATION_ERROR", "each association needs one type", ""))
			continue
		}
		link, msg := h.link(inp.To.ID, inp.Types[0].Category, inp.Types[0].TypeID, toType)
		if msg != "" {
			errs = append(errs, itemError("VALIDATION_ERROR", msg, ""))
			continue
		}
		if !slices.Contains(c.Links, link) {
			c.Links = append(c.Links, link)
		}
		results = append(results, map[string]any{
			"fromObjectTypeId": "0-48", "fromObjectId": c.ID, "toObjectId": inp.To.ID,
			"labels": []string{},
		})
	}
	batchOutcome(w, results, errs)
}

// search serves contact search: filter groups of EQ filters (any group
// may match, every filter of a group must), sorted by one property.
func (h *HubSpot) search(w http.ResponseWriter, r *http.Request) {
	var in struct {
		FilterGroups []struct {
			Filters []struct {
				PropertyName string `json:"propertyName"`
				Operator     string `json:"operator"`
				Value        string `json:"value"`
			} `json:"filters"`
		} `json:"filterGroups"`
		Sorts []struct {
			PropertyName string `json:"propertyName"`
			Direction    string `json:"direction"`
		} `json:"sorts"`
		Properties []string `json:"properties"`
		Limit      int      `json:"limit"`
		After      string   `json:"after"`
	}
	if err := decodeStrict(r, &in); err != nil {
		badRequest(w, "Invalid input JSON: "+err.Error())
		return
	}
	if len(in.FilterGroups) > 6 || in.Limit > 200 {
		badRequest(w, "at most 6 filter groups and a limit of 200")
		return
	}
	h.mu.Lock()
	var found []hubspotContact
	for _, c := range h.contacts {
		for _, g := range in.FilterGroups {
			all := len(g.Filters) > 0
			for _, f := range g.Filters {
				all = all && f.Operator == "EQ" && c.props[f.PropertyName] == f.Value
			}
			if all {
				found = append(found, c)
				break
			}
		}
	}
	h.mu.Unlock()
	if len(in.Sorts) > 0 {
		s := in.Sorts[0]
		slices.SortStableFunc(found, func(a, b hubspotContact) int {
			var c int
			switch s.PropertyName {
			case "lastmodifieddate":
				c = a.lastModified.Compare(b.lastModified)
			case "hs_object_id":
				ai, _ := strconv.Atoi(a.id)
				bi, _ := strconv.Atoi(b.id)
				c = ai - bi
			}
			if s.Direction == "DESCENDING" {
				c = -c
			}
			return c
		})
	}
	total := len(found)
	if in.Limit > 0 && len(found) > in.Limit {
		found = found[:in.Limit]
	}
	results := make([]map[string]any, len(found))
	for i, c := range found {
		results[i] = map[string]any{"id": c.id, "properties": map[string]string{"hs_object_id": c.id}, "archived": false}
	}
	hubspotJSON(w, http.StatusOK, map[string]any{"total": total, "results": results})
}

func correlationID() string {
	b := make([]byte, 16)
	rand.Read(b)
	s := hex.EncodeToString(b)
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}
