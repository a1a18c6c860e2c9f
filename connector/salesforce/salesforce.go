// Package salesforce is the Salesforce CRM target: it writes each activity
// as a Task (TaskSubtype Call by default) or as the object its rule names,
// by upsert on an admin-chosen external-ID field that holds the activity's
// key, so that a retried delivery updates the record it created instead of
// writing a second one.
//
// It signs in with OAuth 2.0 client credentials (the org's My Domain token
// URL) or the JWT bearer grant (a private key file, RS256), caches the
// session until shortly before the org's session timeout, and fetches a new
// one once when Salesforce answers 401 INVALID_SESSION_ID. Strings are cut
// to their field lengths before sending, the who and what of the activity
// become WhoId and WhatId (ids checked for shape first), 403
// REQUEST_LIMIT_EXCEEDED and 503 are retried, and Sforce-Limit-Info is read
// from every answer: Usage reports it, and deliveries wait once the org's
// daily API use passes a threshold. DeliverBatch writes up to 200 records
// per call with an sObject Collections upsert; with a caller-match rule, an
// activity without a who is linked to the Contact or Lead whose phone
// matches the customer's.
//
// Errors never contain the client secret, the private key or an access
// token.
package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// Defaults of Config.
const (
	DefaultAPIVersion     = "62.0"
	DefaultObject         = "Task"
	DefaultTaskSubtype    = "Call"
	DefaultSessionTimeout = 2 * time.Hour
	DefaultLimitThreshold = 0.9
	DefaultLimitWait      = 15 * time.Minute
	DefaultMatchCacheTTL  = 10 * time.Minute
	// DefaultTimeout bounds one request when New is given no client.
	DefaultTimeout = 30 * time.Second
)

// Config is what an admin configures for a Salesforce target. The TOML key
// of each field is given in brackets.
type Config struct {
	// LoginURL [login_url] is where the target signs in, such as
	// "https://acme.my.salesforce.com": the org's My Domain URL, which the
	// client credentials grant requires. With JWT bearer it may also be
	// https://login.salesforce.com or https://test.salesforce.com.
	// Required.
	LoginURL string
	// ClientID [client_id] is the connected app's consumer key. Required.
	ClientID string
	// ClientSecret [client_secret] is the connected app's consumer secret:
	// it selects the client credentials grant.
	ClientSecret string
	// PrivateKeyFile [private_key_file] is a PEM file holding the RSA
	// private key whose certificate the connected app has: it selects the
	// JWT bearer grant, with Username. Exactly one of ClientSecret and
	// PrivateKeyFile is required.
	PrivateKeyFile string
	// Username [username] is the Salesforce user the JWT bearer grant signs
	// in as. Required with PrivateKeyFile.
	Username string
	// Audience [audience] is the JWT's aud: by default
	// https://test.salesforce.com when LoginURL's host is
	// test.salesforce.com, and https://login.salesforce.com otherwise.
	Audience string
	// SessionTimeout [session_timeout] is the org's session timeout
	// (Setup → Session Settings): a session is used until shortly before
	// it, then fetched again. Salesforce's token answer does not say.
	// Default 2h.
	SessionTimeout time.Duration
	// APIVersion [api_version] is the REST API version, such as "62.0";
	// at least 46.0 (collections upsert). Default DefaultAPIVersion.
	APIVersion string

	// Object [object] is the sObject written when the rule names none.
	// Default "Task".
	Object string
	// ExternalIDField [external_id_field] is the custom field, flagged
	// External ID and Unique, that holds each activity's key, such as
	// "CallLogKey__c". It must exist on every object written. Required.
	ExternalIDField string
	// TaskSubtype [task_subtype] is sent as a Task's TaskSubtype when the
	// rule's fields do not set it. Default "Call".
	TaskSubtype string
	// FieldLimits [field_limits] adds maximum lengths, in characters, of
	// string fields (custom ones, or those of another object): longer
	// values are cut before sending. Task's Subject, CallObject,
	// CallDisposition (255), CallType (40) and Description (32,000) are
	// built in.
	FieldLimits map[string]int

	// LimitThreshold [limit_threshold] is the share of the org's daily API
	// requests (Sforce-Limit-Info) past which the target slows down: it
	// then makes at most one call per LimitWait, and every other delivery
	// is retried after the wait. Between 0 and 1; default 0.9.
	LimitThreshold float64
	// LimitWait [limit_wait] is that wait. Default 15m.
	LimitWait time.Duration
	// OnUsage, when set, is called with the org's API usage each time an
	// answer reports it: for a metric. It must not block.
	OnUsage func(used, max int)

	// MatchRules [match_rules] names the rules whose activities, when
	// they have no who, are linked to the Contact or Lead whose phone
	// matches the activity's phone (a SOSL search in phone fields). "*"
	// means every rule. Empty: no caller match.
	MatchRules []string
	// MatchCacheTTL [match_cache_ttl] is how long a search's answer for a
	// number is reused. Default 10m.
	MatchCacheTTL time.Duration
	// MatchMultiple [match_multiple] says what to do when several
	// Contacts or Leads have the number: "none" (link nothing, the
	// default), "first" (the first Salesforce returns) or "recent" (the
	// most recently modified).
	MatchMultiple string
	// MatchFlagField [match_flag_field], when set, is a text field of the
	// record that receives why an activity was not linked ("no match",
	// "3 matches").
	MatchFlagField string
}

