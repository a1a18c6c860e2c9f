package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// tokenTimeout bounds one fetch at the token endpoint, including the quick
// retries of the caller's client. The fetch is shared by every Deliver
// waiting for a token, so it is not cancelled with any one caller's ctx.
const tokenTimeout = DefaultTimeout

// maxTokenResponse is how much of a token endpoint's answer is read: a JWT
// access token with many claims is a few KiB.
const maxTokenResponse = 256 << 10

// maxExpiryMargin is how long before its expiry a token stops being used,
// at most: a token fetched with expires_in E is used for E minus the
// smaller of this and E/10, so that it does not expire in flight.
const maxExpiryMargin = 30 * time.Second

// oauth gets and caches access tokens with the OAuth 2.0 client credentials
// grant (RFC 6749 §4.4). It is safe for concurrent use: callers that need a
// token while one is being fetched wait for that fetch instead of starting
// their own.
type oauth struct {
	url          string // the full token URL: only ever sent
	redacted     string // scheme and host only: for messages
	clientID     string
	clientSecret string
	scope        string // space-separated, or empty
	client       *http.Client
	now          func() time.Time
	scrub        *scrubber // the target's: the client secret, its Basic form, the headers

	mu     sync.Mutex
	token  string    // the cached access token, or ""
	expiry time.Time // when to stop using token; zero: not known, use until a 401
	flight *flight   // the fetch in progress, or nil
}

// flight is one fetch at the token endpoint; done is closed when token or
// err is set.
type flight struct {
	done  chan struct{}
	token string
	err   error
}

// newOAuth validates the OAuth part of cfg. It returns nil, nil when no
// token URL is configured. Its errors name the field at fault and never
// repeat a secret.
func newOAuth(cfg Config, header http.Header) (*oauth, error) {
	if cfg.TokenURL == "" {
		switch {
		case cfg.ClientID != "":
			return nil, errors.New("token_url: required with client_id")
		case cfg.ClientSecret != "":
			return nil, errors.New("token_url: required with client_secret")
		case len(cfg.Scopes) > 0:
			return nil, errors.New("token_url: required with scopes")
		}
		return nil, nil
	}
	u, err := parseURL(cfg.TokenURL)
	if err != nil {
		return nil, fmt.Errorf("token_url: %w", err)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("client_id: required with token_url")
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("client_secret: required with token_url")
	}
	for i, s := range cfg.Scopes {
		if !validScope(s) {
			// Scopes are not secret, but quoting one with a control
			// character would garble the message.
			return nil, fmt.Errorf("scopes: scope %d is empty or has a character RFC 6749 does not allow (such as a space)", i+1)
		}
	}
	if header.Get("Authorization") != "" {
		return nil, errors.New("headers: Authorization cannot be configured with token_url: the target sets it to the OAuth access token")
	}
	return &oauth{
		url:          u.String(),
		redacted:     redact(u),
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		scope:        strings.Join(cfg.Scopes, " "),
	}, nil
}

// validScope reports whether s is an RFC 6749 §3.3 scope-token.
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// get returns an access token: the cached one while it is valid, otherwise
// the result of a fetch, shared with every other caller that needs one
// meanwhile. The fetch outlives a caller whose ctx ends first. Errors are
// *connector.DeliveryError and say "token endpoint: …".
func (o *oauth) get(ctx context.Context) (string, error) {
	o.mu.Lock()
	if o.token != "" && (o.expiry.IsZero() || o.now().Before(o.expiry)) {
		tok := o.token
		o.mu.Unlock()
		return tok, nil
	}
	f := o.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		o.flight = f
		go o.fetch(context.WithoutCancel(ctx), f)
	}
	o.mu.Unlock()

	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", &connector.DeliveryError{Err: fmt.Errorf("token endpoint: %w", ctx.Err())}
	}
}

// invalidate drops the cached token if it is still used, the one that the
// receiver refused, so that the next get fetches a new one. When several
// deliveries are refused the same token at once, only the first drops it;
// the others then share its fetch or its result.
func (o *oauth) invalidate(used string) {
	o.mu.Lock()
	if o.token == used {
		o.token, o.expiry = "", time.Time{}
	}
	o.mu.Unlock()
}

// fetch runs one flight: it asks the token endpoint, caches a token it
// gets, and wakes the waiters. A failure is not cached: the next get asks
// again.
func (o *oauth) fetch(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
	defer cancel()
	start := o.now()
	tok, lifetime, err := o.request(ctx)

	o.mu.Lock()
	if err == nil {
		o.token, o.expiry = tok, time.Time{}
		if lifetime > 0 {
			o.expiry = start.Add(lifetime - min(maxExpiryMargin, lifetime/10))
		}
	}
	o.flight = nil
	o.mu.Unlock()

	f.token, f.err = tok, err
	close(f.done)
}

