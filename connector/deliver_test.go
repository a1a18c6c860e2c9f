package connector_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

func TestCheckResponse(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		status     int
		retryAfter string
		wantErr    bool
		permanent  bool
		wait       time.Duration
	}{
		{200, "", false, false, 0},
		{201, "", false, false, 0},
		{204, "", false, false, 0},
		{400, "", true, true, 0},
		{401, "", true, true, 0},
		{404, "", true, true, 0},
		{408, "", true, false, 0},
		{409, "", true, true, 0},
		{425, "", true, false, 0},
		{429, "7", true, false, 7 * time.Second},
		{429, "Sat, 21 Nov 2026 12:01:00 GMT", true, false, time.Minute},
		{500, "", true, false, 0},
		{501, "", true, true, 0},
		{502, "", true, false, 0},
		{503, "garbage", true, false, 0},
		{504, "-3", true, false, 0},
	}
	for _, tt := range tests {
		resp := &http.Response{
			StatusCode: tt.status,
			Header:     http.Header{"Retry-After": {tt.retryAfter}},
			Body:       io.NopCloser(strings.NewReader(`{"message":"nope"}`)),
		}
		err := connector.CheckResponse(resp, now)
		if (err != nil) != tt.wantErr {
			t.Fatalf("CheckResponse(%d) = %v, want error %v", tt.status, err, tt.wantErr)
		}
		if err == nil {
			continue
		}
		var de *connector.DeliveryError
		if !errors.As(err, &de) {
			t.Fatalf("CheckResponse(%d) = %T, want *DeliveryError", tt.status, err)
		}
		if got := de.Permanent(); got != tt.permanent {
			t.Errorf("CheckResponse(%d).Permanent() = %v, want %v", tt.status, got, tt.permanent)
		}
		if got := de.RetryAfter(); got != tt.wait {
			t.Errorf("CheckResponse(%d, Retry-After %q).RetryAfter() = %v, want %v", tt.status, tt.retryAfter, got, tt.wait)
		}
		if de.Body != `{"message":"nope"}` {
			t.Errorf("CheckResponse(%d) kept body %q, want the CRM's message", tt.status, de.Body)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		want   connector.Class
	}{
		{200, connector.Delivered}, {201, connector.Delivered}, {204, connector.Delivered}, {299, connector.Delivered},
		{301, connector.Rejected}, {304, connector.Rejected},
		{400, connector.Rejected}, {403, connector.Rejected}, {404, connector.Rejected}, {410, connector.Rejected},
		{422, connector.Rejected},
		{401, connector.Unauthorized},
		{409, connector.Conflict},
		{408, connector.Retry}, {425, connector.Retry}, {429, connector.Retry},
		{500, connector.Retry}, {502, connector.Retry}, {503, connector.Retry}, {504, connector.Retry}, {599, connector.Retry},
		{501, connector.Rejected},
		{0, connector.Rejected}, {100, connector.Rejected},
	}
	for _, tt := range tests {
		if got := connector.Classify(tt.status); got != tt.want {
			t.Errorf("Classify(%d) = %d, want %d", tt.status, got, tt.want)
		}
	}
}

func TestCheckResponse_TruncatesBody(t *testing.T) {
	resp := &http.Response{
		StatusCode: 400,
		Body:       io.NopCloser(strings.NewReader(strings.Repeat("x", 10_000))),
	}
	var de *connector.DeliveryError
	if !errors.As(connector.CheckResponse(resp, time.Now()), &de) {
		t.Fatal("want a DeliveryError")
	}
	if len(de.Body) != connector.MaxErrorBody {
		t.Errorf("kept %d bytes of body, want %d", len(de.Body), connector.MaxErrorBody)
	}
}

func TestPermanent(t *testing.T) {
	cause := errors.New("bad credentials file")
	err := connector.Permanent(cause)
	var de *connector.DeliveryError
	if !errors.As(err, &de) || !de.Permanent() {
		t.Fatalf("Permanent(%v) is not permanent: %#v", cause, err)
	}
	if !errors.Is(err, cause) {
		t.Errorf("Permanent(err) does not unwrap to err")
	}
	retry := &connector.DeliveryError{Status: 503}
	if p := connector.Permanent(retry); !p.(*connector.DeliveryError).Permanent() || retry.Permanent() {
		t.Errorf("Permanent must mark a copy, leaving the original retryable")
	}
}

func TestRetryLater(t *testing.T) {
	perm := connector.Permanent(&connector.DeliveryError{Status: 423, Body: "locked"})
	err := connector.RetryLater(perm, 2*time.Second)
	var de *connector.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("RetryLater returned %T, want *connector.DeliveryError", err)
	}
	if de.Permanent() || de.RetryAfter() != 2*time.Second || de.Status != 423 || de.Body != "locked" {
		t.Errorf("connector.RetryLater(permanent 423, 2s) = permanent %v, wait %v, %d %q; want retryable after 2s, 423 \"locked\"",
			de.Permanent(), de.RetryAfter(), de.Status, de.Body)
	}
	if !perm.(*connector.DeliveryError).Permanent() {
		t.Error("RetryLater changed the error it was given")
	}
	cause := errors.New("boom")
	if err := connector.RetryLater(cause, -time.Second); !errors.Is(err, cause) || err.(*connector.DeliveryError).RetryAfter() != 0 {
		t.Errorf("connector.RetryLater(plain error, -1s) = %v, want it wrapped with no wait", err)
	}
}