// Target writes activities to one Salesforce org. It is safe for
// concurrent use.
type Target struct {
	cfg    Config
	auth   *auth
	client *http.Client
	limits map[string]int
	match  *matcher // nil without MatchRules
	usage  usage

	// now is the clock; tests replace it.
	now func() time.Time
}

var (
	apiName    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	apiVersion = regexp.MustCompile(`^\d{2,3}\.\d$`)
)

// New validates cfg and returns a Target. An error names the config key at
// fault and never repeats a secret. client is used as a template (New
// copies it and turns off redirects); nil means one with DefaultTimeout.
func New(cfg Config, client *http.Client) (*Target, error) {
	login, err := url.Parse(cfg.LoginURL)
	switch {
	case cfg.LoginURL == "":
		return nil, errors.New("login_url: required, such as https://yourdomain.my.salesforce.com")
	case err != nil || (login.Scheme != "https" && login.Scheme != "http") || login.Host == "":
		return nil, errors.New("login_url: not an http(s) URL with a host")
	case cfg.ClientID == "":
		return nil, errors.New("client_id: required (the connected app's consumer key)")
	case cfg.ClientSecret == "" && cfg.PrivateKeyFile == "":
		return nil, errors.New("client_secret or private_key_file: one is required")
	case cfg.ClientSecret != "" && cfg.PrivateKeyFile != "":
		return nil, errors.New("client_secret and private_key_file: set one, not both")
	case cfg.PrivateKeyFile != "" && cfg.Username == "":
		return nil, errors.New("username: required with private_key_file")
	case cfg.ExternalIDField == "":
		return nil, errors.New("external_id_field: required, such as CallLogKey__c (a custom field flagged External ID and Unique)")
	case !apiName.MatchString(cfg.ExternalIDField):
		return nil, fmt.Errorf("external_id_field: %q is not a Salesforce field API name", cfg.ExternalIDField)
	case cfg.Object != "" && !apiName.MatchString(cfg.Object):
		return nil, fmt.Errorf("object: %q is not a Salesforce object API name", cfg.Object)
	case cfg.APIVersion != "" && !apiVersion.MatchString(cfg.APIVersion):
		return nil, fmt.Errorf("api_version: %q, want a version such as %s", cfg.APIVersion, DefaultAPIVersion)
	case cfg.APIVersion != "" && versionBefore(cfg.APIVersion, 46):
		return nil, fmt.Errorf("api_version: %s, want 46.0 or later (upsert answers and collections)", cfg.APIVersion)
	case cfg.SessionTimeout < 0:
		return nil, errors.New("session_timeout: must not be negative")
	case cfg.LimitThreshold < 0 || cfg.LimitThreshold > 1:
		return nil, errors.New("limit_threshold: want a share between 0 and 1, such as 0.9")
	case cfg.LimitWait < 0:
		return nil, errors.New("limit_wait: must not be negative")
	}
	for field, n := range cfg.FieldLimits {
		if !apiName.MatchString(field) || n <= 0 {
			return nil, fmt.Errorf("field_limits: %q = %d, want a field API name and a positive length", field, n)
		}
	}
	m, err := newMatcher(cfg)
	if err != nil {
		return nil, err
	}
	setDefaults(&cfg, login)

	var c http.Client
	if client != nil {
		c = *client
	} else {
		c.Timeout = DefaultTimeout
	}
	// A redirect would resend a PATCH as a GET: never follow one.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	t := &Target{cfg: cfg, client: &c, limits: fieldLimits(cfg), match: m, now: time.Now}
	t.auth = &auth{
		tokenURL:     strings.TrimRight(cfg.LoginURL, "/") + "/services/oauth2/token",
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		username:     cfg.Username,
		audience:     cfg.Audience,
		lifetime:     cfg.SessionTimeout,
		client:       &c,
		now:          func() time.Time { return t.now() },
		sem:          make(chan struct{}, 1),
	}
	if cfg.PrivateKeyFile != "" {
		if t.auth.key, err = readKey(cfg.PrivateKeyFile); err != nil {
			return nil, fmt.Errorf("private_key_file: %w", err)
		}
	}
	return t, nil
}

