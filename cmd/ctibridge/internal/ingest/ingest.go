// Package ingest is the pipeline every platform event goes through,
// whatever brought it (an HTTP post, the Genesys Web Services subscription,
// the flush of a stale snapshot): decode it under its interaction's lock,
// mask card data, map the interaction it completes rule by rule, and store
// the raw event with the activities of the rules that map and the failures
// of those that do not, in one transaction. Once Ingest returns without
// error, the event is on disk; a refused event stores nothing.
//
// It also maps the failed rules of stored events again (Remap) and replays
// events without a daemon, for previews (PreviewAll).
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

	states connector.KeyLock // serializes the events of one interaction
}

// Result is what became of an event.
type Result struct {
	ID         int64 `json:"id"`
	Duplicate  bool  `json:"duplicate"`
	Activities int   `json:"activities"`
	// MappingError says that rules failed (the first one's error, or why
	// nothing could be mapped); the event is stored all the same, as
	// mapping_failed, and the other rules' activities are enqueued.
	MappingError string `json:"mappingError,omitempty"`
	// FailedRules are the rules that failed, each with its error, kept
	// with the event until `events remap` maps them.
	FailedRules []outbox.RuleFailure `json:"failedRules,omitempty"`
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
		u, err := p.states.Lock(ctx, platform+"\x00"+key)
		if err != nil {
			return nil, StorageError{err} // the sender gave up waiting: nothing stored
		}
		unlock = u
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
//
// Card data must not rest on disk (PCI DSS): the raw body and the
// interaction are masked (card numbers, the [redact] patterns) before they
// are stored, and the rules map the masked interaction, so what is stored
// and what is sent agree. The snapshot (ev.State) is stored as the source
// wrote it: it holds identifiers (interaction and agent ids, phone
// numbers) as JSON text, which masking cannot tell from free text, and a
// 13-19 digit id that passes the Luhn check would be masked, so that the
// next event of the call no longer finds its snapshot or its leg. A
// snapshot lives only until its interaction is logged (deleted with the
// completing event or by the flush) or the retention purges it.
func (p *Pipeline) store(ctx context.Context, ev connector.Event, body []byte) (Result, error) {
	if ev.Interaction != nil && p.Link != nil {
		p.Link(ctx, ev.Interaction)
	}
	set := p.Mappings()
	in := set.MaskInteraction(ev.Interaction)
	stored := outbox.Event{Platform: ev.Platform, Key: ev.Key, Type: ev.Type, ReceivedAt: p.now(),
		Body: set.MaskJSON(body), StateKey: ev.StateKey, State: ev.State}
	var deliveries []outbox.NewDelivery
	if in != nil {
		var err error
		if stored.Interaction, err = encodeInteraction(in); err != nil {
			return Result{}, err
		}
		// Rule by rule: the rules that map are enqueued, each failed one
		// is kept with its error, to be mapped again once fixed.
		deliveries, stored.Failures = MapEach(set, in)
	}
	res, err := p.DB.Accept(ctx, stored, deliveries)
	if err != nil {
		return Result{}, StorageError{err}
	}
	out := Result{ID: res.EventID, Duplicate: res.Duplicate, Activities: res.Enqueued}
	if len(stored.Failures) > 0 && !res.Duplicate {
		out.FailedRules, out.MappingError = stored.Failures, stored.Failures[0].Error
		for _, f := range stored.Failures {
			// The error may quote the interaction's data: above debug the
			// log names the rule, and `ctibridge events ls --failed` says why.
			p.logger().Warn("mapping rule failed; event kept as mapping_failed", "event_id", res.EventID,
				"platform", ev.Platform, "rule", f.Rule, "target", f.Target)
			p.logger().Debug("mapping rule failed", "event_id", res.EventID, "rule", f.Rule, "err", f.Error)
		}
	}
	if res.Enqueued > 0 && p.Notify != nil {
		for _, d := range deliveries {
			p.Notify(d.Target)
		}
	}
	return out, nil
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

// MapEach maps in with set rule by rule (only the named rules, when rules
// are given; see mapping.Set.ApplyEach) and serializes the activity of
// each rule that maps once: these bytes are sent on every attempt. A rule
// that fails is returned with its error instead, never holding back the
// others.
func MapEach(set *mapping.Set, in *connector.Interaction, rules ...string) ([]outbox.NewDelivery, []outbox.RuleFailure) {
	outs, err := set.ApplyEach(in, rules...)
	if err != nil { // in is nil: nothing to map
		return nil, nil
	}
	var ds []outbox.NewDelivery
	var fails []outbox.RuleFailure
	for _, o := range outs {
		if o.Err == nil {
			var b []byte
			if b, o.Err = marshal(o.Activity); o.Err == nil {
				ds = append(ds, outbox.NewDelivery{Target: o.Activity.Target, Key: o.Activity.Key, Payload: b})
				continue
			}
			o.Err = fmt.Errorf("rule %q: encode activity: %w", o.Rule, o.Err)
		}
		fails = append(fails, outbox.RuleFailure{Rule: o.Rule, Target: o.Target, Error: o.Err.Error()})
	}
	return ds, fails
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
