package hubspot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// maxResponse is how much of an answer is read: a batch of 100 calls with
// their properties is well under it.
const maxResponse = 8 << 20

// lockedWait is how long to wait after a 423 without Retry-After: HubSpot
// asks for about 2 seconds.
const lockedWait = 2 * time.Second

// HubSpot's own status codes that are worth retrying.
const (
	statusLocked    = http.StatusLocked // 423: the record or portal is locked
	statusMigrating = 477               // the portal is being migrated
)

// do sends in as JSON to url with an access token and decodes a 2xx answer
// into out, when out is not nil. With OAuth, a 401 drops the token, gets
// another and sends once more. It returns the HTTP status, 0 when no
// answer arrived, and nil or an error from classify.
func (t *Target) do(ctx context.Context, method, url string, in, out any) (int, error) {
	var body []byte // none for a nil in, as for a GET
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, connector.Permanent(fmt.Errorf("encode request: %w", err))
		}
	}
	tok, err := t.auth.token(ctx)
	if err != nil {
		return 0, err
	}
	status, err := t.send(ctx, method, url, body, tok, out)
	if status != http.StatusUnauthorized || !t.auth.refreshable() {
		return status, err
	}
	// The token expired early or was revoked: one more try with a new one.
	t.auth.invalidate(tok)
	if tok, err = t.auth.token(ctx); err != nil {
		return 0, err
	}
	status, err = t.send(ctx, method, url, body, tok, out)
	var de *connector.DeliveryError
	if status == http.StatusUnauthorized && errors.As(err, &de) {
		c := *de
		c.Err = fmt.Errorf("HubSpot refused a newly fetched access token: %w", de.Err)
		err = &c
	}
	return status, err
}

// send makes one request. A transport failure is retryable.
func (t *Target) send(ctx context.Context, method, url string, body []byte, token string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, connector.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ctibridge")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := t.client.Do(req)
	if err != nil {
		// The URL holds no secret; the request may or may not have been
		// processed, and the next attempt finds out.
		return 0, &connector.DeliveryError{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return resp.StatusCode, &connector.DeliveryError{Status: resp.StatusCode, Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b = []byte(t.auth.scrub(string(b))) // in case an answer echoes the request
	}
	return resp.StatusCode, classify(resp.StatusCode, resp.Header, b, out, t.now())
}

// hubspotError is HubSpot's error body, and the members of its 429 body.
type hubspotError struct {
	Status     string `json:"status"`
	Message    string `json:"message"`
	Category   string `json:"category"`
	ErrorType  string `json:"errorType"`
	PolicyName string `json:"policyName"`
}

// classify says what HubSpot's answer means for a delivery. It is the one
// place where that is decided:
//
//   - 2xx whose JSON decodes into out (or any 2xx when out is nil): nil.
//   - 2xx that is not that JSON (an HTML page, truncated JSON): retryable,
//     the body kept: HubSpot may have written the record, and the next
//     attempt finds it by its key.
//   - 429: retryable, after Retry-After or, without one, the burst window
//     of X-HubSpot-RateLimit-Interval-Milliseconds (none for the daily
//     limit, whose reset HubSpot does not give: the outbox's schedule).
//   - 423 (locked): retryable after Retry-After or 2 s.
//   - 477 (portal migration), 408, 425, 5xx but 501: retryable after
//     Retry-After when given.
//   - every other status, 401 and 409 included: permanent, with HubSpot's
//     category and message.
func classify(status int, h http.Header, body []byte, out any, now time.Time) error {
	if status >= 200 && status <= 299 {
		if out == nil || json.Unmarshal(body, out) == nil {
			return nil
		}
		return malformed(status, "the answer is not HubSpot's JSON", body)
	}
	var he hubspotError
	what := "HubSpot error"
	if json.Unmarshal(body, &he) == nil && he.Message != "" {
		what = strings.TrimSpace(he.Category + he.ErrorType + " " + he.PolicyName)
		if what == "" {
			what = "HubSpot error"
		}
	}
	de := &connector.DeliveryError{Status: status, Body: trimBody(body), Err: errors.New(what)}
	retryAfter := connector.ParseRetryAfter(h.Get("Retry-After"), now)
	switch {
	case status == http.StatusTooManyRequests:
		if retryAfter == 0 && he.PolicyName != "DAILY" {
			if ms, err := strconv.Atoi(h.Get("X-HubSpot-RateLimit-Interval-Milliseconds")); err == nil && ms > 0 {
				retryAfter = time.Duration(ms) * time.Millisecond
			}
		}
		return connector.RetryLater(de, retryAfter)
	case status == statusLocked:
		if retryAfter == 0 {
			retryAfter = lockedWait
		}
		return connector.RetryLater(de, retryAfter)
	case status == statusMigrating, connector.Classify(status) == connector.Retry:
		return connector.RetryLater(de, retryAfter)
	}
	return connector.Permanent(de)
}

// classifyItem is classify for one record's error in a batch answer
// (HTTP 207): permanent when HubSpot says the record itself is wrong
// (VALIDATION_ERROR, OBJECT_NOT_FOUND), retryable otherwise. op says which
// request it was.
func classifyItem(op, category, message string) error {
	de := &connector.DeliveryError{Status: http.StatusMultiStatus, Body: message, Err: fmt.Errorf("%s: %s", op, category)}
	switch category {
	case "VALIDATION_ERROR", "OBJECT_NOT_FOUND":
		return connector.Permanent(de)
	}
	return de
}

// malformed is the retryable error of a 2xx answer that is not what
// HubSpot documents.
func malformed(status int, what string, body []byte) error {
	return &connector.DeliveryError{Status: status, Body: trimBody(body), Err: errors.New(what)}
}

func trimBody(b []byte) string {
	if len(b) > connector.MaxErrorBody {
		b = b[:connector.MaxErrorBody]
	}
	return strings.TrimSpace(string(b))
}
