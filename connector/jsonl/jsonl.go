// Package jsonl is the file target: it appends each activity record to a
// file as one line of JSON (JSON Lines). It is the embedded default, so that
// someone trying ctibridge sees call logs before owning a CRM, and a simple
// sink for tools that tail a file.
//
// Delivery is at-least-once. A line is written and fsynced before Deliver
// returns nil, but the outbox records the success afterwards: a crash in
// between delivers the record again on restart, and the file then holds the
// line twice. Each line is the activity's JSON, which carries its
// idempotency key ("key"), so a reader deduplicates on it.
//
// Every line is one complete JSON document, also under concurrent Deliver
// calls: each line goes to the file in a single write, under a mutex, and a
// failed write is cut back off so that the next line does not start in the
// middle of a broken one.
package jsonl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/ctibridge/ctibridge/connector"
)

// Target appends activity records to one file. It is safe for concurrent
// use.
type Target struct {
	path string

	mu sync.Mutex // serializes lines, so they never interleave
	f  *os.File   // nil once closed
}

// Open opens the file at path for appending, creating it with mode 0600 if
// it does not exist. The parent directory must exist: a typo in the path
// should be an error, not a new directory tree.
func Open(path string) (*Target, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		// *PathError names the path; say which component failed.
		return nil, fmt.Errorf("open jsonl target: %w", err)
	}
	return &Target{path: path, f: f}, nil
}

// String names the target for logs.
func (t *Target) String() string { return "jsonl " + t.path }

// Deliver appends d.Body, compacted to one line, and fsyncs the file before
// it returns nil. The status is always 0: there is no HTTP response.
//
// A body that is not valid JSON is a permanent error, since no retry can fix
// it. A closed target, a cancelled ctx and a failed write or fsync (a full
// disk, say) are retryable. ctx is checked only before writing: a write and
// its fsync are not interrupted halfway.
func (t *Target) Deliver(ctx context.Context, d connector.Delivery) (connector.Result, error) {
	var line bytes.Buffer
	line.Grow(len(d.Body) + 1)
	// Compact also validates, and it removes the newlines of a pretty-printed
	// body; JSON strings cannot hold a raw newline, so none is left.
	if err := json.Compact(&line, d.Body); err != nil {
		return connector.Result{}, connector.Permanent(fmt.Errorf("body of %s is not valid JSON: %w", d.Key, err))
	}
	line.WriteByte('\n')

	if err := ctx.Err(); err != nil {
		return connector.Result{}, &connector.DeliveryError{Err: err}
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return connector.Result{}, &connector.DeliveryError{Err: fmt.Errorf("append to %s: %w", t.path, os.ErrClosed)}
	}
	if err := t.append(line.Bytes()); err != nil {
		return connector.Result{}, &connector.DeliveryError{Err: err}
	}
	return connector.Result{}, nil
}

// append writes line in one write and syncs it. On a failed write it
// truncates the file back to its size before, so that a partial line does
// not glue itself to the next one. The caller holds t.mu.
func (t *Target) append(line []byte) error {
	fi, err := t.f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", t.path, err)
	}
	if _, err := t.f.Write(line); err != nil {
		if terr := t.f.Truncate(fi.Size()); terr != nil {
			return fmt.Errorf("append to %s: %w (and truncating the partial line: %v)", t.path, err, terr)
		}
		return fmt.Errorf("append to %s: %w", t.path, err)
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", t.path, err)
	}
	return nil
}

// Close closes the file, after any Deliver in progress has finished. Later
// Deliver calls fail with a retryable error wrapping os.ErrClosed. Closing
// twice is not an error, so shutdown code need not track it.
func (t *Target) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return nil
	}
	f := t.f
	t.f = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", t.path, err)
	}
	return nil
}
