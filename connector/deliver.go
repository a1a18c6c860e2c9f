package connector

import (
	"context"
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

// Result is what a target reports of one delivery.
type Result struct {
	// Status is the HTTP status of the final response, 0 when none arrived.
	Status int
	// RecordID is the CRM's own id of the record written (a Salesforce Task
	// id, a HubSpot call id), when the CRM says: the outbox keeps it so that
	// a later step can update the record and an operator can find it.
	RecordID string
}

// Target delivers activity records to one destination: a CRM or a file. It
// returns nil once the record is there, or an error whose methods say what
// the outbox should do (see DeliveryError). Deliver may be called
// concurrently, and again with the same Delivery.Key after any failure or
// crash: the same key must never become a second record.
type Target interface {
	Deliver(ctx context.Context, d Delivery) (Result, error)
}

// BatchResult is what a BatchTarget reports of one delivery of a batch.
type BatchResult struct {
	Result Result
	// Err is nil when the record is in the CRM, else what Deliver would
	// have returned for it alone.
	Err error
}

// BatchTarget is a Target that can also write several records in one API
// call, where the CRM has a bulk endpoint (Salesforce sObject Collections,
// HubSpot batch upsert, Dataverse $batch): API quota is what CRM admins run
// out of first. DeliverBatch returns one result per delivery, in order.
type BatchTarget interface {
	Target
	DeliverBatch(ctx context.Context, ds []Delivery) []BatchResult
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

// ResponseBody is the start of the target's response body.
func (e *DeliveryError) ResponseBody() string { return e.Body }

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

// RetryLater marks err as one that may succeed later, but not before
// after: for a CRM that says how long to wait other than by Retry-After
// (HubSpot asks for about 2 s after a 423 Locked). An after of 0 leaves
// the wait to the outbox's schedule.
func RetryLater(err error, after time.Duration) error {
	var de *DeliveryError
	if errors.As(err, &de) {
		c := *de
		c.permanent, c.retryAfter = false, max(after, 0)
		return &c
	}
	return &DeliveryError{Err: err, retryAfter: max(after, 0)}
}

// Class is what a target's HTTP status means for a delivery.
type Class int

// Classes of HTTP status.
const (
	// Delivered: 2xx, the target has the record.
	Delivered Class = iota
	// Retry: 408, 425, 429 and 5xx other than 501 may succeed later.
	Retry
	// Unauthorized: 401. A target with refreshable credentials refreshes
	// them once and tries again; after that, retrying cannot help.
	Unauthorized
	// Conflict: 409. Delivered where the target says that 409 means the
	// record already exists; otherwise retrying cannot help.
	Conflict
	// Rejected: every other status. Retrying cannot help; the target's
	// message says why.
	Rejected
)

// Classify says what status means for a delivery. It is the one place
// where that is decided.
func Classify(status int) Class {
	switch {
	case status >= 200 && status <= 299:
		return Delivered
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly,
		status == http.StatusTooManyRequests:
		return Retry
	case status >= 500 && status != http.StatusNotImplemented:
		return Retry
	case status == http.StatusUnauthorized:
		return Unauthorized
	case status == http.StatusConflict:
		return Conflict
	}
	return Rejected
}

// CheckResponse turns a target's HTTP response into nil for 2xx or a
// *DeliveryError that keeps the start of the body (the CRM's message) and
// the Retry-After header, and is permanent unless the status Classifies as
// Retry. It reads and closes the body.
func CheckResponse(resp *http.Response, now time.Time) error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	class := Classify(resp.StatusCode)
	if class == Delivered {
		return nil
	}
	return &DeliveryError{
		Status:     resp.StatusCode,
		Body:       strings.TrimSpace(string(body)),
		permanent:  class != Retry,
		retryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), now),
	}
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
