// Package logging builds the daemon's logger: text or JSON lines on a
// writer, with repeated warnings and errors folded. When a CRM is down,
// every delivery fails the same way; the log shows the first failure of
// each kind, then at most one line a minute that says how many more there
// were, instead of one line per delivery.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Window is how long failures of one kind are folded after the first.
const Window = time.Minute

// kindKeys are the attributes that tell kinds of failure apart: the same
// message for another target, status or class of error is another kind.
// Per-delivery ids and the error text (which names the delivery) are not.
var kindKeys = map[string]bool{"target": true, "platform": true, "component": true, "status": true, "error_class": true}

// New returns a logger writing to w in format ("text" or "json") at level,
// that folds repeated warnings and errors.
func New(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(Fold(h, time.Now))
}

// Fold wraps h so that a warning or error of a kind seen within Window is
// counted instead of written; the next one written after the window says
// how many were folded ("repeated"). now is the clock.
func Fold(h slog.Handler, now func() time.Time) slog.Handler {
	return &folder{next: h, now: now, state: &foldState{seen: map[string]*kind{}}}
}

type folder struct {
	next  slog.Handler
	now   func() time.Time
	attrs []slog.Attr // from WithAttrs, for the kind
	state *foldState  // shared by every handler derived from one Fold
}

type foldState struct {
	mu   sync.Mutex
	seen map[string]*kind
}

// kind is one kind of failure: when it was last written, and how many of
// it were folded since.
type kind struct {
	written time.Time
	folded  int
}

func (f *folder) Enabled(ctx context.Context, l slog.Level) bool { return f.next.Enabled(ctx, l) }

func (f *folder) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return f.next.Handle(ctx, r)
	}
	var b strings.Builder
	b.WriteString(r.Level.String())
	b.WriteByte(0)
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		if kindKeys[a.Key] {
			b.WriteByte(0)
			b.WriteString(a.Key + "=" + a.Value.String())
		}
		return true
	}
	for _, a := range f.attrs {
		add(a)
	}
	r.Attrs(add)
	key, now := b.String(), f.now()

	f.state.mu.Lock()
	k := f.state.seen[key]
	switch {
	case k == nil:
		f.state.seen[key] = &kind{written: now}
	case now.Sub(k.written) < Window:
		k.folded++
		f.state.mu.Unlock()
		return nil
	default:
		if k.folded > 0 {
			r.AddAttrs(slog.Int("repeated", k.folded), slog.Time("since", k.written))
		}
		k.written, k.folded = now, 0
	}
	f.state.mu.Unlock()
	return f.next.Handle(ctx, r)
}

func (f *folder) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *f
	c.next = f.next.WithAttrs(attrs)
	c.attrs = append(append([]slog.Attr(nil), f.attrs...), attrs...)
	return &c
}

func (f *folder) WithGroup(name string) slog.Handler {
	c := *f
	c.next = f.next.WithGroup(name)
	return &c
}
