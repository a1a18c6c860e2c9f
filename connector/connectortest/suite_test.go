package connectortest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// TestRunTargetSuite runs the suite against the smallest CRM that can pass
// it: a fake that keeps records by key behind a bearer token, and a target
// that upserts by key, refreshes its token once on 401 and classifies each
// answer.
func TestRunTargetSuite(t *testing.T) {
	connectortest.RunTargetSuite(t, connectortest.TargetSuite{
		Setup: func(t *testing.T, timeout time.Duration) (connectortest.CRM, connectortest.DeliverFunc) {
			crm := newToyCRM(t)
			tg := &toyTarget{url: crm.srv.URL, client: &http.Client{Timeout: timeout}}
			return crm, tg.deliver
		},
		Activity: func(key string) []byte { return []byte(`{"key":"` + key + `"}`) },
		Secrets:  []string{"toy-secret"},
	})
}

// toyCRM is a CRM whose records are PUT at /records/{key}.
type toyCRM struct {
	connectortest.Faults
	connectortest.TokenStore
	srv *httptest.Server

	mu      sync.Mutex
	records map[string][]string
}

func newToyCRM(t *testing.T) *toyCRM {
	c := &toyCRM{records: map[string][]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("secret") != "toy-secret" {
			http.Error(w, "bad secret", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"token":%q}`, c.Issue())
	})
	mux.HandleFunc("PUT /records/{key}", c.put)
	c.srv = httptest.NewServer(mux)
	t.Cleanup(c.srv.Close)
	return c
}

func (c *toyCRM) Records(key string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.records[key]...)
}

// write stores key's record unless it exists, and returns its id and
// whether it is new.
func (c *toyCRM) write(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ids := c.records[key]; len(ids) > 0 {
		return ids[0], false
	}
	id := fmt.Sprintf("rec%d", len(c.records)+1)
	c.records[key] = []string{id}
	return id, true
}

func (c *toyCRM) put(w http.ResponseWriter, r *http.Request) {
	if !c.Valid(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")) {
		http.Error(w, "expired", http.StatusUnauthorized)
		return
	}
	key := r.PathValue("key")
	f, failing := c.Next()
	switch {
	case !failing:
	case f.Kind == connectortest.Validation:
		http.Error(w, f.Message, http.StatusUnprocessableEntity)
		return
	case f.Kind == connectortest.Throttled:
		connectortest.RetryAfterHeader(w.Header(), f.RetryAfter)
		w.WriteHeader(http.StatusTooManyRequests)
		return
	case f.Kind == connectortest.ServerError:
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case f.Kind == connectortest.Timeout:
		connectortest.Hang(r)
		return
	case f.Kind == connectortest.ResetAfterWrite:
		c.write(key)
		connectortest.Reset(w)
		return
	case f.Kind == connectortest.Malformed:
		c.write(key)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, f.Message)
		return
	}
	id, created := c.write(key)
	if created {
		w.WriteHeader(http.StatusCreated)
	}
	fmt.Fprintf(w, `{"id":%q}`, id)
}

// toyTarget is the target side of toyCRM.
type toyTarget struct {
	url    string
	client *http.Client

	mu    sync.Mutex
	token string
}

type toyError struct {
	msg   string
	perm  bool
	after time.Duration
	body  string
}

func (e *toyError) Error() string             { return e.msg + ": " + e.body }
func (e *toyError) Permanent() bool           { return e.perm }
func (e *toyError) RetryAfter() time.Duration { return e.after }
func (e *toyError) ResponseBody() string      { return e.body }

func retry(msg string) error { return &toyError{msg: msg} }

// getToken returns the cached token, or fetches one when fresh is set or
// there is none.
func (tg *toyTarget) getToken(ctx context.Context, fresh bool) (string, error) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.token != "" && !fresh {
		return tg.token, nil
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tg.url+"/token", strings.NewReader("secret=toy-secret"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := tg.client.Do(req)
	if err != nil {
		return "", retry("token: network")
	}
	defer resp.Body.Close()
	var tr struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.Token == "" {
		return "", retry("token: bad answer")
	}
	tg.token = tr.Token
	return tr.Token, nil
}

func (tg *toyTarget) deliver(ctx context.Context, key string, body []byte, _ int) (string, error) {
	for try := 1; ; try++ {
		tok, err := tg.getToken(ctx, try > 1)
		if err != nil {
			return "", err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, tg.url+"/records/"+key, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := tg.client.Do(req)
		if err != nil {
			var ue interface{ Timeout() bool }
			if errors.As(err, &ue) && ue.Timeout() {
				return "", retry("timeout")
			}
			return "", retry("network")
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch s := resp.StatusCode; {
		case s == http.StatusUnauthorized && try == 1:
			continue
		case s == http.StatusOK || s == http.StatusCreated:
			var rec struct{ ID string }
			if json.Unmarshal(raw, &rec) != nil || rec.ID == "" {
				return "", &toyError{msg: "unexpected answer", body: string(raw)}
			}
			return rec.ID, nil
		case s == http.StatusTooManyRequests || s >= 500:
			return "", &toyError{msg: resp.Status, body: string(raw),
				after: connectortestRetryAfter(resp.Header.Get("Retry-After"))}
		default:
			return "", &toyError{msg: resp.Status, body: string(raw), perm: true}
		}
	}
}

func connectortestRetryAfter(v string) time.Duration {
	var s int
	if _, err := fmt.Sscan(v, &s); err != nil {
		return 0
	}
	return time.Duration(s) * time.Second
}
