package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// httpCeiling measures what this machine allows for the daemon's own job:
// a bare HTTP server in this process that decodes each event once into a
// struct and group-commits it to one table with the daemon's durability
// (WAL, synchronous=FULL), answering 202 only once it is on disk, driven
// by the same clients as the burst. The daemon's ingest is reported as a
// ratio of it. It returns events/s and the cores this process used
// meanwhile (server and clients).
func (b *bench) httpCeiling(ctx context.Context, path string) (rate, cores float64, err error) {
	db, err := openDurable(ctx, path)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: http ceiling: %w", err)
	}
	defer db.Close()
	type write struct {
		key  string
		body []byte
		done chan error
	}
	writes := make(chan write, 1024)
	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Go(func() { // group commit: whatever is queued, in one transaction
		for {
			var batch []write
			select {
			case w := <-writes:
				batch = append(batch, w)
			case <-stop:
				return
			}
		gather:
			for len(batch) < 256 {
				select {
				case w := <-writes:
					batch = append(batch, w)
				default:
					break gather
				}
			}
			err := commitBatch(ctx, db, len(batch), func(i int) (string, []byte) { return batch[i].key, batch[i].body })
			for _, w := range batch {
				w.done <- err
			}
		}
	})
	defer func() { close(stop); writer.Wait() }()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		var ev struct {
			Event   string `json:"event"`
			AgentID string `json:"agentId"`
			Data    struct {
				InteractionID string `json:"interactionId"`
			} `json:"data"`
		}
		if err == nil {
			err = json.Unmarshal(body, &ev)
		}
		if err != nil {
			http.Error(w, `{"error":"bad event"}`, http.StatusBadRequest)
			return
		}
		done := make(chan error, 1)
		writes <- write{key: ev.Event + ":" + ev.Data.InteractionID + ":" + ev.AgentID, body: body, done: done}
		if err := <-done; err != nil {
			http.Error(w, `{"error":"storage"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"activities":1}`)
	}))
	defer srv.Close()

	o := b.opts
	var next, acked atomic.Int64
	var wg sync.WaitGroup
	cpu0, start := procCPU(os.Getpid()), time.Now()
	deadline := start.Add(o.Duration)
	for range o.Clients {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= o.Events {
					return
				}
				if b.post(ctx, srv.URL, b.event(fmt.Sprintf("ceiling-%08d", i))) == nil {
					acked.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	wall := time.Since(start).Seconds()
	return float64(acked.Load()) / wall, (procCPU(os.Getpid()) - cpu0).Seconds() / wall, nil
}

// openDurable creates a database at path with the daemon's durability
// (WAL, synchronous=FULL, one writer) and a bare table of events.
func openDurable(ctx context.Context, path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE events (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, body BLOB NOT NULL)`); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// commitBatch inserts n rows, row(i) giving each key and body, in one
// transaction.
func commitBatch(ctx context.Context, db *sql.DB, n int, row func(i int) (string, []byte)) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO events (key, body) VALUES (?, ?)`)
	if err != nil {
		tx.Rollback()
		return err
	}
	defer st.Close()
	for i := range n {
		key, body := row(i)
		if _, err := st.ExecContext(ctx, key, body); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}
