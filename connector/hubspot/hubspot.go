// Package hubspot is the HubSpot CRM target: it logs each activity record
// as a call engagement (the CRM "calls" object), linked to the contact,
// company, deal or ticket the interaction is about.
//
// HubSpot has no idempotency header, so the record's key goes into a call
// property the admin created with "unique value" set (Config.IDProperty).
// A first attempt creates the call, with its associations, in one request;
// HubSpot refuses a second call with the same key. Any later attempt, and a
// create HubSpot answers 409, goes through batch/upsert by that property,
// which returns the existing call instead of making another, then links
// it again (linking is idempotent). However often a record is retried,
// it is one call. (HubSpot documents a contact's taken email as 409; that
// a taken unique call property is 409 too is assumed, and only matters
// when a first attempt is repeated: every retry upserts.) DeliverBatch
// upserts up to MaxBatch records a request.
//
// Every property value is sent as text, as HubSpot's API takes them. The
// rule's fields are the properties (hs_timestamp is required; durations
// are in milliseconds; outcomes are HubSpot's GUIDs, which the mapping
// looks up): this package adds only the key property and the
// associations, built from the activity's who and what, or, with
// Config.Match, from a contact search by the caller's phone.
//
// Auth is a private app (or static) access token, or OAuth's refresh-token
// grant with the access token cached and refreshed shortly before it
// expires, and once on a 401. No token, refresh token or client secret
// ever appears in an error or a Result.
package hubspot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// Defaults for Config.
const (
	DefaultBaseURL          = "https://api.hubapi.com"
	DefaultTokenURL         = "https://api.hubapi.com/oauth/v1/token"
	DefaultObjectsPath      = "/crm/v3/objects"
	DefaultAssociationsPath = "/crm/v4/associations"
	// DefaultTimeout bounds one request when New is given no client.
	DefaultTimeout = 15 * time.Second
)

// MaxBatch is the most records HubSpot's batch endpoints take at once.
const MaxBatch = 100

// Config is what an admin configures for a HubSpot target. Exactly one
// way to sign in is set: Token (or TokenFile), or RefreshToken (or
// RefreshTokenFile) with ClientID and ClientSecret (or ClientSecretFile).
type Config struct {
	// Token is a private app's access token ("pat-…"), or the static
	// token of an app on HubSpot's developer platform.
	Token string
	// TokenFile is a file holding Token, for secrets mounted as files.
	TokenFile string

	// RefreshToken turns on OAuth: access tokens come from TokenURL with
	// the refresh_token grant, ClientID and ClientSecret. A refresh token
	// HubSpot rotates is used from then on (in memory only).
	RefreshToken string
	// RefreshTokenFile is a file holding RefreshToken.
	RefreshTokenFile string
	// ClientID is the OAuth app's client id. Required with RefreshToken.
	ClientID string
	// ClientSecret is the OAuth app's client secret. Required with
	// RefreshToken.
	ClientSecret string
	// ClientSecretFile is a file holding ClientSecret.
	ClientSecretFile string
	// TokenURL is HubSpot's OAuth token endpoint; default DefaultTokenURL.
	TokenURL string

	// BaseURL is HubSpot's API root; default DefaultBaseURL.
	BaseURL string
	// ObjectsPath and AssociationsPath are the API paths of CRM objects
	// and of v4 associations; defaults DefaultObjectsPath and
	// DefaultAssociationsPath. Set them for HubSpot's date-versioned
	// paths, such as "/crm/objects/2026-03" and
	// "/crm/associations/2026-03".
	ObjectsPath      string
	AssociationsPath string

	// IDProperty is the internal name of the calls property, created with
	// "unique value" set, that holds each record's key: what makes a
	// retry find the call it wrote instead of writing another. Required.
	IDProperty string

	// Match, when set, finds the caller's contact by the activity's
	// phone for an activity that has no who.
	Match *MatchConfig
}

// Target writes activity records to one HubSpot account as calls. It is
// safe for concurrent use.
type Target struct {
	base       string // BaseURL without a trailing slash
	objects    string // base + ObjectsPath
	assoc      string // base + AssociationsPath
	idProperty string
	client     *http.Client
	auth       *auth
	match      *matcher // nil without Config.Match

	// now resolves Retry-After dates and token expiry; tests replace it.
	now func() time.Time
}

