package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// testSecret decodes to 32 bytes, 0x00 to 0x1f.
var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte(
	"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"+
		"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"))

// testBody is deliberately not compact and not ASCII: the target must send
// these bytes as they are, never re-serialized.
var testBody = []byte(`{"key":"brightpattern:IX-1:calls", "fields": {"Subject": "Call from Zoë ☎", "CallDurationInSeconds": 42}}`)

// request is what the test receiver saw of one request.
type request struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// receiver is an httptest server that records every request and answers
// with handler, or 204 when handler is nil.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newReceiver(t *testing.T, handler http.HandlerFunc) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("receiver: read body: %v", err)
		}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, request{r.Method, r.URL.Path, r.Header.Clone(), body})
		rc.mu.Unlock()
		if handler == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		handler(w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

func mustNew(t *testing.T, cfg Config, client *http.Client) *Target {
	t.Helper()
	tg, err := New(cfg, client)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return tg
}

// deliveryError asserts that err is or wraps a *connector.DeliveryError.
func deliveryError(t *testing.T, err error) *connector.DeliveryError {
	t.Helper()
	var de *connector.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *connector.DeliveryError", err, err)
	}
	return de
}

// verify is an independent Go implementation of Standard Webhooks
// verification (spec v1.0.0, as the reference Go library does it): all
// three headers required, ±5 minutes of tolerance, any matching v1
// signature accepted, compared in constant time.
func verify(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return fmt.Errorf("decode secret: %w", err)
	}
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing required headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s off by %v", ts, d)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Split(sigs, " ") {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

func TestDeliver_Request(t *testing.T) {
	rc := newReceiver(t, nil)
	tg := mustNew(t, Config{
		URL:     rc.URL + "/hooks/ctibridge",
		Secret:  testSecret,
		Headers: map[string]string{"authorization": "Bearer t0k", "X-Tenant": "acme"},
	}, nil)
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	d := connector.Delivery{Key: "brightpattern:IX-1:calls", Body: testBody, Attempt: 1}

	for i, now := range []time.Time{t0, t0.Add(90 * time.Second)} {
		tg.now = func() time.Time { return now }
		d.Attempt = i + 1
		res, err := tg.Deliver(t.Context(), d)
		status := res.Status
		if status != http.StatusNoContent || err != nil {
			t.Fatalf("attempt %d: Deliver = %d, %v; want 204, nil", d.Attempt, status, err)
		}
	}

	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		now := t0.Add(time.Duration(i) * 90 * time.Second)
		if r.method != http.MethodPost || r.path != "/hooks/ctibridge" {
			t.Errorf("attempt %d: %s %s, want POST /hooks/ctibridge", i+1, r.method, r.path)
		}
		if !bytes.Equal(r.body, testBody) {
			t.Errorf("attempt %d: body\n%s\nwant the stored bytes\n%s", i+1, r.body, testBody)
		}
		want := map[string]string{
			"Content-Type":      "application/json",
			"Idempotency-Key":   d.Key,
			"Webhook-Id":        d.Key,
			"Webhook-Timestamp": strconv.FormatInt(now.Unix(), 10),
			"Authorization":     "Bearer t0k",
			"X-Tenant":          "acme",
			"User-Agent":        "ctibridge",
		}
		for name, v := range want {
			if got := r.header.Values(name); len(got) != 1 || got[0] != v {
				t.Errorf("attempt %d: header %s = %q, want [%q]", i+1, name, got, v)
			}
		}
		if err := verify(testSecret, r.header, r.body, now); err != nil {
			t.Errorf("attempt %d: signature %q: %v", i+1, r.header.Get("webhook-signature"), err)
		}
	}
	if a, b := reqs[0].header.Get("webhook-id"), reqs[1].header.Get("webhook-id"); a != b {
		t.Errorf("webhook-id changed between attempts: %q, %q", a, b)
	}
	if !bytes.Equal(reqs[0].body, reqs[1].body) {
		t.Errorf("body changed between attempts")
	}
	if a, b := reqs[0].header.Get("webhook-signature"), reqs[1].header.Get("webhook-signature"); a == b {
		t.Errorf("signature did not change with the timestamp: %q", a)
	}
}

