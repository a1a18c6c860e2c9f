// Package dynamics is the Microsoft Dynamics 365 (Dataverse) target: it
// writes each activity record as an activity row, a phone call by default,
// through the Dataverse Web API, authenticated as an Entra ID application
// with the client credentials grant.
//
// A record is written exactly once however often it is delivered: its id
// is ours, a UUIDv5 of the idempotency key, and the create is
// "PATCH {set}({id})" with If-None-Match: *, which Dataverse answers 412 for
// an id it has. Completing the activity (statecode and statuscode, which
// Dataverse refuses on create and after which the row is read-only) is a
// second step; a delivery that finds the row reads its state and completes
// it only if that has not been done, so a crash between the steps is
// resumed by the next attempt.
//
// DeliverBatch does the same for up to 1,000 activities per $batch call.
//
// With MatchRules, an activity that names no who is linked to the
// contact, or else the account, whose phone column holds the customer's
// number.
//
// Throttling (service protection limits): a 429's Retry-After, and
// x-ms-ratelimit-*-remaining headers at 0, hold every delivery of the
// target until then.
package dynamics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// DefaultTimeout bounds one request when New is given no client.
const DefaultTimeout = 30 * time.Second

// exhaustedPause is how long deliveries wait when a response says that the
// requests or execution time left in the service protection window are 0:
// Dataverse gives no time with these headers, and the next request would
// be a 429 that does.
const exhaustedPause = 5 * time.Second

// entraTokenURL is Entra ID's token endpoint for a tenant.
const entraTokenURL = "https://login.microsoftonline.com/%s/oauth2/v2.0/token"

// Config is what an admin configures for a Dynamics target.
type Config struct {
	// URL is the environment's URL, such as https://acme.crm.dynamics.com.
	// Required.
	URL string
	// TenantID is the Entra ID tenant (directory) id, which names the token
	// endpoint. Required unless TokenURL is set.
	TenantID string
	// TokenURL replaces Entra ID's token endpoint, for a national cloud.
	TokenURL string
	// ClientID and ClientSecret are the app registration's, whose
	// application user in the environment has a security role that may
	// write the activity tables. Required.
	ClientID     string
	ClientSecret string
	// Scope is the scope asked for; default: URL + "/.default".
	Scope string
	// APIVersion is the Web API version; default "v9.2".
	APIVersion string
	// EntitySets maps an activity table's logical name, a rule's object, to
	// its Web API entity set name, for tables other than phonecall, task,
	// appointment, letter and fax (custom activity tables).
	EntitySets map[string]string
	// LeaveOpen leaves activities open. By default each is completed after
	// it is created: statecode 1 and the rule's statuscode, or for a phone
	// call 2 (Made) when outgoing and 4 (Received) when incoming.
	LeaveOpen bool

	// MatchRules names the rules whose activities, when they name no who,
	// are linked to the contact, or else the account, whose phone column
	// (telephone1, telephone2, mobilephone) holds the activity's phone as
	// E.164, digits only, or as the platform sent it. "*" means every
	// rule. Empty: no caller match.
	MatchRules []string
	// MatchCacheTTL is how long a lookup's answer for one number is
	// reused; default DefaultMatchCacheTTL.
	MatchCacheTTL time.Duration
	// MatchMultiple says what several matching contacts (or accounts) give:
	// "none" (the default: link none) or "recent" (the last modified).
	MatchMultiple string
}

// builtinSets are the entity sets of the standard activity tables.
var builtinSets = map[string]string{
	"phonecall": "phonecalls", "task": "tasks", "appointment": "appointments",
	"letter": "letters", "fax": "faxes",
}

// partyTables are the activity tables with from and to parties.
var partyTables = map[string]bool{"phonecall": true, "letter": true, "fax": true}

var (
	identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	apiVersion = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)
	// tenant is a tenant id (a GUID) or one of its domains.
	tenant = regexp.MustCompile(`^[A-Za-z0-9.-]+$`)
)

// Target delivers activity records to one Dataverse environment. It is
// safe for concurrent use.
type Target struct {
	api      string // environment URL + /api/data/<version>
	redacted string
	sets     map[string]string
	open     bool
	client   *http.Client
	tokens   *connector.TokenSource
	match    *matcher // nil without MatchRules
	pause    connector.Pause
	now      func() time.Time
}