// tokenResponse is the part of RFC 6749 §5.1 and §5.2 answers this target
// reads.
type tokenResponse struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	// Error and ErrorDescription are set in an error response.
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// request POSTs the client credentials grant to the token endpoint and
// returns the access token and its lifetime, 0 when the endpoint did not
// say. Errors: retryable for a network failure or a status that
// connector.Classify calls Retry (5xx, 429, keeping Retry-After); permanent
// for any other status (such as 400 invalid_client or 401) with the
// endpoint's error and error_description, and for an answer that has no
// usable token.
func (o *oauth) request(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if o.scope != "" {
		form.Set("scope", o.scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, connector.Permanent(fmt.Errorf("token endpoint: build request: %w", scrubURL(err, o.redacted)))
	}

	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ctibridge")
	// RFC 6749 §2.3.1: the client id and secret are form-urlencoded, then
	// sent as the HTTP Basic user and password.
	req.SetBasicAuth(url.QueryEscape(o.clientID), url.QueryEscape(o.clientSecret))

	resp, err := o.client.Do(req)
	if err != nil {
		return "", 0, &connector.DeliveryError{Err: fmt.Errorf("token endpoint: %w", scrubURL(err, o.redacted))}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return "", 0, &connector.DeliveryError{Err: fmt.Errorf("token endpoint: read response from %s: %w", o.redacted, scrubURL(err, o.redacted))}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)

	if connector.Classify(resp.StatusCode) != connector.Delivered {
		// CheckResponse decides retryable or permanent, and keeps
		// Retry-After; the body it keeps is replaced by the endpoint's
		// explanation without any secret.
		resp.Body = io.NopCloser(strings.NewReader(""))
		de, _ := connector.CheckResponse(resp, o.now()).(*connector.DeliveryError)
		if de == nil { // a 2xx that Classify did not call Delivered: cannot happen
			de = &connector.DeliveryError{}
		}
		c := *de
		c.Status = 0 // the receiver never answered
		c.Err = fmt.Errorf("token endpoint: HTTP %d from %s", resp.StatusCode, o.redacted)
		c.Body = o.scrubText(explain(tr, jsonErr, body))
		return "", 0, &c
	}

	fail := func(format string, args ...any) (string, time.Duration, error) {
		return "", 0, connector.Permanent(fmt.Errorf("token endpoint: HTTP %d from %s: %s", resp.StatusCode, o.redacted, fmt.Sprintf(format, args...)))
	}
	switch {
	case jsonErr != nil:
		// Not the JSON of RFC 6749 §5.1: the URL is likely not a token
		// endpoint. The body is not shown: it might hold a token.
		return fail("response is not a JSON token response")
	case tr.AccessToken == "":
		return fail("response has no access_token")
	case !validToken(tr.AccessToken):
		return fail("access_token cannot be sent in a header")
	case tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer"):
		return fail("token_type %.40q, want Bearer", o.scrubText(tr.TokenType))
	}
	return tr.AccessToken, parseExpiresIn(tr.ExpiresIn), nil
}

// explain returns what a token endpoint said about a failure: its error and
// error_description (RFC 6749 §5.2), or else the start of its body.
func explain(tr tokenResponse, jsonErr error, body []byte) string {
	if jsonErr == nil && tr.Error != "" {
		if tr.ErrorDescription != "" {
			return tr.Error + ": " + tr.ErrorDescription
		}
		return tr.Error
	}
	if len(body) > connector.MaxErrorBody {
		body = body[:connector.MaxErrorBody]
	}
	return strings.TrimSpace(string(body))
}

// scrubText removes the client secret, in every form the token request
// carries it, from text the token endpoint sent, in case it echoes the
// request.
func (o *oauth) scrubText(s string) string {
	s = o.scrub.text(s)
	for _, secret := range []string{o.clientSecret, url.QueryEscape(o.clientSecret)} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[client secret]")
		}
	}
	return s
}

// validToken reports whether tok can travel in an Authorization header.
func validToken(tok string) bool {
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// parseExpiresIn reads expires_in, in seconds, as a JSON number or, as some
// servers send it, a string. It returns 0, meaning not known, for a
// missing, malformed or non-positive value.
func parseExpiresIn(raw json.RawMessage) time.Duration {
	s := strings.TrimSpace(string(raw))
	if uq, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(uq)
	}
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil || secs <= 0 || secs > 10*365*24*3600 {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}
