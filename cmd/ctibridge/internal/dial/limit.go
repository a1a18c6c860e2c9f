package dial

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter allows each agent PerMinute dials a minute (a token bucket that
// holds a minute's worth), and refuses every dial of an agent for
// Quarantine once the limit is reached, as WWE's own
// service-client-api.rate-limit.voice.dial and rate-limit-quarantine-delay
// do: a page or script gone wrong cannot call customers in a loop.
type limiter struct {
	perMinute  int           // 0: no limit
	quarantine time.Duration // 0: refuse only until the next token

	mu     sync.Mutex
	agents map[string]*agentLimit
}

type agentLimit struct {
	bucket *rate.Limiter
	until  time.Time // quarantined until then
}

// maxIdleAgents bounds the limiters kept; past it, those of agents whose
// bucket is full again and who are not quarantined are dropped.
const maxIdleAgents = 10000

func newLimiter(perMinute int, quarantine time.Duration) *limiter {
	return &limiter{perMinute: perMinute, quarantine: quarantine, agents: map[string]*agentLimit{}}
}

// allow takes one dial of agent at now, or says how long the agent must
// wait.
func (l *limiter) allow(agent string, now time.Time) (ok bool, retryAfter time.Duration) {
	if l.perMinute <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.agents[agent]
	if a == nil {
		if len(l.agents) >= maxIdleAgents {
			l.sweep(now)
		}
		a = &agentLimit{bucket: rate.NewLimiter(rate.Every(time.Minute/time.Duration(l.perMinute)), l.perMinute)}
		l.agents[agent] = a
	}
	if now.Before(a.until) {
		return false, a.until.Sub(now)
	}
	if a.bucket.AllowN(now, 1) {
		return true, 0
	}
	if l.quarantine > 0 {
		a.until = now.Add(l.quarantine)
		return false, l.quarantine
	}
	r := a.bucket.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return false, wait
}

// sweep drops the limiters that hold nothing back.
func (l *limiter) sweep(now time.Time) {
	for agent, a := range l.agents {
		if !now.Before(a.until) && a.bucket.TokensAt(now) >= float64(l.perMinute) {
			delete(l.agents, agent)
		}
	}
}
