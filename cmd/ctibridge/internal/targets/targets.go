// Package targets builds the configured delivery targets: each type's
// connector package from its configuration, the HTTP client it sends with,
// and the outbox's view of it (batches, retry schedule, breaker, lease).
package targets

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/dynamics"
	"github.com/ctibridge/ctibridge/connector/hubspot"
	"github.com/ctibridge/ctibridge/connector/jsonl"
	"github.com/ctibridge/ctibridge/connector/salesforce"
	"github.com/ctibridge/ctibridge/connector/servicenow"
	"github.com/ctibridge/ctibridge/connector/webhook"
	"github.com/ctibridge/ctibridge/connector/zendesk"
	"github.com/ctibridge/ctibridge/outbox"
)

var (
	_ connector.Target      = (*jsonl.Target)(nil)
	_ connector.Target      = (*webhook.Target)(nil)
	_ connector.BatchTarget = (*salesforce.Target)(nil)
	_ connector.BatchTarget = (*hubspot.Target)(nil)
	_ connector.BatchTarget = (*dynamics.Target)(nil)
	_ connector.Target      = (*servicenow.Target)(nil)
	_ connector.Target      = (*zendesk.Target)(nil)
)

// Quick retries inside one attempt, for blips; the outbox owns every
// longer wait.
const (
	quickRetries = 2
	quickWaitMin = 200 * time.Millisecond
	quickWaitMax = 2 * time.Second
)

// requestsPerAttempt bounds the requests one attempt of tc may make: with
// OAuth a token fetch, the send, a second fetch and a second send after a
// 401; a CRM target may also look the record or the caller up, link the
// record, or complete it in a second step; and a batch may look up the
// caller of each of its records (two tables in Dataverse).
func requestsPerAttempt(tc config.TargetConfig) int {
	switch tc.Type {
	case config.TypeJSONL, config.TypeWebhook:
		return 4
	}
	if matches(tc) {
		return 12 + 2*batchSize(tc)
	}
	return 12
}

// matches reports whether tc looks callers up by phone.
func matches(tc config.TargetConfig) bool {
	return (tc.Salesforce != nil && len(tc.Salesforce.MatchRules) > 0) ||
		(tc.HubSpot != nil && tc.HubSpot.Match != nil) ||
		(tc.Dynamics != nil && len(tc.Dynamics.MatchRules) > 0)
}

// Open builds every target of targets, by name, as the dispatcher's
// targets; usage is told each CRM's API usage as the CRM reports it. It
// returns the targets that must be closed (files), too.
func Open(targets map[string]config.TargetConfig, names []string, logger *slog.Logger,
	usage func(target string, used, max int)) ([]outbox.Target, []io.Closer, error) {
	var out []outbox.Target
	var closers []io.Closer
	for _, name := range names {
		tc := targets[name]
		d, err := New(name, tc, logger.With("target", name), usage)
		if err != nil {
			return nil, closers, err
		}
		if c, ok := d.(io.Closer); ok {
			closers = append(closers, c)
		}
		t := outbox.Target{
			Name:            name,
			Concurrency:     tc.Concurrency,
			Retry:           tc.RetryPolicy(),
			RateLimit:       tc.RateLimit,
			BreakerFailures: tc.BreakerFailures,
			BreakerCooldown: tc.BreakerCooldown,
			Send: func(ctx context.Context, msg outbox.Message) (outbox.Receipt, error) {
				r, err := d.Deliver(ctx, delivery(msg))
				return outbox.Receipt{Status: r.Status, RecordID: r.RecordID}, err
			},
		}
		if b, ok := d.(connector.BatchTarget); ok {
			t.Send, t.SendBatch, t.BatchSize = nil, sendBatch(b), batchSize(tc)
		}
		out = append(out, t)
	}
	return out, closers, nil
}

func delivery(msg outbox.Message) connector.Delivery {
	return connector.Delivery{Key: msg.Key, Body: msg.Payload, Attempt: msg.Attempt}
}