// New validates cfg and returns a Target. An error names the key at
// fault ("token: …", "refresh_token: …", "id_property: …") and never
// repeats a secret. A nil client means one with DefaultTimeout; New uses
// a copy of client that does not follow redirects, because net/http
// resends a redirected POST as a GET without its body.
func New(cfg Config, client *http.Client) (*Target, error) {
	base, err := parseURL("base_url", cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	objects, err := parsePath("objects_path", cfg.ObjectsPath, DefaultObjectsPath)
	if err != nil {
		return nil, err
	}
	assoc, err := parsePath("associations_path", cfg.AssociationsPath, DefaultAssociationsPath)
	if err != nil {
		return nil, err
	}
	if cfg.IDProperty == "" {
		return nil, errors.New("id_property: required: the calls property with a unique value that holds each record's key")
	}
	if !validPropertyName(cfg.IDProperty) {
		return nil, fmt.Errorf("id_property: %q is not a HubSpot property name (lower-case letters, digits and _)", cfg.IDProperty)
	}

	var c http.Client
	if client != nil {
		c = *client
	} else {
		c.Timeout = DefaultTimeout
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	t := &Target{
		base:       base,
		objects:    base + objects,
		assoc:      base + assoc,
		idProperty: cfg.IDProperty,
		client:     &c,
		now:        time.Now,
	}
	if t.auth, err = newAuth(cfg, &c, func() time.Time { return t.now() }); err != nil {
		return nil, err
	}
	if cfg.Match != nil {
		if t.match, err = newMatcher(*cfg.Match, func() time.Time { return t.now() }); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// String describes the target for logs, without any secret.
func (t *Target) String() string {
	return fmt.Sprintf("hubspot %s (%s, key in %s)", t.base, t.auth.kind(), t.idProperty)
}

// GoString keeps %#v from printing credentials.
func (t *Target) GoString() string { return t.String() }

// Deliver writes d as one HubSpot call and returns its id as
// Result.RecordID. A first attempt creates the call with its
// associations; a later attempt, or a create HubSpot answers 409 (the key
// is taken), upserts by Config.IDProperty and links the call again, so a
// retry after a lost answer finds the call already written.
//
// Errors are *connector.DeliveryError: permanent for a record HubSpot
// rejects (with HubSpot's message) or one that cannot be sent (no
// hs_timestamp, a property that is not text); retryable for 429 (waiting
// as HubSpot's headers say), 423, 477, 5xx, a network failure, and an
// answer that is not HubSpot's JSON (the body kept).
func (t *Target) Deliver(ctx context.Context, d connector.Delivery) (connector.Result, error) {
	c, err := t.prepare(ctx, d)
	if err != nil {
		return connector.Result{}, err
	}
	if d.Attempt <= 1 {
		id, status, err := t.create(ctx, c)
		if status != http.StatusConflict {
			return connector.Result{Status: status, RecordID: id}, err
		}
		// The key is taken: an earlier write of this record (an attempt
		// before a restart that reset the count, or an operator's retry).
	}
	r := t.upsert(ctx, []*call{c})[0]
	return r.Result, r.Err
}

// create POSTs c with its associations. It returns the call's id, the
// HTTP status (409 when HubSpot says the key property's value is taken),
// and an error from classify.
func (t *Target) create(ctx context.Context, c *call) (string, int, error) {
	var out createdObject
	status, err := t.do(ctx, http.MethodPost, t.objects+"/calls", createInput{Properties: c.props, Associations: c.assocs}, &out)
	if err != nil {
		return "", status, err
	}
	id := out.recordID()
	if id == "" {
		return "", status, malformed(status, "create answer has no call id", nil)
	}
	return id, status, nil
}

// createInput is the body of a create: HubSpot requires both members.
type createInput struct {
	Properties   map[string]string `json:"properties"`
	Associations []association     `json:"associations"`
}

// createdObject is a create's answer: HubSpot's SDKs expect 201 with the
// object, its current spec 200 with createdResourceId and entity.
type createdObject struct {
	ID                string `json:"id"`
	CreatedResourceID string `json:"createdResourceId"`
	Entity            *struct {
		ID string `json:"id"`
	} `json:"entity"`
}

func (o createdObject) recordID() string {
	switch {
	case o.ID != "":
		return o.ID
	case o.CreatedResourceID != "":
		return o.CreatedResourceID
	case o.Entity != nil:
		return o.Entity.ID
	}
	return ""
}

func parseURL(key, raw, def string) (string, error) {
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s: %q is not an http or https URL", key, raw)
	}
	if u.User != nil || u.RawQuery != "" {
		return "", fmt.Errorf("%s: must have no user info or query", key)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func parsePath(key, raw, def string) (string, error) {
	if raw == "" {
		raw = def
	}
	if !strings.HasPrefix(raw, "/") || strings.ContainsAny(raw, "?# ") {
		return "", fmt.Errorf("%s: %q is not an absolute path such as %q", key, raw, def)
	}
	return strings.TrimRight(raw, "/"), nil
}

// validPropertyName reports whether s can be a HubSpot property's internal
// name.
func validPropertyName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// readSecret returns value, or the trimmed content of file; setting both
// is an error naming key.
func readSecret(key, value, file string) (string, error) {
	switch {
	case value != "" && file != "":
		return "", fmt.Errorf("%s: set either %s or %s_file, not both", key, key, key)
	case file == "":
		return strings.TrimSpace(value), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		return "", fmt.Errorf("%s_file: cannot read %q: %w", key, file, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s_file: %q is empty", key, file)
	}
	return s, nil
}

// decodeJSON unmarshals b into v, keeping numbers as json.Number.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}
