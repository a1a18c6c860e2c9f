// Package servicenow is the ServiceNow target: it inserts each activity
// record as a row of a table (an interaction, a task, a custom call log)
// through the Table API, with basic auth or OAuth (the password or the
// client credentials grant).
//
// The Table API has no idempotent insert, so the record's key goes in a
// correlation column (correlation_id, or one the admin chose), and a
// delivery first looks the key up and inserts only when no row has it.
// Within the process the lookup and the insert of one key are one step: a
// second delivery of the same key waits for the first and then finds its
// row. Across processes (two daemons on one outbox) the outbox's lease
// keeps a key to one delivery at a time.
//
// With caller_field, an inserted row is linked to the caller: the
// activity's who, or the one person of the match table whose phone
// columns hold the customer's number.
//
// A rule that sets sys_id updates that row of its table instead, such as
// the incident the agent worked on: its work_notes (or comments) get the
// record's key on their last line, and are written only when no journal
// entry of the row (sys_journal_field) has the key yet.
//
// A 429 holds every delivery of the target until its Retry-After, or else
// its X-RateLimit-Reset, which ServiceNow's rate limit rules send.
// ServiceNow's {"error":{"message","detail"}} is what a dead delivery
// shows.
package servicenow

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// DefaultTimeout bounds one request when New is given no client.
const DefaultTimeout = 30 * time.Second

// maxCorrelation is the longest key stored as it is: correlation_id holds
// 100 characters, and ServiceNow cuts longer values without saying so, which
// would make the lookup miss.
const maxCorrelation = 100

// Config is what an admin configures for a ServiceNow target.
type Config struct {
	// URL is the instance's URL, such as https://acme.service-now.com.
	// Required.
	URL string
	// Username and Password are an integration user's, for basic auth, or
	// for the OAuth password grant with ClientID.
	Username string
	Password string
	// ClientID and ClientSecret are an OAuth application registry entry's.
	// With them the target uses OAuth: the password grant when Username is
	// set, the client credentials grant otherwise.
	ClientID     string
	ClientSecret string
	// TokenURL is the OAuth token endpoint; default URL + "/oauth_token.do".
	TokenURL string
	// Table is where rows go when a rule names no object; a rule's object
	// names its own table. Optional when every rule names one.
	Table string
	// CorrelationField is the column that holds the record's key; default
	// "correlation_id" (task tables have it). It must exist on each table
	// written: ServiceNow drops an unknown column silently, and the target
	// then refuses to deliver rather than insert again on every retry.
	CorrelationField string

	// CallerField is the column of an inserted row that links it to the
	// caller, such as caller_id (incident) or contact (a case): the sys_id
	// of the activity's who, or else of the person found by phone. Empty:
	// the target links nothing.
	CallerField string
	// MatchTable and MatchColumns find the caller by phone when the
	// activity has no who: the rows of MatchTable (such as sys_user or
	// customer_contact) whose MatchColumns (such as phone, mobile_phone)
	// hold the activity's phone as E.164, digits only, or as sent. One row
	// is linked; none or several link nothing.
	MatchTable   string
	MatchColumns []string
}

var name = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Target delivers activity records to one ServiceNow instance. It is safe
// for concurrent use.
type Target struct {
	base     string // instance URL + /api/now/table/
	redacted string
	table    string
	field    string
	caller   string   // CallerField, or ""
	matchIn  string   // MatchTable, or ""
	matchBy  []string // MatchColumns
	user     string   // basic auth, when tokens is nil
	password string   // basic auth or the password grant's
	client   *http.Client
	tokens   *connector.TokenSource // nil: basic auth
	locks    connector.KeyLock
	pause    connector.Pause
	now      func() time.Time
}

