package salesforce

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// jwtLifetime is how far out a JWT bearer assertion's exp is: Salesforce
// asks for a few minutes.
const jwtLifetime = 3 * time.Minute

// maxTokenResponse bounds how much of the token endpoint's answer is read.
const maxTokenResponse = 64 << 10

// session is an access token and the org's instance URL that goes with it.
type session struct {
	token       string
	instanceURL string
}

// auth gets sessions from the token endpoint with the client credentials
// or the JWT bearer grant, and caches one until shortly before the org's
// session timeout. It is safe for concurrent use: one caller fetches while
// the others wait for its session.
type auth struct {
	tokenURL     string
	clientID     string
	clientSecret string          // client credentials; "" with JWT bearer
	key          *rsa.PrivateKey // JWT bearer; nil with client credentials
	username     string
	audience     string
	lifetime     time.Duration
	client       *http.Client
	now          func() time.Time

	sem    chan struct{} // held while reading or fetching the session
	cached session
	expiry time.Time
}

// readKey loads an RSA private key from a PEM file (PKCS #1 or PKCS #8).
// Its errors never quote the file's content.
func readKey(path string) (*rsa.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("no PEM block in the file")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("the RSA PRIVATE KEY block does not parse")
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("the PRIVATE KEY block does not parse")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("the key is %T, Salesforce signs with RSA (RS256)", k)
		}
		return rk, nil
	}
	return nil, fmt.Errorf("PEM block %q, want RSA PRIVATE KEY or PRIVATE KEY (unencrypted)", block.Type)
}

// get returns the cached session, or fetches one. refused is the token
// the org just refused with 401: if it is still cached, it is dropped, so
// that of several deliveries refused at once only one fetches.
func (a *auth) get(ctx context.Context, refused string) (session, error) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return session{}, &connector.DeliveryError{Err: fmt.Errorf("salesforce token endpoint: %w", ctx.Err())}
	}
	defer func() { <-a.sem }()
	if refused != "" && a.cached.token == refused {
		a.cached = session{}
	}
	if a.cached.token != "" && a.now().Before(a.expiry) {
		return a.cached, nil
	}
	start := a.now()
	s, err := a.fetch(ctx)
	if err != nil {
		return session{}, err
	}
	a.cached = s
	a.expiry = start.Add(a.lifetime - min(a.lifetime/10, 5*time.Minute))
	return s, nil
}

// assertion returns a signed JWT bearer assertion (RS256).
func (a *auth) assertion() (string, error) {
	enc := base64.RawURLEncoding.EncodeToString
	claims, err := json.Marshal(map[string]any{
		"iss": a.clientID, "sub": a.username, "aud": a.audience,
		"exp": a.now().Add(jwtLifetime).Unix(),
	})
	if err != nil {
		return "", err
	}
	signed := enc([]byte(`{"alg":"RS256"}`)) + "." + enc(claims)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return signed + "." + enc(sig), nil
}

// fetch asks the token endpoint for a session. Errors are retryable for a
// network failure, 429 or 5xx; permanent for a refusal (400 invalid_client,
// invalid_grant) with Salesforce's error and error_description.
func (a *auth) fetch(ctx context.Context) (session, error) {
	form := url.Values{}
	if a.key != nil {
		jwt, err := a.assertion()
		if err != nil {
			return session{}, connector.Permanent(fmt.Errorf("salesforce JWT bearer: sign assertion: %w", err))
		}
		form.Set("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
		form.Set("assertion", jwt)
	} else {
		form.Set("grant_type", "client_credentials")
		form.Set("client_id", a.clientID)
		form.Set("client_secret", a.clientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return session{}, connector.Permanent(fmt.Errorf("salesforce token endpoint: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return session{}, &connector.DeliveryError{Err: fmt.Errorf("salesforce token endpoint: %w", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return session{}, &connector.DeliveryError{Err: fmt.Errorf("salesforce token endpoint: read answer: %w", err)}
	}
	var tr struct {
		AccessToken      string `json:"access_token"`
		InstanceURL      string `json:"instance_url"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("salesforce token endpoint: HTTP %d", resp.StatusCode)
		if jsonErr == nil && tr.Error != "" {
			err = fmt.Errorf("%w: %s: %s", err, tr.Error, tr.ErrorDescription)
		}
		de := &connector.DeliveryError{Err: err}
		if connector.Classify(resp.StatusCode) == connector.Retry {
			return session{}, connector.RetryLater(de, connector.ParseRetryAfter(resp.Header.Get("Retry-After"), a.now()))
		}
		return session{}, connector.Permanent(de)
	}
	// An answer without a usable token is not what Salesforce documents:
	// retry. Its body is not kept, it may hold a token.
	if jsonErr != nil || tr.AccessToken == "" || strings.ContainsAny(tr.AccessToken, " \r\n") {
		return session{}, &connector.DeliveryError{Err: errors.New("salesforce token endpoint: HTTP 200 without a usable access_token")}
	}
	u, err := url.Parse(tr.InstanceURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return session{}, &connector.DeliveryError{Err: errors.New("salesforce token endpoint: HTTP 200 without a usable instance_url")}
	}
	return session{token: tr.AccessToken, instanceURL: strings.TrimRight(tr.InstanceURL, "/")}, nil
}
