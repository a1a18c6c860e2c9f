package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ctibridge/ctibridge/connector"
)

// newOAuth validates the OAuth part of cfg and returns a token source for
// the client credentials grant (RFC 6749 §4.4), with the client id and
// secret sent as HTTP Basic auth. It returns nil, nil when no token URL is
// configured. Its errors name the field at fault and never repeat a secret.
// The caller sets the source's client and clock.
func newOAuth(cfg Config, header http.Header) (*connector.TokenConfig, error) {
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
	if _, err := connector.ParseHTTPURL(cfg.TokenURL); err != nil {
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
	grant := url.Values{"grant_type": {"client_credentials"}}
	if len(cfg.Scopes) > 0 {
		grant.Set("scope", strings.Join(cfg.Scopes, " "))
	}
	return &connector.TokenConfig{
		URL:          cfg.TokenURL,
		Grant:        grant,
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
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
