package connector

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Delivery is one attempt at delivering an activity record to a target.
type Delivery struct {
	// Key is the activity's idempotency key, sent with every attempt.
	Key string
	// Body is the activity's JSON, serialized once when it was accepted:
	// every attempt sends the same bytes.
	Body []byte
	// Attempt counts from 1.
	Attempt int
}

// MaxErrorBody is how much of a CRM's response body an error keeps.
const MaxErrorBody = 4 << 10

// DeliveryError is a failed delivery as a target reports it. Its methods
// tell the outbox what to do: give up (Permanent) or try again, not before
// RetryAfter when that is set.
type DeliveryError struct {
	// Status is the HTTP status code, or 0 when no response arrived.
	Status int
	// Body is the start of the response body: the CRM's own explanation.
	Body string
	// Err is the underlying cause, if any.
	Err error

	permanent  bool
	retryAfter time.Duration
}

func (e *DeliveryError) Error() string {
	var b strings.Builder
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.Status)
	}
	if e.Err != nil {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	if e.Body != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Body)
	}
	return b.String()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// Permanent reports whether retrying cannot help.
func (e *DeliveryError) Permanent() bool { return e.permanent }

// RetryAfter is how long the target asked us to wait, or 0.
func (e *DeliveryError) RetryAfter() time.Duration { return e.retryAfter }

// StatusCode is the HTTP status, or 0.
func (e *DeliveryError) StatusCode() int { return e.Status }

// Permanent marks err as one that retrying cannot fix.
func Permanent(err error) error {
	var de *DeliveryError
	if errors.As(err, &de) {
		c := *de
		c.permanent = true
		return &c
	}
	return &DeliveryError{Err: err, permanent: true}
}

// CheckResponse classifies a CRM's HTTP response, reading and closing its
// body. It returns nil for 2xx. 408, 425, 429 and 5xx are retryable, with the
// Retry-After header honoured; every other status is permanent and keeps the
// CRM's message.
func CheckResponse(resp *http.Response, now time.Time) error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		return nil
	}
	return &DeliveryError{
		Status:     code,
		Body:       strings.TrimSpace(string(body)),
		permanent:  !Retryable(code),
		retryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), now),
	}
}

// Retryable reports whether a non-2xx status may succeed later.
func Retryable(code int) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests:
		return true
	case code >= 500:
		return code != http.StatusNotImplemented
	}
	return false
}

// ParseRetryAfter reads a Retry-After header, in seconds or as an HTTP date.
// It returns 0 for an empty, malformed or past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
