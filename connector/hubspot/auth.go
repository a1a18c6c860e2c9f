package hubspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// maxExpiryMargin is how long before its expiry an OAuth access token
// stops being used, at most: HubSpot says to refresh by the token's
// lifetime, not on a 401.
const maxExpiryMargin = 5 * time.Minute

// auth hands out access tokens: a static one, or OAuth access tokens from
// the refresh_token grant, cached until shortly before they expire. Only
// one refresh runs at a time; callers waiting for it give up with their
// ctx.
type auth struct {
	static string // a private app's token, or "" with OAuth

	tokenURL     string
	clientID     string
	clientSecret string
	client       *http.Client
	now          func() time.Time

	lock    chan struct{} // held while the fields below are read or a refresh runs
	refresh string        // the refresh token, replaced when HubSpot sends a new one
	access  string
	expiry  time.Time
	// issued are every secret this target has used, to scrub from
	// answers.
	issued []string
}

func newAuth(cfg Config, client *http.Client, now func() time.Time) (*auth, error) {
	token, err := readSecret("token", cfg.Token, cfg.TokenFile)
	if err != nil {
		return nil, err
	}
	refresh, err := readSecret("refresh_token", cfg.RefreshToken, cfg.RefreshTokenFile)
	if err != nil {
		return nil, err
	}
	secret, err := readSecret("client_secret", cfg.ClientSecret, cfg.ClientSecretFile)
	if err != nil {
		return nil, err
	}
	a := &auth{client: client, now: now, lock: make(chan struct{}, 1)}
	switch {
	case token != "" && (refresh != "" || cfg.ClientID != "" || secret != ""):
		return nil, errors.New("token: set either token (a private app) or refresh_token, client_id and client_secret (OAuth), not both")
	case token != "":
		if !headerSafe(token) {
			return nil, errors.New("token: has a space or control character")
		}
		a.static = token
		a.issued = []string{token}
		return a, nil
	case refresh == "":
		return nil, errors.New("token: required (a private app's access token), or refresh_token with client_id and client_secret for OAuth")
	case cfg.ClientID == "":
		return nil, errors.New("client_id: required with refresh_token")
	case secret == "":
		return nil, errors.New("client_secret: required with refresh_token")
	}
	if a.tokenURL, err = parseURL("token_url", cfg.TokenURL, DefaultTokenURL); err != nil {
		return nil, err
	}
	a.clientID, a.clientSecret, a.refresh = cfg.ClientID, secret, refresh
	a.issued = []string{secret, refresh}
	return a, nil
}

func (a *auth) kind() string {
	if a.static != "" {
		return "private app token"
	}
	return "OAuth"
}

func (a *auth) refreshable() bool { return a.static == "" }

// token returns a valid access token, refreshing it when it is missing or
// about to expire. Errors are *connector.DeliveryError.
func (a *auth) token(ctx context.Context) (string, error) {
	if a.static != "" {
		return a.static, nil
	}
	select {
	case a.lock <- struct{}{}:
	case <-ctx.Done():
		return "", &connector.DeliveryError{Err: fmt.Errorf("waiting for a HubSpot access token: %w", ctx.Err())}
	}
	defer func() { <-a.lock }()
	if a.access != "" && a.now().Before(a.expiry) {
		return a.access, nil
	}
	start := a.now()
	tr, err := a.fetch(ctx)
	if err != nil {
		return "", err
	}
	lifetime := time.Duration(tr.ExpiresIn) * time.Second
	a.access, a.expiry = tr.AccessToken, start.Add(lifetime-min(maxExpiryMargin, lifetime/10))
	a.issued = append(a.issued, tr.AccessToken)
	if tr.RefreshToken != "" && tr.RefreshToken != a.refresh {
		a.refresh = tr.RefreshToken
		a.issued = append(a.issued, tr.RefreshToken)
	}
	return a.access, nil
}

// invalidate drops the cached access token if it is still used, the one
// HubSpot refused, so that the next token call refreshes. When several
// requests are refused the same token, the first drops it and the others
// use the new one.
func (a *auth) invalidate(used string) {
	if a.static != "" {
		return
	}
	a.lock <- struct{}{}
	if a.access == used {
		a.access = ""
	}
	<-a.lock
}

// tokenAnswer is HubSpot's token endpoint answer, success or error.
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	// On failure: HubSpot's status and message, or OAuth's error.
	Status           string `json:"status"`
	Message          string `json:"message"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// fetch runs the refresh_token grant. Called with the lock held. A
// network failure, 429 or 5xx is retryable; any other failure, such as
// 400 BAD_REFRESH_TOKEN, is permanent with HubSpot's message.
func (a *auth) fetch(ctx context.Context) (tokenAnswer, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {a.clientID},
		"client_secret": {a.clientSecret},
		"refresh_token": {a.refresh},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return tokenAnswer{}, connector.Permanent(fmt.Errorf("token endpoint: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ctibridge")
	resp, err := a.client.Do(req)
	if err != nil {
		return tokenAnswer{}, &connector.DeliveryError{Err: fmt.Errorf("token endpoint: %w", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return tokenAnswer{}, &connector.DeliveryError{Err: fmt.Errorf("token endpoint: read answer: %w", err)}
	}
	var tr tokenAnswer
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(tr.Status + " " + tr.Message + tr.Error + " " + tr.ErrorDescription)
		if jsonErr != nil || msg == "" {
			msg = trimBody(body)
		}
		de := &connector.DeliveryError{Err: fmt.Errorf("token endpoint: HTTP %d: %s", resp.StatusCode, a.scrubLocked(msg))}
		if connector.Classify(resp.StatusCode) == connector.Retry {
			return tokenAnswer{}, connector.RetryLater(de, connector.ParseRetryAfter(resp.Header.Get("Retry-After"), a.now()))
		}
		return tokenAnswer{}, connector.Permanent(de)
	}
	switch {
	case jsonErr != nil:
		// Its body is not shown: it might hold a token.
		return tokenAnswer{}, &connector.DeliveryError{Err: errors.New("token endpoint: HTTP 200 that is not a JSON token answer")}
	case tr.AccessToken == "" || !headerSafe(tr.AccessToken):
		return tokenAnswer{}, &connector.DeliveryError{Err: errors.New("token endpoint: answer has no usable access_token")}
	case tr.ExpiresIn <= 0:
		return tokenAnswer{}, &connector.DeliveryError{Err: errors.New("token endpoint: answer has no expires_in")}
	}
	return tr, nil
}

// scrub replaces every secret this target has used in s.
func (a *auth) scrub(s string) string {
	if a.static != "" {
		return a.scrubLocked(s)
	}
	a.lock <- struct{}{}
	defer func() { <-a.lock }()
	return a.scrubLocked(s)
}

func (a *auth) scrubLocked(s string) string {
	for _, sec := range a.issued {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[secret]")
			s = strings.ReplaceAll(s, url.QueryEscape(sec), "[secret]")
		}
	}
	return s
}

// headerSafe reports whether tok can travel in an Authorization header.
func headerSafe(tok string) bool {
	return !strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f })
}
