package metrics

import (
	"sort"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/outbox"
)

// recentMinutes is how far back Recent goes: the dashboard's sparklines
// show the last hour.
const recentMinutes = 60

// Activity is the last hour of the daemon's work, one value a minute,
// oldest first, the current minute last: what the dashboard draws.
type Activity struct {
	// Until is the start of the last minute.
	Until time.Time `json:"until"`
	// Events counts the events accepted (mapped and stored) each minute.
	Events  []int                     `json:"events"`
	Targets map[string]TargetActivity `json:"targets"`
}

// TargetActivity is one target's last hour.
type TargetActivity struct {
	Delivered []int `json:"delivered"`
	Failed    []int `json:"failed"`
	// Throttled counts the failed attempts the CRM answered 429 or 503.
	Throttled []int `json:"throttled"`
	// LatencyMS is the mean attempt latency, 0 for a minute without any.
	LatencyMS []float64 `json:"latencyMs"`
}

// recent keeps per-minute counts in a ring of recentMinutes buckets.
type recent struct {
	mu      sync.Mutex
	events  [recentMinutes]bucket
	targets map[string]*[recentMinutes]bucket
}

// bucket is one minute's counts; minute is its Unix minute, so that a
// bucket left from an earlier hour reads as empty.
type bucket struct {
	minute                       int64
	n, delivered, failed, thrott int
	latency                      time.Duration
}

// at returns the bucket of minute in ring, emptied when it held an older
// minute, or nil when it holds a newer one: minute is over an hour old.
func at(ring *[recentMinutes]bucket, minute int64) *bucket {
	b := &ring[(minute%recentMinutes+recentMinutes)%recentMinutes]
	switch {
	case b.minute > minute:
		return nil
	case b.minute < minute:
		*b = bucket{minute: minute}
	}
	return b
}

func unixMinute(t time.Time) int64 { return t.Unix() / 60 }

func (r *recent) event(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := at(&r.events, unixMinute(now)); b != nil {
		b.n++
	}
}

func (r *recent) attempt(target string, a outbox.Attempt) {
	m := unixMinute(a.StartedAt.Add(a.Latency))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.targets == nil {
		r.targets = map[string]*[recentMinutes]bucket{}
	}
	ring := r.targets[target]
	if ring == nil {
		ring = &[recentMinutes]bucket{}
		r.targets[target] = ring
	}
	b := at(ring, m)
	if b == nil {
		return
	}
	b.n++
	b.latency += a.Latency
	switch {
	case a.Outcome == outbox.OutcomeDelivered:
		b.delivered++
	case a.Status == 429 || a.Status == 503:
		b.failed++
		b.thrott++
	default:
		b.failed++
	}
}

// activity reads the last hour as of now.
func (r *recent) activity(now time.Time) Activity {
	last := unixMinute(now)
	first := last - recentMinutes + 1
	r.mu.Lock()
	defer r.mu.Unlock()
	a := Activity{Until: time.Unix(last*60, 0).UTC(), Events: make([]int, recentMinutes),
		Targets: make(map[string]TargetActivity, len(r.targets))}
	read := func(ring *[recentMinutes]bucket, i int) bucket {
		m := first + int64(i)
		if b := ring[(m%recentMinutes+recentMinutes)%recentMinutes]; b.minute == m {
			return b
		}
		return bucket{}
	}
	for i := range recentMinutes {
		a.Events[i] = read(&r.events, i).n
	}
	names := make([]string, 0, len(r.targets))
	for name := range r.targets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t := TargetActivity{Delivered: make([]int, recentMinutes), Failed: make([]int, recentMinutes),
			Throttled: make([]int, recentMinutes), LatencyMS: make([]float64, recentMinutes)}
		for i := range recentMinutes {
			b := read(r.targets[name], i)
			t.Delivered[i], t.Failed[i], t.Throttled[i] = b.delivered, b.failed, b.thrott
			if b.n > 0 {
				t.LatencyMS[i] = float64(b.latency.Milliseconds()) / float64(b.n)
			}
		}
		a.Targets[name] = t
	}
	return a
}
