// Package connector is the contract shared by every contact-center source and
// every CRM target: the normalized Interaction that admins map from, the
// Activity record that mappings produce and targets deliver, and the error
// behaviour (permanent, retry after) that tells the outbox what to do with a
// failed delivery.
//
// It imports only the standard library, so that a platform or CRM package can
// depend on it without depending on anything else of ctibridge.
package connector

import (
	"errors"
	"fmt"
)

// Errors a source's decoder returns, wrapped with the detail. The HTTP layer
// turns them into status codes: ErrBadPayload is 400, ErrUnknownEvent is 422.
var (
	ErrBadPayload   = errors.New("bad payload")
	ErrUnknownEvent = errors.New("unknown event")
	// ErrInProgress is what Flusher.FlushLegs returns for the snapshot of
	// a conversation that is not over.
	ErrInProgress = errors.New("interaction in progress")
)

// BadPayload returns an error wrapping ErrBadPayload that names the field at
// fault, such as `data.interactionId: required`.
func BadPayload(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadPayload, field, fmt.Sprintf(format, args...))
}

// StateFunc returns the snapshot a source stored under key with an
// earlier event, or nil when there is none. Sources whose platforms spread
// one interaction over several events (Genesys, Five9) keep such a snapshot
// and emit the Interaction when the last event arrives.
//
// A source calls it at most once per Decode. The caller holds the key until
// the event and its new State are stored, so the events of one interaction
// are applied one at a time, in the order they are received.
type StateFunc func(key string) ([]byte, error)

// Event is what a source makes of one message from a platform.
type Event struct {
	// Platform names the source, such as "brightpattern".
	Platform string
	// Type is the platform's own event name, such as "ON_SAVE_ACTIVITY_RECORD".
	Type string
	// Key identifies the event for deduplication: the same Key from the same
	// Platform is the same event, however often it is posted.
	Key string
	// Interaction is the finished interaction the event completes, or nil when
	// the event is stored but produces no activity.
	Interaction *Interaction
	// StateKey, when set, names the snapshot this event updated; State is
	// its new content, stored in the same transaction as the event. A nil
	// State deletes the snapshot (the interaction is done).
	StateKey string
	State    []byte
}

// Flusher is implemented by the sources that keep snapshots (Genesys,
// Five9). The daemon calls it for a snapshot that no event has updated for
// a while, to log interactions whose completing event never came: the
// agent closed the browser tab before Genesys MARKDONE_APPLY, or Five9's
// callEnded arrived and callFinished did not.
//
// FlushLegs returns every leg a stale snapshot holds whose conversation is
// over (Genesys: RELEASED, ENDED or COMPLETED seen; Five9: a *Ended seen)
// and that was not emitted yet, in the order they ended: each agent of a
// transferred call is an Interaction of its own, with its own Leg, flagged
// in Interaction.Attached as incomplete, with the reason, under the
// source's own flag keys. The caller stores them all and deletes the
// snapshot with the last. It returns no Interaction when the snapshot is
// not of a finished conversation, or was emitted already; the error tells
// the caller what to do with the snapshot:
//
//   - nil, ErrInProgress (wrapped): a leg is still ringing or talking;
//     leave the snapshot.
//   - nil, nil: there is nothing left to log (the Genesys marker kept
//     until REMOVED after the interaction was emitted); delete it.
//   - nil, another error: the snapshot cannot be read (damaged, another
//     version); leave it, the store's retention purges it.
type Flusher interface {
	FlushLegs(state []byte) ([]*Interaction, error)
}
