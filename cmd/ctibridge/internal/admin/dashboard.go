package admin

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/httpjson"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/metrics"
	"github.com/ctibridge/ctibridge/outbox"
)

// The dashboard is the operators' page at /admin/dashboard, behind the same
// login as the editor: whether call logs flow (per target: counts by state,
// the oldest waiting, the breaker, throttling, the last hour's throughput
// and latency), what failed (recent errors, dead deliveries with Retry,
// events whose mapping failed with Remap), and a search that follows one
// call from the platform's event to the CRM's record.

// tracePaths are the interaction's fields a search matches: its ids, its
// numbers, and its agent.
var tracePaths = []string{"$.id", "$.globalId", "$.ani", "$.dnis", "$.phone",
	"$.agent.id", "$.agent.username", "$.agent.email"}

// listLimit bounds the dead deliveries and failed events the dashboard
// lists; the outbox CLI and API page through the rest.
const listLimit = 50

// overview is GET /admin/api/overview: everything the dashboard shows but
// the trace.
type overview struct {
	Stats          outbox.Stats                   `json:"stats"`
	Breakers       map[string]outbox.TargetStatus `json:"breakers"`
	Activity       *metrics.Activity              `json:"activity,omitempty"`
	RecentFailures []outbox.FailedAttempt         `json:"recentFailures"`
	Dead           []outbox.Delivery              `json:"dead"`
	MappingFailed  []outbox.StoredEvent           `json:"mappingFailed"`
}

func (s *Server) handleOverview(w http.ResponseWriter, r *http.Request) {
	ctx, now := r.Context(), s.Now()
	var res overview
	var err error
	if res.Stats, err = s.DB.Stats(ctx, now); err != nil {
		s.adminError(w, r, err)
		return
	}
	if res.RecentFailures, err = s.DB.RecentFailures(ctx, 20); err != nil {
		s.adminError(w, r, err)
		return
	}
	if res.Dead, err = s.DB.List(ctx, outbox.Filter{State: outbox.StateDead, Limit: listLimit}); err != nil {
		s.adminError(w, r, err)
		return
	}
	if res.MappingFailed, err = s.DB.Events(ctx, outbox.EventFilter{State: outbox.EventMappingFailed, Limit: listLimit}); err != nil {
		s.adminError(w, r, err)
		return
	}
	// Lists are [] rather than null when empty: the page maps over them.
	res.RecentFailures = append([]outbox.FailedAttempt{}, res.RecentFailures...)
	res.Dead = append([]outbox.Delivery{}, res.Dead...)
	res.MappingFailed = append([]outbox.StoredEvent{}, res.MappingFailed...)
	if s.Breakers != nil {
		res.Breakers = s.Breakers()
	}
	if s.Activity != nil {
		a := s.Activity(now)
		res.Activity = &a
	}
	w.Header().Set("Cache-Control", "no-store")
	httpjson.Write(w, http.StatusOK, res)
}

// tracedEvent is one event of a trace as the dashboard shows it.
type tracedEvent struct {
	outbox.StoredEvent
	Body        json.RawMessage     `json:"body"`
	Interaction json.RawMessage     `json:"interaction,omitempty"`
	Deliveries  []outbox.ShowResult `json:"deliveries"`
}

// handleTrace is GET /admin/api/trace?q=: the events whose interaction has
// q as its id, a number or its agent, newest first, each with its
// deliveries and their attempts. A phone number is also searched in E.164,
// as the platforms' numbers are stored.
func (s *Server) handleTrace(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" || len(q) > 200 {
		httpjson.Error(w, http.StatusBadRequest, "q: an interaction id, a phone number or an agent, up to 200 bytes")
		return
	}
	queries := []string{q}
	if e164 := s.e164(q); e164 != "" && e164 != q {
		queries = append(queries, e164)
	}
	out := []tracedEvent{}
	seen := map[int64]bool{}
	for _, q := range queries {
		evs, err := s.DB.Trace(r.Context(), q, tracePaths, 20)
		if err != nil {
			s.adminError(w, r, err)
			return
		}
		for _, e := range evs {
			if seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			t := tracedEvent{StoredEvent: e.StoredEvent, Deliveries: e.Deliveries}
			t.Body = jsonOrString(e.Body)
			if e.Interaction != nil {
				t.Interaction = e.Interaction
			}
			if t.Deliveries == nil {
				t.Deliveries = []outbox.ShowResult{}
			}
			out = append(out, t)
		}
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"q": q, "events": out})
}

// e164 returns q as an E.164 number when it reads as a phone number in the
// configured region, else "".
func (s *Server) e164(q string) string {
	if strings.Trim(q, "+0123456789 ()-./") != "" {
		return ""
	}
	n, err := phonenumbers.Parse(q, s.DefaultRegion)
	if err != nil || !phonenumbers.IsPossibleNumber(n) {
		return ""
	}
	return phonenumbers.Format(n, phonenumbers.E164)
}

// jsonOrString embeds b as JSON when it is, and as a JSON string otherwise.
func jsonOrString(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	q, _ := json.Marshal(string(b))
	return q
}

// handleDashboard serves the dashboard's page, or sends a browser without
// a session to the login.
func (s *editorSessions) handleDashboard(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.lookup(r)
	if !ok {
		http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
		return
	}
	pageHeaders(w)
	_ = editorPages.ExecuteTemplate(w, "dashboard.html", map[string]string{"CSRF": sess.csrf})
}
