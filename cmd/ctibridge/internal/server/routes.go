package server

import (
	"context"
	"net/http"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/httpjson"
	"github.com/ctibridge/ctibridge/connector/bridge"
	"github.com/ctibridge/ctibridge/connector/genesys/cometd"
	"github.com/ctibridge/ctibridge/outbox"
)

// routes is the daemon's whole HTTP surface.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events/{platform}", s.handleEvent)
	mux.HandleFunc("OPTIONS /v1/events/{platform}", s.handlePreflight)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", s.Metrics.Handler())
	mux.Handle("GET /bridge/{file}", bridge.Handler())
	s.Dial.Register(mux)
	return mux
}

// handleHealthz answers as long as the process serves HTTP.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz answers 200 when events can be accepted: the database takes
// a write and a mapping set is loaded. It also shows each target's health;
// a paused target does not make the daemon unready, since events are still
// accepted and kept for it.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	res := Readiness{Database: "ok", Mappings: "ok", Targets: s.Targets(), GWS: s.GWS()}
	if h := s.DB.Health(); h.DiskFull {
		res.Disk = &DiskStatus{Full: true, Since: h.Since}
	}
	status := http.StatusOK
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.DB.Probe(ctx, s.Now()); err != nil {
		res.Database, status = err.Error(), http.StatusServiceUnavailable
	}
	st := s.Mappings.Status()
	res.MappingStatus = MappingStatus{Rules: st.Rules, LoadedAt: st.LoadedAt, LastErrorAt: st.LastErrorAt,
		Reloads: st.Reloads, Failures: st.Failures}
	if s.Mappings.Current() == nil {
		res.Mappings, status = "no mapping set loaded", http.StatusServiceUnavailable
	} else if st.LastError != "" {
		res.Mappings = "ok, but the last reload failed; the previous mappings are in use " +
			"(the admin API's /admin/api/mappings says why)"
	}
	httpjson.Write(w, status, res)
}

// Readiness is the body of /readyz.
type Readiness struct {
	Database      string        `json:"database"`
	Mappings      string        `json:"mappings"`
	MappingStatus MappingStatus `json:"mappingStatus"`
	// Disk is set while events are being refused for lack of space (the
	// database is then 503 too).
	Disk    *DiskStatus                    `json:"disk,omitempty"`
	Targets map[string]outbox.TargetStatus `json:"targets"`
	// GWS is the Genesys Web Services subscription's health, when one is
	// configured. Its being down does not make the daemon unready: posted
	// events are still accepted, and taking the daemon out of a load
	// balancer would not bring GWS back. Alert on gws.connected instead.
	GWS *cometd.Status `json:"gws,omitempty"`
}

// DiskStatus says since when the disk has been full.
type DiskStatus struct {
	Full  bool      `json:"full"`
	Since time.Time `json:"since"`
}

// MappingStatus is what /readyz, which anyone who reaches the ingest port
// may read, says of the mappings: counts and times, never the files' paths
// or a failed reload's message, which quotes mapping text (and so may hold
// customer data). The admin listener shows those.
type MappingStatus struct {
	Rules       int       `json:"rules"`
	LoadedAt    time.Time `json:"loadedAt"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	Reloads     int       `json:"reloads"`
	Failures    int       `json:"failures"`
}
