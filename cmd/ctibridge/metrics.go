package main

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ctibridge/ctibridge/outbox"
)

// metrics are the daemon's Prometheus metrics, on a registry of its own so
// that tests running several daemons never share them.
type metrics struct {
	reg      *prometheus.Registry
	events   *prometheus.CounterVec
	attempts *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	reloads  *prometheus.CounterVec
}

// Event outcomes, as counted by ctibridge_events_total.
const (
	outcomeAccepted      = "accepted"
	outcomeDuplicate     = "duplicate"
	outcomeMappingFailed = "mapping_failed"
	outcomeBadPayload    = "bad_payload"
	outcomeUnknownEvent  = "unknown_event"
	outcomeStorageError  = "storage_error"
	outcomeRefused       = "refused" // bad token, origin or size
	outcomeBusy          = "busy"    // server.max_in_flight reached
)

func newMetrics(m *Main) *metrics {
	x := &metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctibridge_events_total",
			Help: "Platform events received, by platform and outcome.",
		}, []string{"platform", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctibridge_delivery_attempts_total",
			Help: "Delivery attempts, by target and outcome (delivered, retry, dead).",
		}, []string{"target", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ctibridge_delivery_attempt_seconds",
			Help:    "How long delivery attempts took, by target.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"target"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctibridge_mapping_reloads_total",
			Help: "Mapping reloads, by result (ok, failed). A failed one keeps the previous mappings.",
		}, []string{"result"}),
	}
	x.reg.MustRegister(x.events, x.attempts, x.latency, x.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ctibridge_mapping_last_reload_failed",
			Help: "1 when the last mapping reload failed and older mappings are in use.",
		}, func() float64 {
			if m.mappings.Status().LastError != "" {
				return 1
			}
			return 0
		}),
		&outboxCollector{m: m},
	)
	return x
}

// attempt records a delivery attempt.
func (x *metrics) attempt(target string, a outbox.Attempt) {
	x.attempts.WithLabelValues(target, string(a.Outcome)).Inc()
	x.latency.WithLabelValues(target).Observe(a.Latency.Seconds())
}

func (x *metrics) handler() http.Handler {
	return promhttp.HandlerFor(x.reg, promhttp.HandlerOpts{Registry: x.reg})
}

// outboxCollector reads the outbox's counts and the targets' breakers at
// each scrape, so they are never stale.
type outboxCollector struct{ m *Main }

var (
	deliveriesDesc = prometheus.NewDesc("ctibridge_outbox_deliveries",
		"Deliveries in the outbox, by target and state.", []string{"target", "state"}, nil)
	oldestDesc = prometheus.NewDesc("ctibridge_outbox_oldest_waiting_seconds",
		"Age of the oldest delivery waiting (pending or retrying), by target.", []string{"target"}, nil)
	pausedDesc = prometheus.NewDesc("ctibridge_target_paused",
		"1 while a target's circuit breaker holds its deliveries back.", []string{"target"}, nil)
	failedEventsDesc = prometheus.NewDesc("ctibridge_events_mapping_failed",
		"Stored events whose mapping failed, waiting to be remapped.", nil, nil)
	gwsDesc = prometheus.NewDesc("ctibridge_gws_connected",
		"1 while the Genesys Web Services subscription is connected.", nil, nil)
)

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{deliveriesDesc, oldestDesc, pausedDesc, failedEventsDesc, gwsDesc} {
		ch <- d
	}
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, err := c.m.DB.Stats(ctx, time.Now()); err == nil {
		for _, t := range st.Targets {
			for state, n := range map[outbox.State]int{outbox.StatePending: t.Pending, outbox.StateRunning: t.Running,
				outbox.StateRetrying: t.Retrying, outbox.StateDelivered: t.Delivered, outbox.StateDead: t.Dead} {
				ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.GaugeValue, float64(n), t.Target, string(state))
			}
			ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, t.OldestWaitingAge.Seconds(), t.Target)
		}
		ch <- prometheus.MustNewConstMetric(failedEventsDesc, prometheus.GaugeValue, float64(st.MappingFailed))
	}
	for name, s := range c.m.Dispatcher.Status() {
		paused := 0.0
		if s.Breaker != outbox.BreakerClosed {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(pausedDesc, prometheus.GaugeValue, paused, name)
	}
	if st := c.m.gwsStatus(); st != nil {
		connected := 0.0
		if st.Connected {
			connected = 1
		}
		ch <- prometheus.MustNewConstMetric(gwsDesc, prometheus.GaugeValue, connected)
	}
}
