// Package metrics is the daemon's Prometheus metrics: events by outcome,
// delivery attempts and their latency, mapping reloads, and, read at each
// scrape, the outbox's counts, the targets' breakers and the GWS
// subscription.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/ingest"
	"github.com/ctibridge/ctibridge/connector/genesys/cometd"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// Sources are what the metrics read at each scrape.
type Sources struct {
	DB *outbox.DB
	// Targets returns each target's health (outbox.Dispatcher.Status).
	Targets func() map[string]outbox.TargetStatus
	// Mappings returns the mapping store's status.
	Mappings func() mapping.Status
	// GWS returns the GWS subscription's health, nil when there is none.
	GWS func() *cometd.Status
}

// Metrics are the daemon's Prometheus metrics, on a registry of its own so
// that tests running several daemons never share them.
type Metrics struct {
	recent   recent
	reg      *prometheus.Registry
	events   *prometheus.CounterVec
	attempts *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	reloads  *prometheus.CounterVec
	apiUsed  *prometheus.GaugeVec
	apiMax   *prometheus.GaugeVec
}

// New returns the metrics, reading src at each scrape.
func New(src Sources) *Metrics {
	x := &Metrics{
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
	x.apiUsed = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ctibridge_crm_api_requests_used",
		Help: "API requests the CRM org has used of its daily allowance, as the CRM last said (Salesforce Sforce-Limit-Info), by target.",
	}, []string{"target"})
	x.apiMax = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ctibridge_crm_api_requests_limit",
		Help: "The CRM org's daily API request allowance, as the CRM last said, by target.",
	}, []string{"target"})
	x.reg.MustRegister(x.events, x.attempts, x.latency, x.reloads, x.apiUsed, x.apiMax,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ctibridge_mapping_last_reload_failed",
			Help: "1 when the last mapping reload failed and older mappings are in use.",
		}, func() float64 {
			if src.Mappings().LastError != "" {
				return 1
			}
			return 0
		}),
		&outboxCollector{src: src},
	)
	return x
}

// Event counts an event of platform that ended with outcome (an
// ingest.Outcome, or the HTTP surface's own refusals).
func (x *Metrics) Event(platform, outcome string) {
	x.events.WithLabelValues(platform, outcome).Inc()
	if outcome == ingest.OutcomeAccepted {
		x.recent.event(time.Now())
	}
}

// Activity is the last hour of events and attempts, a minute a value, as
// of now.
func (x *Metrics) Activity(now time.Time) Activity {
	return x.recent.activity(now)
}

// CRMUsage records the API usage a CRM reported for target: used of max
// requests of its daily allowance.
func (x *Metrics) CRMUsage(target string, used, max int) {
	x.apiUsed.WithLabelValues(target).Set(float64(used))
	x.apiMax.WithLabelValues(target).Set(float64(max))
}

// Reload counts a mapping reload: result is "ok" or "failed".
func (x *Metrics) Reload(result string) {
	x.reloads.WithLabelValues(result).Inc()
}

// Attempt records a delivery attempt.
func (x *Metrics) Attempt(target string, a outbox.Attempt) {
	x.attempts.WithLabelValues(target, string(a.Outcome)).Inc()
	x.latency.WithLabelValues(target).Observe(a.Latency.Seconds())
	x.recent.attempt(target, a)
}

// Handler serves the metrics to Prometheus.
func (x *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(x.reg, promhttp.HandlerOpts{Registry: x.reg})
}

// outboxCollector reads the outbox's counts and the targets' breakers at
// each scrape, so they are never stale.
type outboxCollector struct{ src Sources }

var (
	deliveriesDesc = prometheus.NewDesc("ctibridge_outbox_deliveries",
		"Deliveries in the outbox, by target and state.", []string{"target", "state"}, nil)
	oldestDesc = prometheus.NewDesc("ctibridge_outbox_oldest_waiting_seconds",
		"Age of the oldest delivery waiting (pending or retrying), by target.", []string{"target"}, nil)
	pausedDesc = prometheus.NewDesc("ctibridge_target_paused",
		"1 while a target's circuit breaker holds its deliveries back.", []string{"target"}, nil)
	failedEventsDesc = prometheus.NewDesc("ctibridge_events_mapping_failed",
		"Stored events whose mapping failed, waiting to be remapped.", nil, nil)
	diskFullDesc = prometheus.NewDesc("ctibridge_outbox_disk_full",
		"1 while the outbox's disk is full: events are refused with 503 until space is back.", nil, nil)
	gwsDesc = prometheus.NewDesc("ctibridge_gws_connected",
		"1 while the Genesys Web Services subscription is connected.", nil, nil)
)

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{deliveriesDesc, oldestDesc, pausedDesc, failedEventsDesc, diskFullDesc, gwsDesc} {
		ch <- d
	}
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, err := c.src.DB.Stats(ctx, time.Now()); err == nil {
		for _, t := range st.Targets {
			for state, n := range map[outbox.State]int{outbox.StatePending: t.Pending, outbox.StateRunning: t.Running,
				outbox.StateRetrying: t.Retrying, outbox.StateDelivered: t.Delivered, outbox.StateDead: t.Dead} {
				ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.GaugeValue, float64(n), t.Target, string(state))
			}
			ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, t.OldestWaitingAge.Seconds(), t.Target)
		}
		ch <- prometheus.MustNewConstMetric(failedEventsDesc, prometheus.GaugeValue, float64(st.MappingFailed))
	}
	full := 0.0
	if c.src.DB.Health().DiskFull {
		full = 1
	}
	ch <- prometheus.MustNewConstMetric(diskFullDesc, prometheus.GaugeValue, full)
	for name, s := range c.src.Targets() {
		paused := 0.0
		if s.Breaker != outbox.BreakerClosed {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(pausedDesc, prometheus.GaugeValue, paused, name)
	}
	if st := c.src.GWS(); st != nil {
		connected := 0.0
		if st.Connected {
			connected = 1
		}
		ch <- prometheus.MustNewConstMetric(gwsDesc, prometheus.GaugeValue, connected)
	}
}
