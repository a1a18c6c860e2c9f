package connector

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
)

// TokenTimeout bounds one fetch at a token endpoint. The fetch is shared by
// every delivery waiting for a token, so it is not cancelled with any one
// caller's ctx.
const TokenTimeout = 15 * time.Second

// maxTokenResponse is how much of a token endpoint's answer is read: a JWT
// access token with many claims is a few KiB.
const maxTokenResponse = 256 << 10

// maxExpiryMargin is how long before its expiry a token stops being used,
// at most: a token fetched with expires_in E is used for E minus the
// smaller of this and E/10, so that it does not expire in flight.
const maxExpiryMargin = 30 * time.Second

// TokenConfig says how a TokenSource asks for access tokens.
type TokenConfig struct {
	// URL is the token endpoint. Only its scheme and host ever appear in
	// an error.
	URL string
	// Grant is the grant's form: grant_type and its own parameters, such
	// as scope, or username and password for the password grant.
	Grant url.Values
	// ClientID and ClientSecret authenticate the client: as HTTP Basic
	// (RFC 6749 §2.3.1), or as form parameters with ClientSecretInBody,
	// which is how Entra ID and ServiceNow document it.
	ClientID, ClientSecret string
	ClientSecretInBody     bool
	// Client sends the requests; nil means one with TokenTimeout.
	Client *http.Client
	// Now is the clock that dates tokens; nil means time.Now.
	Now func() time.Time
}

// TokenSource gets OAuth 2.0 access tokens (RFC 6749) from a token
// endpoint, and caches each until shortly before it expires. It is safe for
// concurrent use: callers that need a token while one is being fetched wait
// for that fetch instead of starting their own.
//
// Its errors are *DeliveryError that say "token endpoint: …" and never
// contain the client secret, a password of the grant, nor a token.
type TokenSource struct {
	url      string // the full token URL: only ever sent
	redacted string // scheme and host only: for messages
	form     url.Values
	cfg      TokenConfig
	secrets  []string // what scrubText removes
	client   *http.Client
	now      func() time.Time

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

// NewTokenSource returns a TokenSource for cfg. Its error, for a URL that
// is not http or https, does not name a configuration key: the caller
// knows which one it was.
func NewTokenSource(cfg TokenConfig) (*TokenSource, error) {
	u, err := ParseHTTPURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	form := url.Values{}
	var secrets []string
	for k, v := range cfg.Grant {
		form[k] = append([]string(nil), v...)
		if k == "password" || k == "client_secret" || k == "refresh_token" {
			secrets = append(secrets, v...)
		}
	}
	if cfg.ClientSecretInBody {
		form.Set("client_id", cfg.ClientID)
		form.Set("client_secret", cfg.ClientSecret)
	}
	secrets = append(secrets, cfg.ClientSecret)
	s := &TokenSource{
		url:      u.String(),
		redacted: RedactURL(u),
		form:     form,
		cfg:      cfg,
		client:   cfg.Client,
		now:      cfg.Now,
	}
	for _, sec := range secrets {
		if sec != "" {
			s.secrets = append(s.secrets, sec, url.QueryEscape(sec))
		}
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: TokenTimeout}
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// String is the token endpoint's scheme and host.
func (s *TokenSource) String() string { return s.redacted }

// Token returns an access token: the cached one while it is valid,
// otherwise the result of a fetch, shared with every other caller that
// needs one meanwhile. The fetch outlives a caller whose ctx ends first.
func (s *TokenSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.token != "" && (s.expiry.IsZero() || s.now().Before(s.expiry)) {
		tok := s.token
		s.mu.Unlock()
		return tok, nil
	}
	f := s.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		s.flight = f
		go s.fetch(context.WithoutCancel(ctx), f)
	}
	s.mu.Unlock()

	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", &DeliveryError{Err: fmt.Errorf("token endpoint: %w", ctx.Err())}
	}
}

// Invalidate drops the cached token if it is still used, the one that a
// CRM refused, so that the next Token fetches a new one. When several
// deliveries are refused the same token at once, only the first drops it;
// the others then share its fetch or its result.
func (s *TokenSource) Invalidate(used string) {
	s.mu.Lock()
	if s.token == used {
		s.token, s.expiry = "", time.Time{}
	}
	s.mu.Unlock()
}

// Do sends a request with send and a token, and when the answer is 401,
// drops that token and sends once more with a new one: the token may have
// been revoked or may have expired early. The first 401's body is dropped;
// the second answer decides. refreshed reports that the request was sent
// twice, so that the caller can say that a new token was refused.
//
// A nil TokenSource sends once with an empty token.
func (s *TokenSource) Do(ctx context.Context, send func(token string) (*http.Response, error)) (resp *http.Response, refreshed bool, err error) {
	if s == nil {
		resp, err = send("")
		return resp, false, err
	}
	tok, err := s.Token(ctx)
	if err != nil {
		return nil, false, err
	}
	if resp, err = send(tok); err != nil || Classify(resp.StatusCode) != Unauthorized {
		return resp, false, err
	}
	_ = CheckResponse(resp, s.now())
	s.Invalidate(tok)
	if tok, err = s.Token(ctx); err != nil {
		return nil, false, err
	}
	resp, err = send(tok)
	return resp, true, err
}

