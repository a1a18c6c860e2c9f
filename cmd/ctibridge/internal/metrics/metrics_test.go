package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/metrics"
	"github.com/ctibridge/ctibridge/connector/genesys/cometd"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// t0 is the tests' fixed date for rows whose age is not read.
var t0 = time.Date(2001, 2, 3, 9, 0, 0, 0, time.UTC)

func openDB(t *testing.T) *outbox.DB {
	t.Helper()
	db := outbox.NewDB(filepath.Join(t.TempDir(), "outbox.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// accept stores an event received at "at" with one delivery of key to
// target, and, unless o is empty, claims it and records an attempt with
// outcome o.
func accept(t *testing.T, db *outbox.DB, target, key string, at time.Time, o outbox.Outcome) {
	t.Helper()
	ctx := context.Background()
	ev := outbox.Event{Platform: "test", Key: key, Type: "END", ReceivedAt: at, Body: []byte(`{}`)}
	if _, err := db.Accept(ctx, ev, []outbox.NewDelivery{{Target: target, Key: key, Payload: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if o == "" {
		return
	}
	msgs, err := db.Claim(ctx, target, 1, at, time.Minute)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("claim %s = %+v, %v; want %s", target, msgs, err, key)
	}
	if err := db.Record(ctx, msgs[0], outbox.Attempt{Outcome: o, StartedAt: at}, at); err != nil {
		t.Fatal(err)
	}
}

// scrape reads the exposition of h: each sample's value by its name and
// labels as written, such as `ctibridge_events_total{outcome="x",platform="y"}`.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("scrape = %d %s", w.Code, w.Body)
	}
	samples := map[string]float64{}
	for line := range strings.Lines(w.Body.String()) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

// sources reads db, with every target's breaker closed, mappings loaded
// and no GWS subscription.
func sources(db *outbox.DB) metrics.Sources {
	return metrics.Sources{
		DB:       db,
		Targets:  func() map[string]outbox.TargetStatus { return nil },
		Mappings: func() mapping.Status { return mapping.Status{} },
		GWS:      func() *cometd.Status { return nil },
	}
}

func TestMetrics_CountersHaveTheirLabels(t *testing.T) {
	m := metrics.New(sources(openDB(t)))
	m.Event("five9", "accepted")
	m.Event("five9", "accepted")
	m.Event("genesys", "busy")
	m.Attempt("crm", outbox.Attempt{Outcome: outbox.OutcomeDelivered, Latency: 30 * time.Millisecond})
	m.Attempt("crm", outbox.Attempt{Outcome: outbox.OutcomeRetry, Latency: 2 * time.Second})
	m.Attempt("erp", outbox.Attempt{Outcome: outbox.OutcomeDead, Latency: time.Millisecond})
	m.Reload("ok")
	m.Reload("failed")
	m.Reload("failed")

	got := scrape(t, m.Handler())
	want := map[string]float64{
		`ctibridge_events_total{outcome="accepted",platform="five9"}`:              2,
		`ctibridge_events_total{outcome="busy",platform="genesys"}`:                1,
		`ctibridge_delivery_attempts_total{outcome="delivered",target="crm"}`:      1,
		`ctibridge_delivery_attempts_total{outcome="retry",target="crm"}`:          1,
		`ctibridge_delivery_attempts_total{outcome="dead",target="erp"}`:           1,
		`ctibridge_delivery_attempt_seconds_count{target="crm"}`:                   2,
		`ctibridge_delivery_attempt_seconds_sum{target="crm"}`:                     2.03,
		`ctibridge_delivery_attempt_seconds_bucket{target="crm",le="0.0125"}`:      0,
		`ctibridge_delivery_attempt_seconds_bucket{target="crm",le="0.03125"}`:     1,
		`ctibridge_delivery_attempt_seconds_bucket{target="crm",le="1.220703125"}`: 1,
		`ctibridge_delivery_attempt_seconds_bucket{target="crm",le="+Inf"}`:        2,
		`ctibridge_mapping_reloads_total{result="ok"}`:                             1,
		`ctibridge_mapping_reloads_total{result="failed"}`:                         2,
		`ctibridge_mapping_last_reload_failed`:                                     0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "ctibridge_events_total") && strings.Contains(k, `platform="five9"`) && !strings.Contains(k, "accepted") {
			t.Errorf("unexpected sample %s", k)
		}
	}
	// The registry is the Metrics' own: a second one starts from zero.
	if n := scrape(t, metrics.New(sources(openDB(t))).Handler())[`ctibridge_events_total{outcome="accepted",platform="five9"}`]; n != 0 {
		t.Errorf("a new Metrics counts %v accepted events, want 0", n)
	}
}

func TestMetrics_OutboxBreakersMappingsAndGWS(t *testing.T) {
	db := openDB(t)
	accept(t, db, "crm", "delivered-1", t0, outbox.OutcomeDelivered)
	accept(t, db, "crm", "delivered-2", t0, outbox.OutcomeDelivered)
	accept(t, db, "crm", "dead", t0, outbox.OutcomeDead)
	accept(t, db, "erp", "retrying", t0, outbox.OutcomeRetry)
	// The collector dates ages by the real clock: this pending delivery
	// is an hour old by it.
	accept(t, db, "erp", "pending", time.Now().Add(-time.Hour), "")
	if _, err := db.Accept(context.Background(), outbox.Event{Platform: "test", Key: "unmapped", Type: "END",
		ReceivedAt: t0, Body: []byte(`{}`), MappingError: "rule x: boom"}, nil); err != nil {
		t.Fatal(err)
	}

	src := sources(db)
	src.Targets = func() map[string]outbox.TargetStatus {
		return map[string]outbox.TargetStatus{"crm": {Breaker: outbox.BreakerOpen}, "erp": {Breaker: outbox.BreakerClosed}}
	}
	src.Mappings = func() mapping.Status { return mapping.Status{LastError: "crm.toml:3: bad"} }
	src.GWS = func() *cometd.Status { return &cometd.Status{State: "connected", Connected: true} }
	got := scrape(t, metrics.New(src).Handler())

	want := map[string]float64{
		`ctibridge_outbox_deliveries{state="delivered",target="crm"}`: 2,
		`ctibridge_outbox_deliveries{state="dead",target="crm"}`:      1,
		`ctibridge_outbox_deliveries{state="pending",target="crm"}`:   0,
		`ctibridge_outbox_deliveries{state="running",target="crm"}`:   0,
		`ctibridge_outbox_deliveries{state="retrying",target="crm"}`:  0,
		`ctibridge_outbox_deliveries{state="retrying",target="erp"}`:  1,
		`ctibridge_outbox_deliveries{state="pending",target="erp"}`:   1,
		`ctibridge_outbox_deliveries{state="delivered",target="erp"}`: 0,
		`ctibridge_outbox_oldest_waiting_seconds{target="crm"}`:       0,
		`ctibridge_events_mapping_failed`:                             1,
		`ctibridge_target_paused{target="crm"}`:                       1,
		`ctibridge_target_paused{target="erp"}`:                       0,
		`ctibridge_mapping_last_reload_failed`:                        1,
		`ctibridge_gws_connected`:                                     1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// erp's oldest waiting is the retrying one, of t0, older than the
	// pending one: at least the hour of the pending one.
	if age := got[`ctibridge_outbox_oldest_waiting_seconds{target="erp"}`]; age < 3600 {
		t.Errorf("erp oldest waiting = %vs, want at least an hour", age)
	}

	// A disconnected GWS reads 0; none configured, no sample at all.
	src.GWS = func() *cometd.Status { return &cometd.Status{State: "retrying"} }
	if g, ok := scrape(t, metrics.New(src).Handler())[`ctibridge_gws_connected`]; !ok || g != 0 {
		t.Errorf("ctibridge_gws_connected while retrying = %v (present %v), want 0", g, ok)
	}
	src.GWS = func() *cometd.Status { return nil }
	if _, ok := scrape(t, metrics.New(src).Handler())[`ctibridge_gws_connected`]; ok {
		t.Error("ctibridge_gws_connected is exposed without a GWS subscription")
	}
}
