package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxAnswer is how much of a CRM's successful answer is read.
const maxAnswer = 1 << 20

// HTTPClient returns the client a CRM target sends with: a copy of client,
// or one with timeout when client is nil, that does not follow redirects,
// because a redirect would resend a POST or PATCH as a GET, or to another
// host with the credentials.
func HTTPClient(client *http.Client, timeout time.Duration) *http.Client {
	c := http.Client{Timeout: timeout}
	if client != nil {
		c = *client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// JSONRequest builds a request that accepts JSON and whose body, when body
// is not nil, is body as JSON. Its errors are permanent (a value that does
// not encode fails the same way on every attempt) and show only redacted
// of the URL.
func JSONRequest(ctx context.Context, method, url string, body any, redacted string) (*http.Request, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, Permanent(fmt.Errorf("encode record: %w", err))
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(payload))
	if err != nil {
		return nil, Permanent(fmt.Errorf("build request: %w", ScrubURL(err, redacted)))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ctibridge")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// Send sends req with client. A transport error (the network, a timeout, a
// cancelled ctx) is a retryable *DeliveryError that shows only redacted of
// the URL.
func Send(client *http.Client, req *http.Request, redacted string) (*http.Response, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, &DeliveryError{Err: ScrubURL(err, redacted)}
	}
	return resp, nil
}

// ReadJSON reads a successful answer's JSON into out, and closes the body.
// On error it returns the start of the body, for a *DeliveryError that
// keeps what the CRM sent instead.
func ReadJSON(resp *http.Response, out any) (body string, err error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err == nil {
		err = json.Unmarshal(b, out)
	}
	if err != nil {
		return string(b[:min(len(b), MaxErrorBody)]), err
	}
	return "", nil
}
