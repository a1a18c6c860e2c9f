package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/httpjson"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/ingest"
	"github.com/ctibridge/ctibridge/connector"
)

// Outcomes of event posts refused before the ingest pipeline sees them, as
// counted by ctibridge_events_total beside the ingest.Outcome values.
const (
	outcomeRefused = "refused" // bad token, origin or size
	outcomeBusy    = "busy"    // server.max_in_flight reached
)

// storageRetryAfter is what a client is told to wait when the outbox
// cannot take a write.
const storageRetryAfter = "5"

// handleEvent accepts one platform event: it decodes it, maps the
// interaction it completes, and stores the raw event with its activities in
// one transaction before answering 202. A request that is refused stores
// nothing; one that is answered 202 is on disk.
func (s *Server) handleEvent(w http.ResponseWriter, r *http.Request) {
	platform := r.PathValue("platform")
	if _, ok := s.Pipeline.Decoders[platform]; !ok {
		httpjson.Error(w, http.StatusNotFound, fmt.Sprintf("unknown platform %q (known: %s)", platform,
			strings.Join(s.Pipeline.Platforms(), ", ")))
		return
	}
	if !s.Access.AuthorizeSource(w, r, platform) {
		s.Metrics.Event(platform, outcomeRefused)
		return
	}
	select {
	case s.inFlight <- struct{}{}:
		defer func() { <-s.inFlight }()
	default:
		// Saturated: say so at once rather than hold yet another request
		// and its body in memory. Platforms and bridges post again.
		s.Metrics.Event(platform, outcomeBusy)
		w.Header().Set("Retry-After", "1")
		httpjson.Error(w, http.StatusServiceUnavailable, fmt.Sprintf(
			"busy: %d events are being handled (server.max_in_flight); nothing was stored, post again", cap(s.inFlight)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		s.Metrics.Event(platform, outcomeRefused)
		if errors.As(err, &tooBig) {
			httpjson.Error(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body is larger than the limit of %d bytes", tooBig.Limit))
			return
		}
		httpjson.Error(w, http.StatusBadRequest, "reading request body: "+err.Error())
		return
	}
	res, err := s.Pipeline.Ingest(r.Context(), platform, body)
	var se ingest.StorageError
	switch {
	case errors.As(err, &se):
		s.Logger.Error("storing event failed", "platform", platform, "err", se.Err)
		w.Header().Set("Retry-After", storageRetryAfter)
		httpjson.Error(w, http.StatusServiceUnavailable, "storage unavailable, nothing was stored: "+se.Err.Error())
		return
	case errors.Is(err, connector.ErrUnknownEvent):
		httpjson.Error(w, http.StatusUnprocessableEntity, err.Error())
		return
	case err != nil:
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	status := http.StatusAccepted
	if res.Duplicate {
		status = http.StatusOK
	}
	httpjson.Write(w, status, res)
}

// handlePreflight answers a browser's CORS preflight for an event post.
func (s *Server) handlePreflight(w http.ResponseWriter, r *http.Request) {
	s.Access.PreflightSource(w, r, r.PathValue("platform"))
}