// sendBatch adapts a BatchTarget to the outbox.
func sendBatch(b connector.BatchTarget) outbox.SendBatchFunc {
	return func(ctx context.Context, ms []outbox.Message) ([]outbox.Receipt, []error) {
		ds := make([]connector.Delivery, len(ms))
		for i, msg := range ms {
			ds[i] = delivery(msg)
		}
		results := b.DeliverBatch(ctx, ds)
		receipts, errs := make([]outbox.Receipt, len(results)), make([]error, len(results))
		for i, r := range results {
			receipts[i], errs[i] = outbox.Receipt{Status: r.Result.Status, RecordID: r.Result.RecordID}, r.Err
		}
		return receipts, errs
	}
}

// matchBatch bounds a batch whose records each may need a caller search,
// so that one attempt stays short enough for its lease.
const matchBatch = 20

// batchSize is how many records one API call of tc takes.
func batchSize(tc config.TargetConfig) int {
	if matches(tc) {
		return matchBatch
	}
	switch tc.Type {
	case config.TypeSalesforce:
		return salesforce.MaxBatch
	case config.TypeHubSpot:
		return hubspot.MaxBatch
	}
	return 100 // Dataverse takes 1,000 a $batch; smaller batches spread its throttling
}

// New builds the target name of config tc. Its errors name the key, as
// targets.NAME.key. It sends nothing.
func New(name string, tc config.TargetConfig, logger *slog.Logger, usage func(target string, used, max int)) (connector.Target, error) {
	wrap := func(t connector.Target, err error) (connector.Target, error) {
		if err != nil {
			return nil, fmt.Errorf("targets.%s.%w", name, err)
		}
		return t, nil
	}
	retrying := newHTTPClient(tc.Timeout, logger)
	// A client without quick retries, for targets that look a record up
	// before they create it: a quick resend of a create after a lost
	// answer would skip the look-up and write twice.
	plain := cleanhttp.DefaultPooledClient()
	plain.Timeout = tc.Timeout
	switch tc.Type {
	case config.TypeJSONL:
		t, err := jsonl.Open(tc.Path)
		if err != nil {
			return nil, fmt.Errorf("targets.%s.path: %w", name, err)
		}
		return t, nil
	case config.TypeWebhook:
		return wrap(webhook.New(webhook.Config{
			URL:                    tc.URL,
			Secret:                 tc.Secret,
			Headers:                tc.Headers,
			TokenURL:               tc.TokenURL,
			ClientID:               tc.ClientID,
			ClientSecret:           tc.ClientSecret,
			Scopes:                 tc.Scopes,
			ConflictMeansDelivered: tc.ConflictMeansDelivered,
		}, retrying))
	case config.TypeSalesforce:
		o := tc.Salesforce
		return wrap(salesforce.New(salesforce.Config{
			LoginURL:        o.LoginURL,
			ClientID:        tc.ClientID,
			ClientSecret:    tc.ClientSecret,
			PrivateKeyFile:  o.PrivateKeyFile,
			Username:        o.Username,
			Audience:        o.Audience,
			SessionTimeout:  o.SessionTimeout,
			APIVersion:      o.APIVersion,
			Object:          o.Object,
			ExternalIDField: o.ExternalIDField,
			TaskSubtype:     o.TaskSubtype,
			FieldLimits:     o.FieldLimits,
			LimitThreshold:  o.LimitThreshold,
			LimitWait:       o.LimitWait,
			OnUsage:         func(used, max int) { usage(name, used, max) },
			MatchRules:      o.MatchRules,
			MatchCacheTTL:   o.MatchCacheTTL,
			MatchMultiple:   o.MatchMultiple,
			MatchFlagField:  o.MatchFlagField,
		}, retrying))
	case config.TypeHubSpot:
		o := tc.HubSpot
		cfg := hubspot.Config{
			Token:            o.Token,
			RefreshToken:     o.RefreshToken,
			ClientID:         tc.ClientID,
			ClientSecret:     tc.ClientSecret,
			TokenURL:         tc.TokenURL,
			BaseURL:          o.BaseURL,
			ObjectsPath:      o.ObjectsPath,
			AssociationsPath: o.AssociationsPath,
			IDProperty:       o.IDProperty,
		}
		if o.Match != nil {
			cfg.Match = &hubspot.MatchConfig{Properties: o.Match.Properties, CacheFor: o.Match.CacheFor,
				Multiple: o.Match.Multiple, FlagProperty: o.Match.FlagProperty}
		}
		return wrap(hubspot.New(cfg, retrying))
	case config.TypeDynamics:
		o := tc.Dynamics
		// A resent create answers 412 and is delivered: quick retries are
		// safe here.
		return wrap(dynamics.New(dynamics.Config{
			URL:           tc.URL,
			TenantID:      o.TenantID,
			TokenURL:      tc.TokenURL,
			ClientID:      tc.ClientID,
			ClientSecret:  tc.ClientSecret,
			Scope:         o.Scope,
			APIVersion:    o.APIVersion,
			EntitySets:    o.EntitySets,
			LeaveOpen:     o.LeaveOpen,
			MatchRules:    o.MatchRules,
			MatchCacheTTL: o.MatchCacheTTL,
			MatchMultiple: o.MatchMultiple,
		}, retrying))
	case config.TypeServiceNow:
		o := tc.ServiceNow
		return wrap(servicenow.New(servicenow.Config{
			URL:              tc.URL,
			Username:         o.Username,
			Password:         o.Password,
			ClientID:         tc.ClientID,
			ClientSecret:     tc.ClientSecret,
			TokenURL:         tc.TokenURL,
			Table:            o.Table,
			CorrelationField: o.CorrelationField,
			CallerField:      o.CallerField,
			MatchTable:       o.MatchTable,
			MatchColumns:     o.MatchColumns,
		}, plain))
	case config.TypeZendesk:
		o := tc.Zendesk
		return wrap(zendesk.New(zendesk.Config{
			URL:        tc.URL,
			Email:      o.Email,
			APIToken:   o.APIToken,
			OAuthToken: o.OAuthToken,
		}, plain))
	}
	return nil, fmt.Errorf("targets.%s.type: unknown type %q", name, tc.Type)
}

