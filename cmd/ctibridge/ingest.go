package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// storageRetryAfter is what a client is told to wait when the outbox
// cannot take a write.
const storageRetryAfter = "5"

// handleEvent accepts one platform event: it decodes it, maps the
// interaction it completes, and stores the raw event with its activities in
// one transaction before answering 202. A request that is refused stores
// nothing; one that is answered 202 is on disk.
func (m *Main) handleEvent(w http.ResponseWriter, r *http.Request) {
	platform := r.PathValue("platform")
	if _, ok := m.decoders[platform]; !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown platform %q (known: %s)", platform, m.platformList()))
		return
	}
	if !m.authorizeSource(w, r, platform) {
		m.metrics.events.WithLabelValues(platform, outcomeRefused).Inc()
		return
	}
	select {
	case m.inFlight <- struct{}{}:
		defer func() { <-m.inFlight }()
	default:
		// Saturated: say so at once rather than hold yet another request
		// and its body in memory. Platforms and bridges post again.
		m.metrics.events.WithLabelValues(platform, outcomeBusy).Inc()
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf(
			"busy: %d events are being handled (server.max_in_flight); nothing was stored, post again", cap(m.inFlight)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, m.Config.Server.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		m.metrics.events.WithLabelValues(platform, outcomeRefused).Inc()
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body is larger than the limit of %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "reading request body: "+err.Error())
		return
	}
	res, err := m.ingest(r.Context(), platform, body)
	var se storageError
	switch {
	case errors.As(err, &se):
		m.Logger.Error("storing event failed", "platform", platform, "err", se.err)
		w.Header().Set("Retry-After", storageRetryAfter)
		writeError(w, http.StatusServiceUnavailable, "storage unavailable, nothing was stored: "+se.err.Error())
		return
	case errors.Is(err, connector.ErrUnknownEvent):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	status := http.StatusAccepted
	if res.Duplicate {
		status = http.StatusOK
	}
	writeJSON(w, status, res)
}

// ingest decodes, maps and stores one event of platform, whatever brought
// it: an HTTP post or a subscription. It returns a storageError when the
// outbox cannot be read or written (nothing was stored; the event should
// come again), an error wrapping connector.ErrUnknownEvent or ErrBadPayload
// for an event that will never be accepted, and otherwise the stored
// event's id. Once it returns without error, the event is on disk.
func (m *Main) ingest(ctx context.Context, platform string, body []byte) (res ingestResponse, err error) {
	defer func() { m.metrics.events.WithLabelValues(platform, eventOutcome(res, err)).Inc() }()
	dec := m.decoders[platform]
	// A stateful source loads its snapshot through state, which takes the
	// interaction's lock; it is held until the event is stored, so that
	// two tabs posting events of one call apply them one at a time.
	var unlock func()
	defer func() {
		if unlock != nil {
			unlock()
		}
	}()
	state := func(key string) ([]byte, error) {
		if unlock != nil {
			return nil, errors.New("state loaded twice for one event")
		}
		unlock = m.states.lock(platform + "\x00" + key)
		b, err := m.DB.State(ctx, platform, key)
		if err != nil {
			return nil, storageError{err}
		}
		return b, nil
	}
	ev, err := dec.Decode(body, state)
	if err != nil {
		return ingestResponse{}, err
	}
	return m.store(ctx, ev, body)
}

// store maps ev and stores it with its activities.
func (m *Main) store(ctx context.Context, ev connector.Event, body []byte) (ingestResponse, error) {
	var err error

	stored := outbox.Event{Platform: ev.Platform, Key: ev.Key, Type: ev.Type, ReceivedAt: time.Now(), Body: body,
		StateKey: ev.StateKey, State: ev.State}
	if ev.Interaction != nil {
		if stored.Interaction, err = encodeInteraction(ev.Interaction); err != nil {
			return ingestResponse{}, err
		}
	}
	deliveries, err := encodeActivities(m.mappings.Current(), ev.Interaction)
	if err != nil {
		// Kept, not lost: the event is stored as mapping_failed, to be
		// mapped again once the mapping is fixed.
		stored.MappingError = err.Error()
	}
	res, err := m.DB.Accept(ctx, stored, deliveries)
	if err != nil {
		return ingestResponse{}, storageError{err}
	}
	if stored.MappingError != "" && !res.Duplicate {
		m.Logger.Warn("mapping failed; event kept as mapping_failed", "event_id", res.EventID,
			"platform", ev.Platform, "err", stored.MappingError)
	}
	if res.Enqueued > 0 {
		for _, d := range deliveries {
			m.Dispatcher.Notify(d.Target)
		}
	}
	return ingestResponse{ID: res.EventID, Duplicate: res.Duplicate, Activities: res.Enqueued,
		MappingError: stored.MappingError}, nil
}

// eventOutcome names how ingest ended, for ctibridge_events_total.
func eventOutcome(res ingestResponse, err error) string {
	var se storageError
	switch {
	case errors.As(err, &se):
		return outcomeStorageError
	case errors.Is(err, connector.ErrUnknownEvent):
		return outcomeUnknownEvent
	case err != nil:
		return outcomeBadPayload
	case res.Duplicate:
		return outcomeDuplicate
	case res.MappingError != "":
		return outcomeMappingFailed
	}
	return outcomeAccepted
}

// storageError marks a failure to read the outbox, as opposed to a bad
// payload.
type storageError struct{ err error }

func (e storageError) Error() string { return e.err.Error() }

type ingestResponse struct {
	ID         int64 `json:"id"`
	Duplicate  bool  `json:"duplicate"`
	Activities int   `json:"activities"`
	// MappingError says why the event produced no activities; the event is
	// stored all the same.
	MappingError string `json:"mappingError,omitempty"`
}

// encodeActivities applies set to in (nil makes nothing) and serializes
// each activity once: these bytes are sent on every attempt.
func encodeActivities(set *mapping.Set, in *connector.Interaction) ([]outbox.NewDelivery, error) {
	if in == nil {
		return nil, nil
	}
	acts, err := set.Apply(in)
	if err != nil {
		return nil, err
	}
	out := make([]outbox.NewDelivery, 0, len(acts))
	for _, a := range acts {
		b, err := marshal(a)
		if err != nil {
			return nil, fmt.Errorf("rule %q: encode activity: %w", a.Rule, err)
		}
		out = append(out, outbox.NewDelivery{Target: a.Target, Key: a.Key, Payload: b})
	}
	return out, nil
}

// encodeInteraction serializes in for storage with its event, without the
// raw payload, which the event keeps anyway.
func encodeInteraction(in *connector.Interaction) ([]byte, error) {
	c := *in
	c.Raw = nil
	return marshal(c)
}

// marshal is json.Marshal without HTML escaping: a CRM stores "a > b", not
// "a \u003e b".
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func (m *Main) platformList() string {
	names := make([]string, 0, len(m.decoders))
	for n := range m.decoders {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