// versionBefore reports whether API version v (valid) is older than major.
func versionBefore(v string, major int) bool {
	n, _ := strconv.Atoi(strings.Split(v, ".")[0])
	return n < major
}

func setDefaults(cfg *Config, login *url.URL) {
	if cfg.APIVersion == "" {
		cfg.APIVersion = DefaultAPIVersion
	}
	if cfg.Object == "" {
		cfg.Object = DefaultObject
	}
	if cfg.TaskSubtype == "" {
		cfg.TaskSubtype = DefaultTaskSubtype
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.LimitThreshold == 0 {
		cfg.LimitThreshold = DefaultLimitThreshold
	}
	if cfg.LimitWait == 0 {
		cfg.LimitWait = DefaultLimitWait
	}
	if cfg.Audience == "" {
		cfg.Audience = "https://login.salesforce.com"
		if strings.EqualFold(login.Hostname(), "test.salesforce.com") {
			cfg.Audience = "https://test.salesforce.com"
		}
	}
}

// String describes the target for logs, without secrets.
func (t *Target) String() string {
	grant := "client credentials"
	if t.auth.key != nil {
		grant = "JWT bearer as " + t.cfg.Username
	}
	return fmt.Sprintf("salesforce %s (%s, %s by %s)", t.cfg.LoginURL, grant, t.cfg.Object, t.cfg.ExternalIDField)
}

// GoString keeps %#v from printing the credentials.
func (t *Target) GoString() string { return t.String() }

// Deliver upserts d's activity by its key. The Result's RecordID is the
// record's Salesforce id; its Status that of Salesforce's answer.
func (t *Target) Deliver(ctx context.Context, d connector.Delivery) (connector.Result, error) {
	// Before prepare, whose caller match may search.
	if err := t.slowDown(); err != nil {
		return connector.Result{}, err
	}
	rec, err := t.prepare(ctx, d)
	if err != nil {
		return connector.Result{}, err
	}
	path := fmt.Sprintf("/sobjects/%s/%s/%s", rec.object, t.cfg.ExternalIDField, url.PathEscape(rec.extID))
	for {
		body, err := json.Marshal(rec.fields)
		if err != nil {
			return connector.Result{}, connector.Permanent(fmt.Errorf("salesforce: rule %q, key %q: fields: %w", rec.rule, rec.key, err))
		}
		ans, err := t.call(ctx, http.MethodPatch, path, body)
		if err != nil {
			return connector.Result{}, err
		}
		ans.parseSave()
		switch v := classify(ans); v {
		case delivered:
			return connector.Result{Status: ans.status, RecordID: ans.id}, nil
		case resend:
			if rec.dropSubtype() {
				continue
			}
			return connector.Result{Status: ans.status}, t.failure(ans, dead, rec.String())
		default:
			return connector.Result{Status: ans.status}, t.failure(ans, v, rec.String())
		}
	}
}

// pathOnly is path without its query, for errors: a caller match's search
// holds the caller's number, and errors reach logs.
func pathOnly(path string) string {
	p, _, _ := strings.Cut(path, "?")
	return p
}

// maxAnswer bounds how much of a data API answer is read: a collection of
// 200 results is some 20 KiB.
const maxAnswer = 4 << 20

// call sends one data API request, path relative to
// /services/data/vNN.N, with a session; when Salesforce answers 401 it
// fetches a new session and sends the request once more. It returns the
// answer, or a retryable error when none arrived.
func (t *Target) call(ctx context.Context, method, path string, body []byte) (*answer, error) {
	refused := ""
	for {
		s, err := t.auth.get(ctx, refused)
		if err != nil {
			return nil, err
		}
		u := s.instanceURL + "/services/data/v" + t.cfg.APIVersion + path
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return nil, connector.Permanent(fmt.Errorf("salesforce: build request: %w", err))
		}
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := t.client.Do(req)
		if err != nil {
			// Timeouts and dropped connections: Salesforce may have
			// written the record; the upsert's retry finds it.
			return nil, &connector.DeliveryError{Err: fmt.Errorf("salesforce %s %s: %w", method, pathOnly(path), cause(err))}
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		resp.Body.Close()
		if err != nil {
			return nil, &connector.DeliveryError{Status: resp.StatusCode, Err: fmt.Errorf("salesforce %s %s: read answer: %w", method, pathOnly(path), err)}
		}
		t.observe(resp.Header.Get("Sforce-Limit-Info"))
		ans := &answer{status: resp.StatusCode, body: scrub(raw, s.token), retryAfter: connector.ParseRetryAfter(resp.Header.Get("Retry-After"), t.now())}
		if classify(ans) == refresh && refused == "" {
			refused = s.token
			continue
		}
		return ans, nil
	}
}

// cause drops the URL that net/http puts in its errors: the path is in
// the message already.
func cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// scrub removes token from an answer, in case it echoes the request.
func scrub(raw []byte, token string) []byte {
	return bytes.ReplaceAll(raw, []byte(token), []byte("[access token]"))
}

// usage is the org's API usage as the last answer reported it.
type usage struct {
	mu        sync.Mutex
	used, max int
	at        time.Time
}

// Usage returns the org's daily API requests used and allowed, as the
// last Sforce-Limit-Info header said; 0, 0 before any answer.
func (t *Target) Usage() (used, max int) {
	t.usage.mu.Lock()
	defer t.usage.mu.Unlock()
	return t.usage.used, t.usage.max
}

// observe records a Sforce-Limit-Info header ("api-usage=10018/100000").
func (t *Target) observe(h string) {
	var used, max int
	for _, part := range strings.Split(h, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "api-usage="); ok {
			if _, err := fmt.Sscanf(v, "%d/%d", &used, &max); err != nil || max <= 0 {
				return
			}
		}
	}
	if max == 0 {
		return
	}
	t.usage.mu.Lock()
	t.usage.used, t.usage.max, t.usage.at = used, max, t.now()
	t.usage.mu.Unlock()
	if t.cfg.OnUsage != nil {
		t.cfg.OnUsage(used, max)
	}
}

// slowDown returns a retryable error while the org's API usage is past
// LimitThreshold and the last answer is younger than LimitWait: the first
// call after the wait goes through and reads the usage again.
func (t *Target) slowDown() error {
	t.usage.mu.Lock()
	used, max, at := t.usage.used, t.usage.max, t.usage.at
	t.usage.mu.Unlock()
	if max == 0 || float64(used) < t.cfg.LimitThreshold*float64(max) {
		return nil
	}
	wait := at.Add(t.cfg.LimitWait).Sub(t.now())
	if wait <= 0 {
		return nil
	}
	return connector.RetryLater(fmt.Errorf("salesforce: the org has used %d of its %d daily API requests, past limit_threshold %.2f: waiting", used, max, t.cfg.LimitThreshold), wait)
}