// Lease returns a lease that outlasts the slowest target's longest
// attempt, so that a delivery still in flight is never handed out twice:
// each of an attempt's requests may time out on every quick retry and wait
// between them.
func Lease(targets map[string]config.TargetConfig) time.Duration {
	longest := time.Duration(0)
	for _, tc := range targets {
		perRequest := (quickRetries+1)*tc.Timeout + quickRetries*quickWaitMax
		longest = max(longest, time.Duration(requestsPerAttempt(tc))*perRequest)
	}
	return max(5*time.Minute, 2*longest)
}

// debugLogger gives go-retryablehttp's messages to the log at debug level
// whatever their level: they carry the request's URL, whose query may hold
// a caller's number (a CRM search), and the dispatcher logs each failed
// attempt itself.
type debugLogger struct{ l *slog.Logger }

func (d debugLogger) Error(msg string, kv ...any) { d.l.Debug(msg, kv...) }
func (d debugLogger) Info(msg string, kv ...any)  { d.l.Debug(msg, kv...) }
func (d debugLogger) Debug(msg string, kv ...any) { d.l.Debug(msg, kv...) }
func (d debugLogger) Warn(msg string, kv ...any)  { d.l.Debug(msg, kv...) }

// newHTTPClient returns an HTTP client that retries a failed request a
// couple of times within one attempt: network errors, 408, 425, 429 and
// 5xx, with jittered waits, and never waits longer than quickWaitMax, so a
// long Retry-After is left to the outbox. The last response is returned as
// it is, for the target to classify.
func newHTTPClient(timeout time.Duration, logger *slog.Logger) *http.Client {
	c := retryablehttp.NewClient()
	c.HTTPClient = cleanhttp.DefaultPooledClient()
	c.HTTPClient.Timeout = timeout
	c.Logger = debugLogger{logger}
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
