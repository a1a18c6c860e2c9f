package salesforce

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// answer is one Salesforce answer: a whole response, or one record's
// result in a collection response.
type answer struct {
	status     int
	body       []byte // the raw answer, kept in errors
	retryAfter time.Duration

	// parsed says the body is what Salesforce documents for the status;
	// success, id and created are those of a SaveResult.
	parsed  bool
	success bool
	id      string
	created bool
	errs    []apiError
}

// apiError is one element of Salesforce's error array. Top-level errors
// say errorCode, collection results statusCode.
type apiError struct {
	Message    string   `json:"message"`
	ErrorCode  string   `json:"errorCode"`
	StatusCode string   `json:"statusCode"`
	Fields     []string `json:"fields"`
}

func (e apiError) code() string {
	if e.ErrorCode != "" {
		return e.ErrorCode
	}
	return e.StatusCode
}

// saveResult is Salesforce's answer to a write of one record.
type saveResult struct {
	ID      string     `json:"id"`
	Success bool       `json:"success"`
	Created bool       `json:"created"`
	Errors  []apiError `json:"errors"`
}

// set records a SaveResult in a.
func (a *answer) set(r saveResult) {
	a.success, a.id, a.created, a.errs = r.Success, r.ID, r.Created, r.Errors
	// A success without an id is not what Salesforce documents.
	a.parsed = !r.Success || r.ID != ""
}

// parseErrors reads the error array of a status other than 2xx and 300.
func (a *answer) parseErrors() {
	a.parsed = json.Unmarshal(a.body, &a.errs) == nil && len(a.errs) > 0
}

// parseSave reads the SaveResult of a 2xx upsert answer, or the error
// array of any other status.
func (a *answer) parseSave() {
	switch {
	case a.status == http.StatusMultipleChoices:
		var urls []string
		a.parsed = json.Unmarshal(a.body, &urls) == nil
	case a.status >= 200 && a.status <= 299:
		var r saveResult
		if json.Unmarshal(a.body, &r) == nil {
			a.set(r)
		}
	default:
		a.parseErrors()
	}
}

// verdict is what an answer means for a delivery.
type verdict int

const (
	delivered verdict = iota
	// refresh: the session expired or was revoked; fetch another and send
	// the request once more.
	refresh
	// resend: the record exists and Salesforce refused to update
	// TaskSubtype, which it allows on create only; send again without it.
	resend
	retry
	dead
)

// retryCodes are Salesforce error codes that a later attempt may not get:
// the org's API limits (Salesforce answers them with 403), row locks held
// by another transaction, and outages.
var retryCodes = []string{"REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "SERVICE_UNAVAILABLE"}

// classify says what a Salesforce answer means: it is the one place that
// decides delivered, retry or dead for this target, for whole responses
// and for each result of a collection alike.
func classify(a *answer) verdict {
	for _, e := range a.errs {
		if slices.Contains(retryCodes, e.code()) {
			return retry
		}
		if e.code() == "INVALID_FIELD_FOR_INSERT_UPDATE" && (slices.Contains(e.Fields, "TaskSubtype") || strings.Contains(e.Message, "TaskSubtype")) {
			return resend
		}
	}
	switch s := a.status; {
	case s == http.StatusUnauthorized:
		return refresh
	case !a.parsed:
		// An HTML error page, truncated JSON: not Salesforce's documented
		// answer, whatever the status. Salesforce may have written the
		// record; the upsert's retry finds it.
		return retry
	case s >= 200 && s <= 299 && a.success:
		return delivered
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		return retry
	}
	// 300 (several records hold the key), 400 (the record is invalid), 403
	// other than the limits, 404 (no such object or field), and a
	// collection result that failed.
	return dead
}

// failure turns an answer whose verdict is retry, dead or refresh into
// the error the outbox acts on: what was asked (such as the record's
// object, rule and key), Salesforce's messages and the fields they name,
// and the body as the CRM's own message.
func (t *Target) failure(a *answer, v verdict, what string) error {
	var msg string
	switch {
	case a.status == http.StatusMultipleChoices:
		msg = fmt.Sprintf("several records hold this key in %s: make %s Unique so that each activity key is on one record",
			t.cfg.ExternalIDField, t.cfg.ExternalIDField)
	case len(a.errs) > 0:
		parts := make([]string, len(a.errs))
		for i, e := range a.errs {
			parts[i] = e.code() + ": " + e.Message
			if len(e.Fields) > 0 {
				parts[i] += " (fields " + strings.Join(e.Fields, ", ") + ")"
			}
		}
		msg = strings.Join(parts, "; ")
	case !a.parsed && a.status != 0:
		msg = "answer is not what Salesforce documents"
	default:
		msg = "failed"
	}
	if v == refresh {
		// Only after a new session was refused too: the connected app or
		// the user has lost access, which an admin must fix.
		msg = "a new session was refused too: " + msg
		v = dead
	}
	body := string(a.body)
	if len(body) > connector.MaxErrorBody {
		body = body[:connector.MaxErrorBody]
	}
	de := &connector.DeliveryError{
		Status: a.status,
		Body:   strings.TrimSpace(body),
		Err:    fmt.Errorf("%s: %s", what, msg),
	}
	if v == dead {
		return connector.Permanent(de)
	}
	wait := a.retryAfter
	if wait == 0 && t.limitExhausted() {
		wait = t.cfg.LimitWait
	}
	return connector.RetryLater(de, wait)
}

// limitExhausted reports whether the last answer said the org has no
// daily API requests left.
func (t *Target) limitExhausted() bool {
	used, max := t.Usage()
	return max > 0 && used >= max
}
