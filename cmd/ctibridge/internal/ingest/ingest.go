// Package ingest is the pipeline every platform event goes through,
// whatever brought it (an HTTP post, the Genesys Web Services subscription,
// the flush of a stale snapshot): decode it under its interaction's lock,
// map the interaction it completes, and store the raw event with its
// activities in one transaction. Once Ingest returns without error, the
// event is on disk; a refused event stores nothing.
//
// It also maps stored events again (Remap) and replays events without a
// daemon, for previews (Preview).
package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// Decoder turns a platform's event into a connector.Event.
type Decoder interface {
	Decode(body []byte, state connector.StateFunc) (connector.Event, error)
}

// Pipeline decodes, maps and stores events. Set its fields, then use it
// from any number of goroutines.
type Pipeline struct {
	DB *outbox.DB
	// Decoders are the platforms' decoders, by platform name.
	Decoders map[string]Decoder
	// Mappings returns the mapping set in use.
	Mappings func() *mapping.Set
	// Notify, when set, is told each target that has new deliveries.
	Notify func(target string)
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OnEvent, when set, is told how each event ended (an Outcome), for
	// metrics. It must not block.
	OnEvent func(platform, outcome string)
	// Link, when set, may fill in an interaction's who and what before it
	// is mapped and stored: click-to-dial links a call to the record the
	// agent dialed it from.
	Link func(ctx context.Context, in *connector.Interaction)

	states keyLocks // serializes the events of one interaction
}

// Result is what became of an event.
type Result struct {
	ID         int64 `json:"id"`
	Duplicate  bool  `json:"duplicate"`
	Activities int   `json:"activities"`
	// MappingError says why the event produced no activities; the event is
	// stored all the same.
	MappingError string `json:"mappingError,omitempty"`
}

// StorageError marks a failure to read or write the outbox, as opposed to
// a bad event: nothing was stored, and the event should come again.
type StorageError struct{ Err error }

func (e StorageError) Error() string { return e.Err.Error() }

func (e StorageError) Unwrap() error { return e.Err }

// Outcomes of an event, as Outcome names them.
const (
	OutcomeAccepted      = "accepted"
	OutcomeDuplicate     = "duplicate"
	OutcomeMappingFailed = "mapping_failed"
	OutcomeBadPayload    = "bad_payload"
	OutcomeUnknownEvent  = "unknown_event"
	OutcomeStorageError  = "storage_error"
)

// Outcome names how an Ingest that returned res and err ended.
func Outcome(res Result, err error) string {
	var se StorageError
	switch {
	case errors.As(err, &se):
		return OutcomeStorageError
	case errors.Is(err, connector.ErrUnknownEvent):
		return OutcomeUnknownEvent
	case err != nil:
		return OutcomeBadPayload
	case res.Duplicate:
		return OutcomeDuplicate
	case res.MappingError != "":
		return OutcomeMappingFailed
	}
	return OutcomeAccepted
}

// Ingest decodes, maps and stores one event of platform. It returns a
// StorageError when the outbox cannot be read or written, an error wrapping
// connector.ErrUnknownEvent or connector.ErrBadPayload for an event that
// will never be accepted, and otherwise what became of the event.
func (p *Pipeline) Ingest(ctx context.Context, platform string, body []byte) (res Result, err error) {
	if p.OnEvent != nil {
		defer func() { p.OnEvent(platform, Outcome(res, err)) }()
	}
	dec, ok := p.Decoders[platform]
	if !ok {
		return Result{}, fmt.Errorf("%w: unknown platform %q", connector.ErrBadPayload, platform)
	}
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
		unlock = p.states.lock(platform + "\x00" + key)
		b, err := p.DB.State(ctx, platform, key)
		if err != nil {
			return nil, StorageError{err}
		}
		return b, nil
	}
	ev, err := dec.Decode(body, state)
	if err != nil {
		return Result{}, err
	}
	return p.store(ctx, ev, body)
}

// Platforms returns the names of the platforms with a decoder, sorted.
func (p *Pipeline) Platforms() []string {
	names := make([]string, 0, len(p.Decoders))
	for n := range p.Decoders {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// store maps ev and stores it with its activities.
func (p *Pipeline) store(ctx context.Context, ev connector.Event, body []byte) (Result, error) {
	var err error
	stored := outbox.Event{Platform: ev.Platform, Key: ev.Key, Type: ev.Type, ReceivedAt: p.now(), Body: body,
		StateKey: ev.StateKey, State: ev.State}
	if ev.Interaction != nil {
		if p.Link != nil {
			p.Link(ctx, ev.Interaction)
		}
		if stored.Interaction, err = encodeInteraction(ev.Interaction); err != nil {
			return Result{}, err
		}
	}
	deliveries, err := EncodeActivities(p.Mappings(), ev.Interaction)
	if err != nil {
		// Kept, not lost: the event is stored as mapping_failed, to be
		// mapped again once the mapping is fixed.
		stored.MappingError = err.Error()
	}
	res, err := p.DB.Accept(ctx, stored, deliveries)
	if err != nil {
		return Result{}, StorageError{err}
	}
	if stored.MappingError != "" && !res.Duplicate {
		p.logger().Warn("mapping failed; event kept as mapping_failed", "event_id", res.EventID,
			"platform", ev.Platform, "err", stored.MappingError)
	}
	if res.Enqueued > 0 && p.Notify != nil {
		for _, d := range deliveries {
			p.Notify(d.Target)
		}
	}
	return Result{ID: res.EventID, Duplicate: res.Duplicate, Activities: res.Enqueued,
		MappingError: stored.MappingError}, nil
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Pipeline) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// EncodeActivities applies set to in (nil makes nothing) and serializes
// each activity once: these bytes are sent on every attempt.
func EncodeActivities(set *mapping.Set, in *connector.Interaction) ([]outbox.NewDelivery, error) {
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
