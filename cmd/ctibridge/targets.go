package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/jsonl"
	"github.com/ctibridge/ctibridge/connector/webhook"
	"github.com/ctibridge/ctibridge/outbox"
)

var (
	_ connector.Target = (*jsonl.Target)(nil)
	_ connector.Target = (*webhook.Target)(nil)
)

// Quick retries inside one attempt, for blips; the outbox owns every
// longer wait.
const (
	quickRetries = 2
	quickWaitMin = 200 * time.Millisecond
	quickWaitMax = 2 * time.Second
)

// openTargets builds the configured targets as the dispatcher's targets.
func (m *Main) openTargets() ([]outbox.Target, error) {
	var out []outbox.Target
	for _, name := range m.Config.TargetNames() {
		tc := m.Config.Targets[name]
		var d connector.Target
		switch tc.Type {
		case config.TypeJSONL:
			t, err := jsonl.Open(tc.Path)
			if err != nil {
				return nil, fmt.Errorf("target %s: %w", name, err)
			}
			m.closers = append(m.closers, t)
			d = t
		case config.TypeWebhook:
			t, err := webhook.New(webhook.Config{
				URL:                    tc.URL,
				Secret:                 tc.Secret,
				Headers:                tc.Headers,
				TokenURL:               tc.TokenURL,
				ClientID:               tc.ClientID,
				ClientSecret:           tc.ClientSecret,
				Scopes:                 tc.Scopes,
				ConflictMeansDelivered: tc.ConflictMeansDelivered,
			}, newHTTPClient(tc.Timeout, m.Logger.With("target", name)))
			if err != nil {
				return nil, fmt.Errorf("target %s: %w", name, err)
			}
			d = t
		}
		policy := outbox.DefaultRetryPolicy()
		policy.MaxAttempts, policy.MaxAge = tc.MaxAttempts, tc.MaxAge
		out = append(out, outbox.Target{
			Name:            name,
			Concurrency:     tc.Concurrency,
			Retry:           policy,
			RateLimit:       tc.RateLimit,
			BreakerFailures: tc.BreakerFailures,
			BreakerCooldown: tc.BreakerCooldown,
			Send: func(ctx context.Context, msg outbox.Message) (outbox.Receipt, error) {
				r, err := d.Deliver(ctx, connector.Delivery{Key: msg.Key, Body: msg.Payload, Attempt: msg.Attempt})
				return outbox.Receipt{Status: r.Status, RecordID: r.RecordID}, err
			},
		})
	}
	return out, nil
}

// lease returns a lease that outlasts the slowest target's longest attempt,
// so that a delivery still in flight is never handed out twice. One
// attempt is at most four requests (with OAuth: a token fetch, the send, a
// second fetch and a second send after a 401), each of which may time out
// on every quick retry and wait between them.
func (m *Main) lease() time.Duration {
	longest := time.Duration(0)
	for _, tc := range m.Config.Targets {
		longest = max(longest, tc.Timeout)
	}
	perRequest := (quickRetries+1)*longest + quickRetries*quickWaitMax
	return max(5*time.Minute, 2*4*perRequest)
}

// newHTTPClient returns an HTTP client that retries a failed request a
// couple of times within one attempt: network errors, 408, 425, 429 and
// 5xx, with jittered waits, and never waits longer than quickWaitMax, so a
// long Retry-After is left to the outbox. The last response is returned as
// it is, for the target to classify.
func newHTTPClient(timeout time.Duration, logger *slog.Logger) *http.Client {
	c := retryablehttp.NewClient()
	c.HTTPClient = cleanhttp.DefaultPooledClient()
	c.HTTPClient.Timeout = timeout
	c.Logger = logger
	c.RetryMax = quickRetries
	c.RetryWaitMin = quickWaitMin
	c.RetryWaitMax = quickWaitMax
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	c.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err != nil {
			return retryablehttp.ErrorPropagatedRetryPolicy(ctx, resp, err)
		}
		if connector.Classify(resp.StatusCode) != connector.Retry {
			return false, nil
		}
		// A target asking for more than a short pause gets it from the
		// outbox, where waiting holds no worker.
		if connector.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()) > quickWaitMax {
			return false, nil
		}
		return true, nil
	}
	c.Backoff = func(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
		if resp != nil {
			if d := connector.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); d > 0 {
				return d // at most quickWaitMax: CheckRetry stops longer ones
			}
		}
		d := retryablehttp.DefaultBackoff(min, max, attempt, nil)
		return d/2 + rand.N(d/2+1) // equal jitter
	}
	return c.StandardClient()
}
