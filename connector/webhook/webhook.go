// Package webhook is the generic HTTP target: it POSTs each activity record's
// JSON to one URL, signed the Standard Webhooks way (webhook-id,
// webhook-timestamp, webhook-signature), so that any receiver with a
// Standard Webhooks library can check that the record came from ctibridge
// and was not altered.
//
// The record's idempotency key is sent as both Idempotency-Key and
// webhook-id, and the body is the exact bytes the outbox stored, so every
// attempt at one record looks the same to the receiver apart from its
// timestamp and signature. The receiver deduplicates on the key: delivery is
// at-least-once.
//
// With a token URL configured, each request carries an OAuth 2.0 bearer
// token from the client credentials grant, cached until shortly before it
// expires and fetched again, once, when the receiver answers 401.
//
// Errors never contain the signing secret, the client secret, an access
// token, nor the userinfo, path or query string of the URL or the token URL,
// because they are stored in the outbox and shown to admins.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// DefaultTimeout bounds one attempt when New is given no client. Standard
// Webhooks asks senders for 15 to 30 seconds; the outbox's lease must outlast
// it.
const DefaultTimeout = 15 * time.Second

// Secret lengths, decoded, that Standard Webhooks allows.
const (
	minSecretLen = 24
	maxSecretLen = 64
)

// secretPrefix marks a Standard Webhooks symmetric secret.
const secretPrefix = "whsec_"

// reserved are the headers the target sets itself: letting configuration
// override them would break the signature or the idempotency contract.
var reserved = map[string]bool{
	"Content-Type":      true,
	"Content-Length":    true,
	"Host":              true,
	"Idempotency-Key":   true,
	"Webhook-Id":        true,
	"Webhook-Timestamp": true,
	"Webhook-Signature": true,
}

// Config is what an admin configures for a webhook target.
type Config struct {
	// URL is where records are POSTed. Required, http or https. Userinfo in
	// it is sent as basic auth; only its scheme and host ever appear in an
	// error.
	URL string
	// Secret is the optional Standard Webhooks signing secret,
	// "whsec_<base64>", or the base64 alone. It must decode to 24 to 64
	// bytes. When it is empty, requests are not signed but still carry
	// webhook-id and webhook-timestamp.
	Secret string
	// Headers are sent with every request, such as Authorization. They
	// cannot replace the headers the target sets itself (Content-Type,
	// Idempotency-Key, webhook-*), nor set Authorization with TokenURL.
	Headers map[string]string

	// TokenURL, when set, turns on OAuth 2.0 client credentials (RFC 6749
	// §4.4): each request carries "Authorization: Bearer <access_token>",
	// with a token fetched from TokenURL with ClientID and ClientSecret
	// (sent as HTTP Basic auth) and Scopes. A token is used until shortly
	// before its expires_in, or, without one, until the receiver answers
	// 401; a 401 makes the target fetch a new token and send the request
	// once more. Only TokenURL's scheme and host ever appear in an error.
	TokenURL     string
	ClientID     string
	ClientSecret string
	// Scopes are sent space-separated as the scope parameter, when any.
	Scopes []string

	// ConflictMeansDelivered makes a 409 Conflict count as delivered: for
	// a receiver that answers 409 to a record it already has. Otherwise a
	// 409 is a permanent failure.
	ConflictMeansDelivered bool
}

// Target delivers activity records to one webhook URL. It is safe for
// concurrent use.
type Target struct {
	url      string // the full URL, with any credentials: only ever sent
	redacted string // scheme and host only: for messages
	key      []byte // HMAC key, nil when unsigned
	header   http.Header
	client   *http.Client
	oauth    *connector.TokenSource // nil without a token URL
	secrets  *scrubber
	// conflictDelivered counts a 409 as delivered.
	conflictDelivered bool

	// now stamps webhook-timestamp and resolves Retry-After dates. It is
	// time.Now; tests in this package replace it.
	now func() time.Time
}