// TestDeliver_SpecVector signs the test vector of the Standard Webhooks
// reference library, so the signature is checked against a value computed
// elsewhere, not just against this package's own verify.
func TestDeliver_SpecVector(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	body := []byte(`{"test": 2432232314}`)
	ts := time.Unix(1614265330, 0)

	for _, s := range []string{secret, strings.TrimPrefix(secret, "whsec_")} {
		rc := newReceiver(t, nil)
		tg := mustNew(t, Config{URL: rc.URL, Secret: s}, nil)
		tg.now = func() time.Time { return ts }
		if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: id, Body: body, Attempt: 1}); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		r := rc.requests()[0]
		if got := r.header.Get("webhook-signature"); got != want {
			t.Errorf("secret %.12q…: webhook-signature = %q, want %q", s, got, want)
		}
		if err := verify(secret, r.header, r.body, ts); err != nil {
			t.Errorf("verify(vector) = %v, want nil", err)
		}
		if err := verify(secret, r.header, []byte(`{"test": 2432232315}`), ts); err == nil {
			t.Errorf("verify(tampered body) = nil, want an error")
		}
	}
}

func TestDeliver_Unsigned(t *testing.T) {
	rc := newReceiver(t, nil)
	tg := mustNew(t, Config{URL: rc.URL}, nil)
	if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "k", Body: testBody, Attempt: 1}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	h := rc.requests()[0].header
	if h.Get("webhook-signature") != "" {
		t.Errorf("webhook-signature = %q without a secret, want none", h.Get("webhook-signature"))
	}
	if h.Get("webhook-id") != "k" || h.Get("webhook-timestamp") == "" {
		t.Errorf("webhook-id, webhook-timestamp = %q, %q; want both set", h.Get("webhook-id"), h.Get("webhook-timestamp"))
	}
}

// closedURL returns a URL on which nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// hang is a receiver handler that answers only when the client gives up.
func hang(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

func TestDeliver_Status(t *testing.T) {
	shortClient := &http.Client{Timeout: 200 * time.Millisecond}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name       string
		handler    http.HandlerFunc // nil: nothing listens
		ctx        context.Context
		client     *http.Client
		wantStatus int
		wantErr    bool
		permanent  bool
		retryAfter time.Duration
		wantInErr  string
		wantCause  error
	}{
		{name: "Created", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) }, wantStatus: 201},
		{
			name: "BadRequest",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, `{"error":"fields.Subject: required"}`, 400)
			},
			wantStatus: 400, wantErr: true, permanent: true,
			wantInErr: `fields.Subject: required`,
		},
		{
			name: "TooManyRequests",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(429)
			},
			wantStatus: 429, wantErr: true, retryAfter: 30 * time.Second,
		},
		{name: "Unavailable", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }, wantStatus: 503, wantErr: true},
		{
			// A redirect is not followed: net/http would resend the POST as a
			// bodiless GET and report the wrong endpoint's success.
			name: "RedirectNotFollowed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/moved" {
					t.Errorf("redirect was followed to %s", r.URL.Path)
				}
				http.Redirect(w, r, "/moved", http.StatusFound)
			},
			wantStatus: 302, wantErr: true, permanent: true,
		},
		{name: "ConnectionRefused", wantErr: true, wantInErr: "connection refused"},
		{name: "ClientTimeout", handler: hang, client: shortClient, wantErr: true, wantInErr: "Client.Timeout"},
		{name: "Cancelled", handler: hang, ctx: cancelled, wantErr: true, wantCause: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := closedURL(t)
			if tt.handler != nil {
				u = newReceiver(t, tt.handler).URL
			}
			ctx := tt.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			tg := mustNew(t, Config{URL: u + "/hook", Secret: testSecret}, tt.client)

			res, err := tg.Deliver(ctx, connector.Delivery{Key: "k1", Body: testBody, Attempt: 1})
			status := res.Status
			if status != tt.wantStatus {
				t.Errorf("Deliver status = %d, want %d", status, tt.wantStatus)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Deliver error = %v, want nil", err)
				}
				return
			}
			de := deliveryError(t, err)
			if de.Permanent() != tt.permanent {
				t.Errorf("Permanent() = %v, want %v (error %v)", de.Permanent(), tt.permanent, err)
			}
			if de.RetryAfter() != tt.retryAfter {
				t.Errorf("RetryAfter() = %v, want %v", de.RetryAfter(), tt.retryAfter)
			}
			if de.StatusCode() != tt.wantStatus {
				t.Errorf("StatusCode() = %d, want %d", de.StatusCode(), tt.wantStatus)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantInErr)
			}
			if tt.wantCause != nil && !errors.Is(err, tt.wantCause) {
				t.Errorf("error %v does not wrap %v", err, tt.wantCause)
			}
		})
	}
}