// New validates cfg and returns a Target. An error names the key at fault
// (url, username, password, client_id, client_secret, token_url, table,
// correlation_field, caller_field, match_table, match_columns) and never repeats a secret. A nil client means one
// with DefaultTimeout; redirects are not followed.
func New(cfg Config, client *http.Client) (*Target, error) {
	u, err := connector.ParseHTTPURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	instance := strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/")
	oauth := cfg.ClientID != "" || cfg.ClientSecret != ""
	switch {
	case oauth && cfg.ClientID == "":
		return nil, errors.New("client_id: required with client_secret")
	case oauth && cfg.ClientSecret == "":
		return nil, errors.New("client_secret: required with client_id")
	case !oauth && cfg.Username == "":
		return nil, errors.New("username: required for basic auth (or client_id and client_secret for OAuth)")
	case cfg.Username != "" && cfg.Password == "":
		return nil, errors.New("password: required with username")
	case cfg.Username == "" && cfg.Password != "":
		return nil, errors.New("username: required with password")
	case !oauth && cfg.TokenURL != "":
		return nil, errors.New("token_url: needs client_id and client_secret")
	}
	if cfg.Table != "" && !name.MatchString(cfg.Table) {
		return nil, fmt.Errorf("table: %q is not a table name", cfg.Table)
	}
	field := cfg.CorrelationField
	if field == "" {
		field = "correlation_id"
	}
	if !name.MatchString(field) {
		return nil, fmt.Errorf("correlation_field: %q is not a column name", field)
	}
	switch {
	case cfg.CallerField != "" && !name.MatchString(cfg.CallerField):
		return nil, fmt.Errorf("caller_field: %q is not a column name", cfg.CallerField)
	case cfg.MatchTable != "" && !name.MatchString(cfg.MatchTable):
		return nil, fmt.Errorf("match_table: %q is not a table name", cfg.MatchTable)
	case cfg.MatchTable != "" && cfg.CallerField == "":
		return nil, errors.New("caller_field: required with match_table: the column that receives the caller")
	case cfg.MatchTable != "" && len(cfg.MatchColumns) == 0:
		return nil, errors.New("match_columns: required with match_table")
	case cfg.MatchTable == "" && len(cfg.MatchColumns) > 0:
		return nil, errors.New("match_table: required with match_columns")
	}
	for _, c := range cfg.MatchColumns {
		if !name.MatchString(c) {
			return nil, fmt.Errorf("match_columns: %q is not a column name", c)
		}
	}

	c := connector.HTTPClient(client, DefaultTimeout)
	t := &Target{
		base:     instance + "/api/now/table/",
		redacted: connector.RedactURL(u),
		table:    cfg.Table,
		field:    field,
		caller:   cfg.CallerField,
		matchIn:  cfg.MatchTable,
		matchBy:  cfg.MatchColumns,
		client:   c,
		now:      time.Now,
	}
	t.password = cfg.Password // redacted from what ServiceNow sends back
	if !oauth {
		t.user = cfg.Username
		return t, nil
	}
	tokenURL := cfg.TokenURL
	if tokenURL == "" {
		tokenURL = instance + "/oauth_token.do"
	}
	grant := url.Values{"grant_type": {"client_credentials"}}
	if cfg.Username != "" {
		grant = url.Values{"grant_type": {"password"}, "username": {cfg.Username}, "password": {cfg.Password}}
	}
	t.tokens, err = connector.NewTokenSource(connector.TokenConfig{
		URL:                tokenURL,
		Grant:              grant,
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
func (t *Target) String() string {
	if t.tokens != nil {
		return "servicenow " + t.redacted + " (oauth2)"
	}
	return "servicenow " + t.redacted
}

// GoString keeps %#v from printing the credentials.
func (t *Target) GoString() string { return t.String() }

// Deliver inserts the activity in d.Body into its table, unless a row
// already has its key; or, when the rule sets sys_id, updates that row,
// adding its work notes or comments unless an entry with the key is there
// already. RecordID is the row's sys_id. Errors are
// *connector.DeliveryError: permanent for a row ServiceNow refuses (with
// its message and detail) or that cannot be built, retryable otherwise.
func (t *Target) Deliver(ctx context.Context, d connector.Delivery) (connector.Result, error) {
	a, table, row, err := t.row(d)
	if err != nil {
		return connector.Result{}, connector.Permanent(err)
	}
	unlock, err := t.locks.Lock(ctx, d.Key)
	if err != nil {
		return connector.Result{}, &connector.DeliveryError{Err: err}
	}
	defer unlock()
	if v, ok := row["sys_id"]; ok {
		delete(row, "sys_id")
		id, _ := v.(string)
		return t.update(ctx, d.Key, table, id, row)
	}
	return t.insert(ctx, d.Key, table, row, a)
}

// insert looks the key up in the correlation column and inserts the row
// when no row has it.
func (t *Target) insert(ctx context.Context, key, table string, row map[string]any, a connector.Activity) (connector.Result, error) {
	value := correlation(key)
	r, status, err := t.lookup(ctx, table, t.field+"="+value, t.field)
	switch {
	case err != nil:
		return connector.Result{Status: status}, err
	case r != nil && r[t.field] != value:
		// The instance ignored the condition (a column the table does not
		// have) and answered some other row.
		return connector.Result{Status: status}, connector.Permanent(errNoCorrelation(table, t.field))
	case r != nil:
		return connector.Result{Status: status, RecordID: r["sys_id"].(string)}, nil
	}

	if _, set := row[t.caller]; t.caller != "" && !set {
		caller, status, err := t.findCaller(ctx, a)
		if err != nil {
			return connector.Result{Status: status}, err
		}
		if caller != "" {
			row[t.caller] = caller
		}
	}
	row[t.field] = value
	var created struct {
		Result map[string]any `json:"result"`
	}
	status, err = t.send(ctx, http.MethodPost, t.base+table+"?sysparm_fields=sys_id,"+t.field, row, &created)
	if err != nil {
		return connector.Result{Status: status}, err
	}
	id, _ := created.Result["sys_id"].(string)
	if id == "" {
		return connector.Result{Status: status}, &connector.DeliveryError{Status: status, Err: errors.New("insert answer has no result.sys_id")}
	}
	if created.Result[t.field] != value {
		// Written, but no later lookup would find it: stop here rather
		// than insert again on every retry.
		return connector.Result{Status: status, RecordID: id}, connector.Permanent(errNoCorrelation(table, t.field))
	}
	return connector.Result{Status: status, RecordID: id}, nil
}

// update writes the columns of row sysID of table. A journal column
// (work_notes, comments) gets the key on its last line, and is written
// only when no journal entry of the row has the key yet; other columns
// are the same however often they are written.
func (t *Target) update(ctx context.Context, key, table, sysID string, row map[string]any) (connector.Result, error) {
	if !sysIDShape.MatchString(sysID) {
		return connector.Result{}, connector.Permanent(fmt.Errorf("field sys_id: %q is not a sys_id", sysID))
	}
	marker := keyPrefix + correlation(key)
	journal := ""
	for _, j := range []string{"work_notes", "comments"} {
		if note, ok := row[j].(string); ok && journal == "" {
			journal = j
			row[j] = strings.TrimRight(note, "\n ") + "\n\n" + marker
		}
	}
	if journal != "" {
		q := "element_id=" + sysID + "^element=" + journal + "^valueLIKE" + marker
		r, status, err := t.lookup(ctx, "sys_journal_field", q, "value")
		if err != nil {
			return connector.Result{Status: status}, err
		}
		if v, _ := r["value"].(string); r != nil && strings.Contains(v, marker) {
			return connector.Result{Status: status, RecordID: sysID}, nil
		}
	}
	var updated struct {
		Result map[string]any `json:"result"`
	}
	status, err := t.send(ctx, http.MethodPatch, t.base+table+"/"+sysID+"?sysparm_fields=sys_id", row, &updated)
	if err == nil && updated.Result["sys_id"] != sysID {
		err = &connector.DeliveryError{Status: status, Err: errors.New("update answer has not the row's result.sys_id")}
	}
	return connector.Result{Status: status, RecordID: sysID}, err
}

// lookup returns the first row of table that query matches, with sys_id
// and field, or nil when none does.
func (t *Target) lookup(ctx context.Context, table, query, field string) (map[string]any, int, error) {
	q := url.Values{
		"sysparm_query":  {query},
		"sysparm_fields": {"sys_id," + field},
		"sysparm_limit":  {"1"},
	}
	var found struct {
		Result []map[string]any `json:"result"`
	}
	status, err := t.send(ctx, http.MethodGet, t.base+table+"?"+q.Encode(), nil, &found)
	switch {
	case err != nil:
		return nil, status, err
	case found.Result == nil:
		return nil, status, &connector.DeliveryError{Status: status, Err: errors.New("lookup answer has no result array")}
	case len(found.Result) == 0:
		return nil, status, nil
	}
	if id, _ := found.Result[0]["sys_id"].(string); id == "" {
		return nil, status, &connector.DeliveryError{Status: status, Err: errors.New("lookup answer has a row without sys_id")}
	}
	return found.Result[0], status, nil
}

// findCaller returns the sys_id of the activity's who, or else of the one
// row of the match table whose match columns hold the activity's phone, or
// "" when there is none or several.
func (t *Target) findCaller(ctx context.Context, a connector.Activity) (string, int, error) {
	if a.Who != nil && sysIDShape.MatchString(a.Who.ID) {
		return a.Who.ID, 0, nil
	}
	forms := connector.PhoneForms(a.Phone)
	if t.matchIn == "" || forms == nil {
		return "", 0, nil
	}
	var conds []string
	for _, c := range t.matchBy {
		for _, f := range forms {
			if !strings.Contains(f, "^") { // it would end the condition
				conds = append(conds, c+"="+f)
			}
		}
	}
	q := url.Values{
		"sysparm_query":  {strings.Join(conds, "^OR")},
		"sysparm_fields": {"sys_id"},
		"sysparm_limit":  {"2"},
	}
	var found struct {
		Result []struct {
			SysID string `json:"sys_id"`
		} `json:"result"`
	}
	status, err := t.send(ctx, http.MethodGet, t.base+t.matchIn+"?"+q.Encode(), nil, &found)
	if err != nil || len(found.Result) != 1 {
		return "", status, err
	}
	return found.Result[0].SysID, status, nil
}

// keyPrefix starts the last line of a work note or comment: the record's
// key, by which a later delivery finds the entry.
const keyPrefix = "ctibridge key: "

// sysIDShape is a sys_id: 32 hexadecimal digits.
var sysIDShape = regexp.MustCompile(`^[0-9a-f]{32}$`)

// errNoCorrelation says that a table does not keep the key in the
// correlation column.
func errNoCorrelation(table, field string) error {
	return fmt.Errorf("correlation_field: table %s has no column %s, or it does not keep the key", table, field)
}

// correlation is the value that stands for key in the correlation column:
// the key itself, or, when it is too long or has the ^ that separates the
// conditions of a query, "sha256:" and its hash.
func correlation(key string) string {
	if len(key) <= maxCorrelation && !strings.ContainsAny(key, "^\r\n") {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// row returns d's activity, and its table and columns.
func (t *Target) row(d connector.Delivery) (connector.Activity, string, map[string]any, error) {
	var a connector.Activity
	if err := json.Unmarshal(d.Body, &a); err != nil {
		return a, "", nil, fmt.Errorf("activity: %w", err)
	}
	if d.Key == "" {
		return a, "", nil, errors.New("delivery key is empty")
	}
	table := a.Object
	if table == "" {
		table = t.table
	}
	switch {
	case table == "":
		return a, "", nil, errors.New("the rule names no object and the target no table")
	case !name.MatchString(table):
		return a, "", nil, fmt.Errorf("object %q is not a table name", table)
	}
	row := make(map[string]any, len(a.Fields)+1)
	for k, v := range a.Fields {
		row[k] = v
	}
	if v, ok := row[t.field]; ok && v != correlation(d.Key) {
		return a, "", nil, fmt.Errorf("field %s is the correlation field: the target sets it to the key", t.field)
	}
	return a, table, row, nil
}

// send makes one request, with a token (and once more with a new token
// after a 401) or basic auth, and decodes a 2xx JSON answer into out.
func (t *Target) send(ctx context.Context, method, u string, body, out any) (int, error) {
	if err := t.pause.Check(t.now()); err != nil {
		return 0, err
	}
	var token string
	resp, refreshed, err := t.tokens.Do(ctx, func(tok string) (*http.Response, error) {
		token = tok
		req, err := connector.JSONRequest(ctx, method, u, body, t.redacted)
		if err != nil {
			return nil, err
		}
		if t.tokens != nil {
			req.Header.Set("Authorization", "Bearer "+tok)
		} else {
			req.SetBasicAuth(t.user, t.password)
		}
		return connector.Send(t.client, req, t.redacted)
	})
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, t.check(resp, refreshed, token, out)
}

// check is what a ServiceNow answer means for a delivery, the one place
// that decides it: a 2xx whose JSON decodes into out is done, one that does
// not is retried with its body kept; a 429 holds the target until its
// Retry-After or X-RateLimit-Reset; other statuses are as
// connector.Classify says, with ServiceNow's message and detail. It reads
// and closes the body.
func (t *Target) check(resp *http.Response, refreshed bool, token string, out any) error {
	now := t.now()
	status := resp.StatusCode
	if connector.Classify(status) == connector.Delivered {
		if body, err := connector.ReadJSON(resp, out); err != nil {
			return &connector.DeliveryError{Status: status, Err: errors.New("answer is not the Table API's JSON"), Body: t.redact(body, token)}
		}
		return nil
	}

	reset := resp.Header.Get("X-RateLimit-Reset")
	err := connector.CheckResponse(resp, now)
	var de *connector.DeliveryError
	if !errors.As(err, &de) {
		return err
	}
	c := *de
	if status == http.StatusTooManyRequests {
		wait := c.RetryAfter()
		if secs, err := strconv.ParseInt(reset, 10, 64); wait == 0 && err == nil {
			wait = time.Unix(secs, 0).Sub(now)
		}
		if wait > 0 {
			t.pause.Until(now.Add(wait))
			e := connector.RetryLater(&c, wait).(*connector.DeliveryError)
			c = *e
		}
	}
	if status == http.StatusUnauthorized && refreshed {
		c.Err = errors.New("refused a newly fetched access token")
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
			Detail  string `json:"detail"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(c.Body), &e) == nil && e.Error.Message != "" {
		c.Body = e.Error.Message
		if e.Error.Detail != "" {
			c.Body += ": " + e.Error.Detail
		}
	}
	c.Body = t.redact(c.Body, token)
	return &c
}

// basicCredentials is what basic auth sends for user and password, or "".
func basicCredentials(user, password string) string {
	if user == "" {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// redact removes the credentials and the access token of a request from
// text ServiceNow sent, in case it echoes them.
func (t *Target) redact(text, token string) string {
	text = t.tokens.Redact(text)
	for _, s := range []string{token, t.password, basicCredentials(t.user, t.password)} {
		if s != "" {
			text = strings.ReplaceAll(text, s, "[secret]")
		}
	}
	return text
}

// Check reads one row of each table (default the configured table), for
// `ctibridge targets check`: an error names what is wrong (the
// credentials, or a table the instance does not have) in ServiceNow's
// words.
func (t *Target) Check(ctx context.Context, tables ...string) error {
	if len(tables) == 0 && t.table != "" {
		tables = []string{t.table}
	}
	for _, table := range tables {
		if !name.MatchString(table) {
			return fmt.Errorf("table %q is not a table name", table)
		}
		var rows struct {
			Result []any `json:"result"`
		}
		if _, err := t.send(ctx, http.MethodGet, t.base+table+"?sysparm_limit=1&sysparm_fields=sys_id", nil, &rows); err != nil {
			return fmt.Errorf("table %s: %w", table, err)
		}
	}
	return nil
}