// New validates cfg and returns a Target. An error names the field at fault
// ("url: …", "secret: …", "headers: …", "token_url: …", "client_id: …",
// "client_secret: …", "scopes: …") and never repeats a secret.
//
// client is used as a template: New copies it and turns off redirects,
// because a 301 or 302 would make net/http resend the POST as a GET without
// its body, and Standard Webhooks counts a 3xx as a failure. A nil client
// means one with DefaultTimeout.
func New(cfg Config, client *http.Client) (*Target, error) {
	u, err := connector.ParseHTTPURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	key, err := parseSecret(cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	header, err := parseHeaders(cfg.Headers)
	if err != nil {
		return nil, fmt.Errorf("headers: %w", err)
	}
	tc, err := newOAuth(cfg, header)
	if err != nil {
		return nil, err
	}

	var c http.Client
	if client != nil {
		c = *client
	} else {
		c.Timeout = DefaultTimeout
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	scrub := &scrubber{}
	scrub.add(cfg.Secret, "[signing secret]")
	scrub.add(strings.TrimPrefix(cfg.Secret, secretPrefix), "[signing secret]")
	for name, v := range header {
		if len(v) > 0 {
			scrub.addHeader(name, v[0])
		}
	}
	if tc != nil {
		scrub.addClient(cfg.ClientID, cfg.ClientSecret)
	}

	t := &Target{
		secrets:           scrub,
		url:               u.String(),
		redacted:          connector.RedactURL(u),
		key:               key,
		header:            header,
		client:            &c,
		conflictDelivered: cfg.ConflictMeansDelivered,
		now:               time.Now,
	}
	if tc != nil {
		tc.Client = &c
		// Through t, so that a test's replacement clock applies.
		tc.Now = func() time.Time { return t.now() }
		if t.oauth, err = connector.NewTokenSource(*tc); err != nil {
			return nil, fmt.Errorf("token_url: %w", err)
		}
	}
	return t, nil
}

// String describes the target for logs: the redacted URL, whether requests
// are signed, and the redacted token URL. It never shows a secret.
func (t *Target) String() string {
	var notes []string
	if t.key != nil {
		notes = append(notes, "signed")
	}
	if t.oauth != nil {
		notes = append(notes, "oauth2 "+t.oauth.String())
	}
	if len(notes) == 0 {
		return "webhook " + t.redacted
	}
	return "webhook " + t.redacted + " (" + strings.Join(notes, ", ") + ")"
}

// GoString keeps %#v from printing the key, headers and credentials.
func (t *Target) GoString() string { return t.String() }

// Deliver POSTs d.Body to the target's URL. It returns the HTTP status of
// the last response (0 when none arrived, or when getting an access token
// failed) and, on failure, a *connector.DeliveryError: classified by
// connector.CheckResponse for a response, retryable for a transport error or
// a cancelled ctx, permanent for a key that cannot be sent as a header.
//
// With OAuth, a 401 drops the access token that was refused, and the
// request is sent once more with a new one; a second 401 is permanent. A
// failure at the token endpoint is retryable for a network error, 429 or
// 5xx, and permanent otherwise (such as 400 invalid_client), with the
// endpoint's error and error_description.
//
// A 409 is delivered with ConflictMeansDelivered (Deliver returns 409,
// nil), and permanent otherwise.
func (t *Target) Deliver(ctx context.Context, d connector.Delivery) (connector.Result, error) {
	if err := checkKey(d.Key); err != nil {
		return connector.Result{}, connector.Permanent(err)
	}
	var token string
	resp, refreshed, err := t.oauth.Do(ctx, func(tok string) (*http.Response, error) {
		token = tok
		return t.post(ctx, d, tok)
	})
	if err != nil {
		// A token endpoint that echoes the request may show the client's
		// credentials in forms the token source does not know (Basic).
		var de *connector.DeliveryError
		if errors.As(err, &de) {
			c := *de
			c.Body = t.secrets.text(c.Body)
			return connector.Result{}, &c
		}
		return connector.Result{}, err
	}

	status := resp.StatusCode
	class := connector.Classify(status)
	if class == connector.Conflict && t.conflictDelivered {
		// The receiver already has the record.
		_ = connector.CheckResponse(resp, t.now())
		return connector.Result{Status: status}, nil
	}
	err = connector.CheckResponse(resp, t.now())
	var de *connector.DeliveryError
	if err == nil || !errors.As(err, &de) {
		return connector.Result{Status: status}, err
	}
	c := *de
	if class == connector.Unauthorized && refreshed {
		c.Err = errors.New("refused a newly fetched access token")
	}
	// In case the receiver echoes the request's headers.
	c.Body = t.secrets.text(c.Body)
	if token != "" {
		c.Body = strings.ReplaceAll(c.Body, token, "[access token]")
	}
	return connector.Result{Status: status}, &c
}

// post sends one request for d, with token as a bearer token when it is
// not empty. Each call builds the request afresh, with its own timestamp
// and signature over the same stored bytes. A transport error is returned
// as a retryable *connector.DeliveryError.
func (t *Target) post(ctx context.Context, d connector.Delivery, token string) (*http.Response, error) {
	// A fresh reader each attempt over the same stored bytes: the body and
	// so the signature input never depend on the attempt.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(d.Body))
	if err != nil {
		return nil, connector.Permanent(fmt.Errorf("build request: %w", t.scrub(err)))
	}
	req.Header = t.header.Clone()
	ts := strconv.FormatInt(t.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", d.Key)
	req.Header.Set("webhook-id", d.Key)
	req.Header.Set("webhook-timestamp", ts)
	if t.key != nil {
		req.Header.Set("webhook-signature", sign(t.key, d.Key, ts, d.Body))
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}

	resp, err := t.client.Do(req)
	if err != nil {
		// Network failures, timeouts and a cancelled ctx may all succeed
		// on a later attempt.
		return nil, &connector.DeliveryError{Err: t.scrub(err)}
	}
	return resp, nil
}

// sign returns the webhook-signature value for one attempt: HMAC-SHA256 over
// "id.timestamp.body", as Standard Webhooks v1 specifies.
func sign(key []byte, id, ts string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// scrub replaces the URL that net/http puts in its errors with the redacted
// one, keeping the cause underneath so errors.Is and Timeout still work.
func (t *Target) scrub(err error) error { return connector.ScrubURL(err, t.redacted) }

// checkKey rejects a key that cannot travel as a header value. Such a key
// fails the same way on every attempt, so the caller makes it permanent
// rather than letting net/http's error look like a network failure.
func checkKey(key string) error {
	if key == "" {
		return errors.New("delivery key is empty")
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("delivery key has a control character at byte %d", i)
		}
	}
	return nil
}

// parseSecret returns the HMAC key of a Standard Webhooks secret, or nil for
// an empty one. Its errors describe the secret without quoting it.
func parseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	s = strings.TrimPrefix(s, secretPrefix)
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Accept unpadded base64 too: it is a common way to paste a key.
		var err2 error
		if key, err2 = base64.RawStdEncoding.DecodeString(s); err2 != nil {
			return nil, fmt.Errorf("not base64 after the %q prefix: %w", secretPrefix, err)
		}
	}
	if len(key) < minSecretLen || len(key) > maxSecretLen {
		return nil, fmt.Errorf("decodes to %d bytes, want %d to %d", len(key), minSecretLen, maxSecretLen)
	}
	return key, nil
}

// parseHeaders validates the extra headers. Its errors name the header but
// never show its value, which is often a credential.
func parseHeaders(m map[string]string) (http.Header, error) {
	h := make(http.Header, len(m)+1)
	// A default that names the sender in the receiver's logs; config may
	// replace it.
	h.Set("User-Agent", "ctibridge")
	for name, value := range m {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("%q is not a valid header name", name)
		}
		canon := http.CanonicalHeaderKey(name)
		if reserved[canon] {
			return nil, fmt.Errorf("%q is set by the webhook target and cannot be configured", name)
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; (c < 0x20 && c != '\t') || c == 0x7f {
				return nil, fmt.Errorf("value of %q has a control character", name)
			}
		}
		h.Set(canon, value)
	}
	return h, nil
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
