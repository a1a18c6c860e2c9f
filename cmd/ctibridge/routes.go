package main

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/ctibridge/ctibridge/connector/bridge"
	"github.com/ctibridge/ctibridge/connector/genesys/cometd"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// routes is the daemon's whole HTTP surface.
func (m *Main) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events/{platform}", m.handleEvent)
	mux.HandleFunc("OPTIONS /v1/events/{platform}", m.handlePreflight)
	mux.HandleFunc("GET /healthz", m.handleHealthz)
	mux.HandleFunc("GET /readyz", m.handleReadyz)
	mux.Handle("GET /metrics", m.metrics.handler())
	mux.Handle("GET /bridge/{file}", bridge.Handler())
	mux.HandleFunc("GET /v1/agents/{agent}/commands", m.handleCommands)
	mux.HandleFunc("POST /v1/dial", m.handleDial)
	mux.HandleFunc("OPTIONS /v1/dial", m.handleDialPreflight)
	return mux
}

// handleHealthz answers as long as the process serves HTTP.
func (m *Main) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz answers 200 when events can be accepted: the database takes
// a write and a mapping set is loaded. It also shows each target's health;
// a paused target does not make the daemon unready, since events are still
// accepted and kept for it.
func (m *Main) handleReadyz(w http.ResponseWriter, r *http.Request) {
	res := readiness{Database: "ok", Mappings: "ok", Targets: m.Dispatcher.Status(), GWS: m.gwsStatus()}
	status := http.StatusOK
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := m.DB.Probe(ctx, time.Now()); err != nil {
		res.Database, status = err.Error(), http.StatusServiceUnavailable
	}
	res.MappingStatus = m.mappings.Status()
	if m.mappings.Current() == nil {
		res.Mappings, status = "no mapping set loaded", http.StatusServiceUnavailable
	} else if res.MappingStatus.LastError != "" {
		res.Mappings = "ok, but the last reload failed; the previous mappings are in use"
	}
	writeJSON(w, status, res)
}

type readiness struct {
	Database      string                         `json:"database"`
	Mappings      string                         `json:"mappings"`
	MappingStatus mapping.Status                 `json:"mappingStatus"`
	Targets       map[string]outbox.TargetStatus `json:"targets"`
	// GWS is the Genesys Web Services subscription's health, when one is
	// configured. Its being down does not make the daemon unready: posted
	// events are still accepted, and taking the daemon out of a load
	// balancer would not bring GWS back. Alert on gws.connected instead.
	GWS *cometd.Status `json:"gws,omitempty"`
}

// writeJSON writes v as the JSON response body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes the {"error": msg} body every error response has.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