// New validates cfg and returns a Target. An error names the key at fault
// (url, tenant_id, token_url, client_id, client_secret, scope, api_version,
// entity_sets, match_cache_ttl, match_multiple) and never repeats a secret.
// A nil client means one with DefaultTimeout; redirects are not followed.
func New(cfg Config, client *http.Client) (*Target, error) {
	u, err := connector.ParseHTTPURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	env := strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/")
	tokenURL := cfg.TokenURL
	switch {
	case tokenURL == "" && cfg.TenantID == "":
		return nil, errors.New("tenant_id: required (or token_url)")
	case tokenURL == "" && !tenant.MatchString(cfg.TenantID):
		return nil, errors.New("tenant_id: not a tenant id or domain")
	case tokenURL == "":
		tokenURL = fmt.Sprintf(entraTokenURL, cfg.TenantID)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("client_id: required")
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("client_secret: required")
	}
	scope := cfg.Scope
	if scope == "" {
		scope = env + "/.default"
	}
	if !strings.HasSuffix(scope, "/.default") || strings.ContainsAny(scope, " \r\n") {
		return nil, fmt.Errorf("scope: %q: the client credentials grant asks for one resource's /.default", scope)
	}
	version := cfg.APIVersion
	if version == "" {
		version = "v9.2"
	}
	if !apiVersion.MatchString(version) {
		return nil, fmt.Errorf("api_version: %q, want such as v9.2", version)
	}
	sets := make(map[string]string, len(builtinSets)+len(cfg.EntitySets))
	for k, v := range builtinSets {
		sets[k] = v
	}
	for k, v := range cfg.EntitySets {
		if !identifier.MatchString(k) || !identifier.MatchString(v) {
			return nil, fmt.Errorf("entity_sets: %q = %q: both must be names of letters, digits and _", k, v)
		}
		sets[k] = v
	}

	match, err := newMatcher(cfg)
	if err != nil {
		return nil, err
	}

	c := connector.HTTPClient(client, DefaultTimeout)
	t := &Target{
		match:    match,
		api:      env + "/api/data/" + version,
		redacted: connector.RedactURL(u),
		sets:     sets,
		open:     cfg.LeaveOpen,
		client:   c,
		now:      time.Now,
	}
	t.tokens, err = connector.NewTokenSource(connector.TokenConfig{
		URL:                tokenURL,
		Grant:              url.Values{"grant_type": {"client_credentials"}, "scope": {scope}},
		ClientID:           cfg.ClientID,
		ClientSecret:       cfg.ClientSecret,
		ClientSecretInBody: true,
		Client:             c,
		Now:                func() time.Time { return t.now() },
	})
	if err != nil {
		return nil, fmt.Errorf("token_url: %w", err)
	}
	return t, nil
}

// String describes the target for logs, without secrets.
func (t *Target) String() string { return "dynamics " + t.redacted }

// GoString keeps %#v from printing the credentials.
func (t *Target) GoString() string { return t.String() }

// Deliver writes the activity in d.Body and completes it. RecordID is the
// activity's id, the UUIDv5 of d.Key. Errors are *connector.DeliveryError:
// permanent for a record Dataverse refuses (with its message) or that
// cannot be built, retryable otherwise.
func (t *Target) Deliver(ctx context.Context, d connector.Delivery) (connector.Result, error) {
	rec, err := t.prepare(ctx, d)
	if err != nil {
		return connector.Result{}, err
	}
	res := connector.Result{RecordID: rec.id}
	path := rec.path(t)

	// Step 1: create, only if the row does not exist.
	res.Status, err = t.send(ctx, http.MethodPatch, path, map[string]string{"If-None-Match": "*"}, rec.columns, nil)
	exists := errors.Is(err, errExists)
	if err != nil && !exists {
		return res, err
	}
	if rec.complete == nil {
		return res, nil
	}

	// Step 2: complete it, unless an earlier attempt did.
	if exists {
		var state struct {
			StateCode *int `json:"statecode"`
		}
		if res.Status, err = t.send(ctx, http.MethodGet, path+"?$select=statecode", nil, nil, &state); err != nil {
			return res, err
		}
		if state.StateCode == nil {
			return res, &connector.DeliveryError{Status: res.Status, Err: errors.New("the row read has no statecode")}
		}
		if *state.StateCode != 0 {
			return res, nil // completed (or canceled in Dynamics): read-only now
		}
	}
	res.Status, err = t.send(ctx, http.MethodPatch, path, map[string]string{"If-Match": "*"}, rec.complete, nil)
	return res, err
}