// fetch runs one flight: it asks the token endpoint, caches a token it
// gets, and wakes the waiters. A failure is not cached: the next Token
// asks again.
func (s *TokenSource) fetch(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, TokenTimeout)
	defer cancel()
	start := s.now()
	tok, lifetime, err := s.request(ctx)

	s.mu.Lock()
	if err == nil {
		s.token, s.expiry = tok, time.Time{}
		if lifetime > 0 {
			s.expiry = start.Add(lifetime - min(maxExpiryMargin, lifetime/10))
		}
	}
	s.flight = nil
	s.mu.Unlock()

	f.token, f.err = tok, err
	close(f.done)
}

// tokenResponse is the part of RFC 6749 §5.1 and §5.2 answers that is read.
type tokenResponse struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	// Error and ErrorDescription are set in an error response.
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// request POSTs the grant to the token endpoint and returns the access
// token and its lifetime, 0 when the endpoint did not say. Errors:
// retryable for a network failure or a status that Classify calls Retry
// (5xx, 429, keeping Retry-After); permanent for any other status (such as
// 400 invalid_client or 401) with the endpoint's error and
// error_description, and for an answer that has no usable token.
func (s *TokenSource) request(ctx context.Context) (string, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, strings.NewReader(s.form.Encode()))
	if err != nil {
		return "", 0, Permanent(fmt.Errorf("token endpoint: build request: %w", ScrubURL(err, s.redacted)))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ctibridge")
	if !s.cfg.ClientSecretInBody {
		// RFC 6749 §2.3.1: the client id and secret are form-urlencoded,
		// then sent as the HTTP Basic user and password.
		req.SetBasicAuth(url.QueryEscape(s.cfg.ClientID), url.QueryEscape(s.cfg.ClientSecret))
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return "", 0, &DeliveryError{Err: fmt.Errorf("token endpoint: %w", ScrubURL(err, s.redacted))}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return "", 0, &DeliveryError{Err: fmt.Errorf("token endpoint: read response from %s: %w", s.redacted, ScrubURL(err, s.redacted))}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)

	if Classify(resp.StatusCode) != Delivered {
		// CheckResponse decides retryable or permanent, and keeps
		// Retry-After; the body it keeps is replaced by the endpoint's
		// explanation without any secret.
		resp.Body = io.NopCloser(strings.NewReader(""))
		de, _ := CheckResponse(resp, s.now()).(*DeliveryError)
		if de == nil { // a 2xx that Classify did not call Delivered: cannot happen
			de = &DeliveryError{}
		}
		c := *de
		c.Status = 0 // the CRM never answered
		c.Err = fmt.Errorf("token endpoint: HTTP %d from %s", resp.StatusCode, s.redacted)
		c.Body = s.scrubText(explain(tr, jsonErr, body))
		return "", 0, &c
	}

	fail := func(format string, args ...any) (string, time.Duration, error) {
		return "", 0, Permanent(fmt.Errorf("token endpoint: HTTP %d from %s: %s", resp.StatusCode, s.redacted, fmt.Sprintf(format, args...)))
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
		return fail("token_type %.40q, want Bearer", s.scrubText(tr.TokenType))
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
	if len(body) > MaxErrorBody {
		body = body[:MaxErrorBody]
	}
	return strings.TrimSpace(string(body))
}

// Redact removes the client secret and the grant's secrets from text that
// a server sent, in case it echoes a request. A nil TokenSource returns
// text as it is.
func (s *TokenSource) Redact(text string) string {
	if s == nil {
		return text
	}
	return s.scrubText(text)
}

// scrubText removes the secrets of the request from text the token
// endpoint sent, in case it echoes the request.
func (s *TokenSource) scrubText(t string) string {
	for _, secret := range s.secrets {
		t = strings.ReplaceAll(t, secret, "[secret]")
	}
	return t
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

// ParseHTTPURL parses an http or https URL with a host. Its errors never
// quote the URL, which may hold credentials.
func ParseHTTPURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the whole URL in its error, query and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("invalid: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q, want http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("no host")
	}
	return u, nil
}

// RedactURL returns the scheme and host of u, and "/…" for any path: what
// errors and logs may show. The path goes too, because some services put
// their tokens in it.
func RedactURL(u *url.URL) string {
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" {
		s += "/…"
	}
	return s
}

// ScrubURL replaces the URL of every *url.Error in err, nested ones too,
// with redacted, keeping the cause underneath so that errors.Is and
// Timeout still work.
func ScrubURL(err error, redacted string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: redacted, Err: ScrubURL(ue.Err, redacted)}
	}
	return err
}
