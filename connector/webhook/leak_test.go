package webhook

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// TestNoSecretLeak checks that no error or description of a target shows
// its signing secret, the password in its URL, a token in its query string
// or a configured header value: all of them end up in the outbox and on the
// admin page.
func TestNoSecretLeak(t *testing.T) {
	const (
		password    = "URLPASSWORD"
		queryToken  = "QUERYSECRET"
		headerToken = "HEADERSECRET"
		apiKey      = "k3y/with+slash"
	)
	rawSecret := strings.TrimPrefix(testSecret, "whsec_")
	const pathToken = "T0PATHSECRET"
	forbidden := []string{password, queryToken, pathToken, headerToken, rawSecret, rawSecret[:16], apiKey, `k3y\/with+slash`}
	check := func(t *testing.T, what, s string) {
		t.Helper()
		for _, f := range forbidden {
			if strings.Contains(s, f) {
				t.Errorf("%s leaks %q: %s", what, f, s)
			}
		}
	}
	withSecrets := func(base string) Config {
		u := strings.Replace(base, "http://", "http://admin:"+password+"@", 1)
		return Config{
			URL:     u + "/hook/" + pathToken + "?token=" + queryToken,
			Secret:  testSecret,
			Headers: map[string]string{"Authorization": "Bearer " + headerToken, "X-Api-Key": apiKey, "X-Api-Version": "2"},
		}
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	scenarios := []struct {
		name    string
		handler http.HandlerFunc // nil: nothing listens
		ctx     context.Context
	}{
		{name: "ConnectionRefused"},
		{name: "Timeout", handler: hang},
		{name: "Cancelled", handler: hang, ctx: cancelled},
		{name: "BadRequest", handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad record", 400) }},
		{name: "Unavailable", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }},
		// A CRM that echoes the request's headers in its error, as they
		// came and escaped in JSON the way PHP does.
		{name: "EchoesHeaders", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"error":"bad record","headers":{"Authorization":%q,"X-Api-Key":%q,"escaped":%q,"X-Api-Version":%q}}`,
				r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"),
				strings.ReplaceAll(r.Header.Get("X-Api-Key"), "/", `\/`), r.Header.Get("X-Api-Version"))
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			base := closedURL(t)
			if sc.handler != nil {
				base = newReceiver(t, sc.handler).URL
			}
			ctx := sc.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			tg := mustNew(t, withSecrets(base), &http.Client{Timeout: 200 * time.Millisecond})
			_, err := tg.Deliver(ctx, connector.Delivery{Key: "k1", Body: testBody, Attempt: 1})
			if err == nil {
				t.Fatal("Deliver succeeded, want an error")
			}
			check(t, "error", err.Error())
			check(t, "error %+v", fmt.Sprintf("%+v", err))
			check(t, "error %#v", fmt.Sprintf("%#v", err))
			check(t, "ResponseBody()", deliveryError(t, err).ResponseBody())
			if sc.name == "EchoesHeaders" && !strings.Contains(deliveryError(t, err).ResponseBody(), `"X-Api-Version":"2"`) {
				t.Errorf("a short header value, no secret, was scrubbed too: %s", deliveryError(t, err).ResponseBody())
			}
			if de := deliveryError(t, err); de.Status == 0 && !strings.Contains(err.Error(), base[len("http://"):]) {
				t.Errorf("transport error %q does not name the host", err)
			}
			check(t, "String()", tg.String())
			check(t, "%v", fmt.Sprintf("%v", tg))
			check(t, "%+v", fmt.Sprintf("%+v", tg))
			check(t, "%#v", fmt.Sprintf("%#v", tg))
		})
	}

	t.Run("New", func(t *testing.T) {
		bad := []Config{
			{URL: "ftp://admin:" + password + "@example.com/?token=" + queryToken},
			{URL: "http://admin:" + password + "@example.com:port/?token=" + queryToken},
			{URL: "http://example.com", Secret: "whsec_" + rawSecret[:12]},
			{URL: "http://example.com", Secret: "whsec_" + rawSecret + "!"},
			{URL: "http://example.com", Headers: map[string]string{"Authorization": "Bearer " + headerToken + "\n"}},
		}
		for _, cfg := range bad {
			_, err := New(cfg, nil)
			if err == nil {
				t.Errorf("New(%d-byte URL…) = nil, want an error", len(cfg.URL))
				continue
			}
			check(t, "New error", err.Error())
		}
	})
}

// TestNoSecretLeak_OAuth checks that no error or description of an OAuth
// target shows its client secret, an access token, or the password, path or
// query string of its token URL, whatever the token endpoint and the
// receiver answer, even when they echo what they were sent.
func TestNoSecretLeak_OAuth(t *testing.T) {
	const (
		clientSecret = "CLIENTSECRET+/x"
		accessToken  = "ACCESSTOKEN.eyJhbGciOi"
		idpPassword  = "IDPPASSWORD"
		tenantToken  = "TENANTSECRET"
		tokenQuery   = "TOKENQUERYSECRET"
	)
	basic := base64.StdEncoding.EncodeToString([]byte("ctibridge:" + url.QueryEscape(clientSecret)))
	forbidden := []string{clientSecret, url.QueryEscape(clientSecret), accessToken, idpPassword, tenantToken, tokenQuery, basic}
	check := func(t *testing.T, what, s string) {
		t.Helper()
		for _, f := range forbidden {
			if strings.Contains(s, f) {
				t.Errorf("%s leaks %q: %s", what, f, s)
			}
		}
	}
	grant := func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, accessToken)
	}
	// echo answers status with everything the request carried: its
	// Authorization header and, for the token endpoint, the client secret.
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, pass, _ := r.BasicAuth()
			secret, _ := url.QueryUnescape(pass)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":"invalid_client","error_description":"got %s / %s / %s"}`,
				r.Header.Get("Authorization"), pass, secret)
		}
	}

	scenarios := []struct {
		name     string
		token    http.HandlerFunc // nil: nothing listens
		receiver http.HandlerFunc
	}{
		{name: "TokenConnectionRefused", receiver: nil},
		{name: "TokenTimeout", token: hang},
		{name: "TokenInvalidClient", token: echo(400)},
		{name: "TokenUnauthorized", token: echo(401)},
		{name: "TokenUnavailable", token: echo(503)},
		// Some servers answer form-encoded, which is not RFC 6749 JSON.
		{name: "TokenFormEncoded", token: func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "access_token=%s&token_type=bearer", accessToken)
		}},
		{name: "ReceiverUnauthorized", token: grant, receiver: echo(401)},
		{name: "ReceiverBadRequest", token: grant, receiver: echo(400)},
		{name: "ReceiverUnavailable", token: grant, receiver: echo(503)},
		{name: "ReceiverConflict", token: grant, receiver: echo(409)},
		{name: "ReceiverTimeout", token: grant, receiver: hang},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			tokenBase := closedURL(t)
			if sc.token != nil {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					// Reading the body lets the server see the client go.
					_, _ = io.Copy(io.Discard, r.Body)
					sc.token(w, r)
				}))
				t.Cleanup(srv.Close)
				tokenBase = srv.URL
			}
			receiverBase := closedURL(t)
			if sc.receiver != nil || sc.token != nil {
				receiverBase = newReceiver(t, sc.receiver).URL
			}
			tokenURL := strings.Replace(tokenBase, "http://", "http://idp:"+idpPassword+"@", 1) +
				"/" + tenantToken + "/oauth2/token?key=" + tokenQuery
			tg := mustNew(t, Config{
				URL:          receiverBase + "/hook",
				Secret:       testSecret,
				TokenURL:     tokenURL,
				ClientID:     "ctibridge",
				ClientSecret: clientSecret,
				Scopes:       []string{"calls.write"},
			}, &http.Client{Timeout: 200 * time.Millisecond})
			_, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k1", Body: testBody, Attempt: 1})
			if err == nil {
				t.Fatal("Deliver succeeded, want an error")
			}
			check(t, "error", err.Error())
			check(t, "error %+v", fmt.Sprintf("%+v", err))
			check(t, "error %#v", fmt.Sprintf("%#v", err))
			check(t, "ResponseBody()", deliveryError(t, err).ResponseBody())
			check(t, "String()", tg.String())
			check(t, "%v", fmt.Sprintf("%v", tg))
			check(t, "%+v", fmt.Sprintf("%+v", tg))
			check(t, "%#v", fmt.Sprintf("%#v", tg))
		})
	}

	t.Run("New", func(t *testing.T) {
		bad := []Config{
			{URL: "http://example.com", TokenURL: "ftp://idp:" + idpPassword + "@example.com/" + tenantToken + "?key=" + tokenQuery,
				ClientID: "id", ClientSecret: clientSecret},
			{URL: "http://example.com", TokenURL: "http://idp:" + idpPassword + "@example.com:port/?key=" + tokenQuery,
				ClientID: "id", ClientSecret: clientSecret},
			{URL: "http://example.com", TokenURL: "http://example.com/" + tenantToken, ClientSecret: clientSecret},
			{URL: "http://example.com", ClientSecret: clientSecret},
			{URL: "http://example.com", TokenURL: "http://example.com/" + tenantToken, ClientID: "id", ClientSecret: clientSecret,
				Headers: map[string]string{"Authorization": "Bearer " + accessToken}},
			{URL: "http://example.com", TokenURL: "http://example.com/" + tenantToken, ClientID: "id", ClientSecret: clientSecret,
				Scopes: []string{clientSecret + " x"}},
		}
		for i, cfg := range bad {
			_, err := New(cfg, nil)
			if err == nil {
				t.Errorf("New(config %d) = nil, want an error", i)
				continue
			}
			check(t, "New error", err.Error())
		}
	})
}