// prepare reads d's activity, finds its caller if asked to, and builds its
// row. A record that cannot be built is a permanent error; a failed caller
// lookup is as any request's.
func (t *Target) prepare(ctx context.Context, d connector.Delivery) (record, error) {
	var a connector.Activity
	if err := json.Unmarshal(d.Body, &a); err != nil {
		return record{}, connector.Permanent(fmt.Errorf("activity: %w", err))
	}
	if err := t.matchCaller(ctx, &a); err != nil {
		return record{}, err
	}
	rec, err := t.record(d.Key, a)
	if err != nil {
		return record{}, connector.Permanent(err)
	}
	return rec, nil
}

// errExists is what send returns for a 412 on a create: the row is there.
var errExists = errors.New("a row with this id exists")

// send makes one request with a token, and once more with a new token after
// a 401. It decodes a 2xx JSON answer into out when out is not nil.
func (t *Target) send(ctx context.Context, method, path string, header map[string]string, body any, out any) (int, error) {
	if err := t.pause.Check(t.now()); err != nil {
		return 0, err
	}
	var token string
	resp, refreshed, err := t.tokens.Do(ctx, func(tok string) (*http.Response, error) {
		token = tok
		req, err := connector.JSONRequest(ctx, method, path, body, t.redacted)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		setOData(req, body != nil, header)
		return connector.Send(t.client, req, t.redacted)
	})
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, t.check(resp, method, refreshed, token, out)
}

// setOData sets the headers the Web API asks of every request, and header.
func setOData(req *http.Request, json bool, header map[string]string) {
	req.Header.Set("OData-MaxVersion", "4.0")
	req.Header.Set("OData-Version", "4.0")
	if json {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
}

// check is what a Dataverse answer means for a delivery, the one place
// that decides it: 2xx done (a create must say which row it wrote), 412 on
// a create errExists, 429 and the x-ms-ratelimit headers hold the target,
// other statuses as connector.Classify says, with Dataverse's message. It
// reads and closes the body.
func (t *Target) check(resp *http.Response, method string, refreshed bool, token string, out any) error {
	now := t.now()
	if resp.Header.Get("x-ms-ratelimit-burst-remaining-xrm-requests") == "0" ||
		resp.Header.Get("x-ms-ratelimit-time-remaining-xrm-requests") == "0" {
		t.pause.Until(now.Add(exhaustedPause))
	}
	status := resp.StatusCode
	if status == http.StatusPreconditionFailed && method == http.MethodPatch && resp.Request.Header.Get("If-None-Match") == "*" {
		_ = connector.CheckResponse(resp, now)
		return errExists
	}
	if connector.Classify(status) == connector.Delivered {
		var row any = &struct{}{}
		if out != nil {
			row = out
		}
		body, err := connector.ReadJSON(resp, row)
		switch {
		case method == http.MethodPatch && resp.Request.Header.Get("If-None-Match") == "*" && resp.Header.Get("OData-EntityId") == "":
			return &connector.DeliveryError{Status: status, Err: errors.New("create answered without OData-EntityId"), Body: t.redact(body, token)}
		case out != nil && err != nil:
			return &connector.DeliveryError{Status: status, Err: errors.New("answer is not the JSON of a row"), Body: t.redact(body, token)}
		}
		return nil
	}

	err := connector.CheckResponse(resp, now)
	var de *connector.DeliveryError
	if !errors.As(err, &de) {
		return err
	}
	c := *de
	if status == http.StatusTooManyRequests && c.RetryAfter() > 0 {
		t.pause.Until(now.Add(c.RetryAfter()))
	}
	if status == http.StatusUnauthorized && refreshed {
		c.Err = errors.New("refused a newly fetched access token")
	}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(c.Body), &e) == nil && e.Error.Message != "" {
		c.Body = e.Error.Message
		if e.Error.Code != "" {
			c.Body += " (" + e.Error.Code + ")"
		}
	}
	c.Body = t.redact(c.Body, token)
	return &c
}

// redact removes the credentials and the access token of a request from
// text Dataverse sent, in case it echoes them.
func (t *Target) redact(text, token string) string {
	text = t.tokens.Redact(text)
	if token != "" {
		text = strings.ReplaceAll(text, token, "[access token]")
	}
	return text
}

// record is one activity as Dataverse rows it: where, and the columns of
// each step.
type record struct {
	set, id  string
	columns  map[string]any
	complete map[string]any // nil: leave the activity open
}