func TestDeliver_BadKey(t *testing.T) {
	rc := newReceiver(t, nil)
	tg := mustNew(t, Config{URL: rc.URL}, nil)
	for _, key := range []string{"", "a\nb", "a\x00b"} {
		res, err := tg.Deliver(t.Context(), connector.Delivery{Key: key, Body: testBody, Attempt: 1})
		status := res.Status
		if status != 0 || !deliveryError(t, err).Permanent() {
			t.Errorf("Deliver(key %q) = %d, %v; want 0 and a permanent error", key, status, err)
		}
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver got %d requests for unsendable keys, want 0", n)
	}
}

func TestNew(t *testing.T) {
	long := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65))
	short := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23))
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // prefix; empty for success
	}{
		{"OK", Config{URL: "https://example.com/hook"}, ""},
		{"OKSecret", Config{URL: "http://example.com", Secret: testSecret}, ""},
		{"OKRawSecret", Config{URL: "http://example.com", Secret: strings.TrimPrefix(testSecret, "whsec_")}, ""},
		{"OKUnpaddedSecret", Config{URL: "http://example.com", Secret: "whsec_" + base64.RawStdEncoding.EncodeToString(make([]byte, 25))}, ""},
		{"OKHeaders", Config{URL: "http://example.com", Headers: map[string]string{"Authorization": "Bearer x"}}, ""},
		{"ErrNoURL", Config{}, "url: required"},
		{"ErrScheme", Config{URL: "ftp://example.com/hook"}, `url: scheme "ftp"`},
		{"ErrRelative", Config{URL: "/hook"}, `url: scheme ""`},
		{"ErrNoHost", Config{URL: "http:///hook"}, "url: no host"},
		{"ErrUnparsable", Config{URL: "http://example.com:port/"}, "url: invalid"},
		{"ErrSecretBase64", Config{URL: "http://example.com", Secret: "whsec_!!!"}, "secret: not base64"},
		{"ErrSecretShort", Config{URL: "http://example.com", Secret: short}, "secret: decodes to 23 bytes"},
		{"ErrSecretLong", Config{URL: "http://example.com", Secret: long}, "secret: decodes to 65 bytes"},
		{"ErrHeaderReserved", Config{URL: "http://example.com", Headers: map[string]string{"webhook-id": "x"}}, "headers:"},
		{"ErrHeaderName", Config{URL: "http://example.com", Headers: map[string]string{"Bad Name": "x"}}, "headers:"},
		{"ErrHeaderValue", Config{URL: "http://example.com", Headers: map[string]string{"X-A": "a\r\nX-B: b"}}, "headers:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New(%+v) = %v, want nil", tt.cfg, err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("New(%+v) = %v, want an error starting %q", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

func TestNew_Client(t *testing.T) {
	tg := mustNew(t, Config{URL: "http://example.com"}, nil)
	if tg.client.Timeout != DefaultTimeout {
		t.Errorf("default client timeout = %v, want %v", tg.client.Timeout, DefaultTimeout)
	}
	mine := &http.Client{Timeout: time.Second}
	tg = mustNew(t, Config{URL: "http://example.com"}, mine)
	if mine.CheckRedirect != nil {
		t.Errorf("New changed the caller's client")
	}
	if tg.client.Timeout != time.Second || tg.client.CheckRedirect == nil {
		t.Errorf("target client = timeout %v, redirects on %v; want the caller's timeout, redirects off", tg.client.Timeout, tg.client.CheckRedirect == nil)
	}
}