// record builds the row of a, keyed key: the rule's fields without statecode and
// statuscode, which go to the completion, plus the regarding lookup and the
// activity parties from the activity's who and what when the rule set none.
func (t *Target) record(key string, a connector.Activity) (record, error) {
	if key == "" {
		return record{}, errors.New("delivery key is empty")
	}
	table := a.Object
	if table == "" {
		table = "phonecall"
	}
	set, ok := t.sets[table]
	if !ok {
		return record{}, fmt.Errorf("object %q is not an activity table this target knows: add it to entity_sets", table)
	}
	rec := record{set: set, id: ActivityID(key), columns: map[string]any{}}
	for k, v := range a.Fields {
		rec.columns[k] = v
	}
	delete(rec.columns, "activityid") // the id is the key's, in the URL
	state, hasState := rec.columns["statecode"]
	status, hasStatus := rec.columns["statuscode"]
	delete(rec.columns, "statecode")
	delete(rec.columns, "statuscode")

	outgoing, _ := rec.columns["directioncode"].(bool)
	if _, set := rec.columns["directioncode"]; !set {
		outgoing = true // Dataverse's default
	}
	if !hasRegarding(rec.columns) {
		if o := regarding(a); o != nil {
			rec.columns["regardingobjectid_"+o.logical+"_"+table+"@odata.bind"] = "/" + o.set + "(" + o.id + ")"
		}
	}
	parties := table + "_activity_parties"
	if _, ok := rec.columns[parties]; !ok && partyTables[table] {
		if o := lookup(a.Who); o != nil && o.logical != "incident" && o.logical != "opportunity" {
			mask := 2 // the customer receives an outgoing call
			if !outgoing {
				mask = 1
			}
			rec.columns[parties] = []any{map[string]any{
				"partyid_" + o.logical + "@odata.bind": "/" + o.set + "(" + o.id + ")",
				"participationtypemask":                mask,
			}}
		}
	}

	if t.open {
		return rec, nil
	}
	rec.complete = map[string]any{"statecode": 1}
	if hasState {
		rec.complete["statecode"] = state
	}
	switch {
	case hasStatus:
		rec.complete["statuscode"] = status
	case table == "phonecall" && !hasState && outgoing:
		rec.complete["statuscode"] = 2 // Made
	case table == "phonecall" && !hasState:
		rec.complete["statuscode"] = 4 // Received
	}
	if s, _ := rec.complete["statecode"].(float64); hasState && s == 0 {
		rec.complete = nil // the rule asks for an open activity
	}
	return rec, nil
}

// path is the URL of rec's row.
func (rec record) path(t *Target) string { return t.api + "/" + rec.set + "(" + rec.id + ")" }

func hasRegarding(cols map[string]any) bool {
	for k := range cols {
		if strings.HasPrefix(k, "regardingobjectid") {
			return true
		}
	}
	return false
}

// crmRow is a Dataverse row a CRMObject names.
type crmRow struct{ logical, set, id string }

// rowTypes maps a CRMObject's type, lower case, to its table: the names
// platforms use (case) and Dataverse's (incident).
var rowTypes = map[string][2]string{
	"contact": {"contact", "contacts"}, "account": {"account", "accounts"},
	"lead": {"lead", "leads"}, "opportunity": {"opportunity", "opportunities"},
	"incident": {"incident", "incidents"}, "case": {"incident", "incidents"},
}

// regarding is the row the activity is about: its what, or else its who.
func regarding(a connector.Activity) *crmRow {
	if o := lookup(a.What); o != nil {
		return o
	}
	return lookup(a.Who)
}

// lookup returns the row o names, or nil when o is not a Dataverse row of a
// known type: a record of another CRM has no GUID.
func lookup(o *connector.CRMObject) *crmRow {
	if o == nil {
		return nil
	}
	tt, ok := rowTypes[strings.ToLower(o.Type)]
	id := strings.ToLower(strings.Trim(o.ID, "{}"))
	if !ok || !isGUID(id) {
		return nil
	}
	return &crmRow{logical: tt[0], set: tt[1], id: id}
}

var guid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func isGUID(s string) bool { return guid.MatchString(s) }

// Check asks Dataverse for a token and for one row of each object's table
// (default phonecall), for `ctibridge targets check`: an error names what
// is wrong (the credentials, through the token endpoint's answer, or an
// object whose table the environment does not have) in Dataverse's words.
func (t *Target) Check(ctx context.Context, objects ...string) error {
	if len(objects) == 0 {
		objects = []string{"phonecall"}
	}
	for _, o := range objects {
		set, ok := t.sets[o]
		if !ok {
			return fmt.Errorf("object %q is not an activity table this target knows: add it to entity_sets", o)
		}
		var rows struct {
			Value []any `json:"value"`
		}
		if _, err := t.send(ctx, http.MethodGet, t.api+"/"+set+"?$select=activityid&$top=1", nil, nil, &rows); err != nil {
			return fmt.Errorf("object %s (entity set %s): %w", o, set, err)
		}
	}
	return nil
}
