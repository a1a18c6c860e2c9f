package genesys

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

var update = flag.Bool("update", false, "rewrite testdata/*.want.json from the decoder's output")

// testNow stands in for the decode time of events without receivedAt.
var testNow = time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)

func testDecoder() Decoder {
	return Decoder{Now: func() time.Time { return testNow }}
}

// daemon mimics what cmd/ctibridge does with a stateful source: it skips an
// event whose Key it has seen (storing nothing: no state, no interaction),
// and otherwise stores Event.State under StateKey, deleting it for a nil
// State, and keeps the Interaction.
type daemon struct {
	dec    Decoder
	states map[string][]byte
	seen   map[string]bool
	out    []*connector.Interaction
}

func newDaemon(dec Decoder) *daemon {
	return &daemon{dec: dec, states: map[string][]byte{}, seen: map[string]bool{}}
}

// step is one posted line as the golden records it.
type step struct {
	Line      int    `json:"line"`
	Type      string `json:"type"`
	Key       string `json:"key"`
	Duplicate bool   `json:"duplicate,omitempty"`
	StateKey  string `json:"stateKey,omitempty"`
	// State is "stored" or "deleted"; empty when the event has no state.
	State string `json:"state,omitempty"`
	// Emitted is the id of the Interaction the event returned.
	Emitted string `json:"emitted,omitempty"`
}

func (m *daemon) post(line int, body []byte) (step, error) {
	loads := 0
	ev, err := m.dec.Decode(body, func(key string) ([]byte, error) {
		loads++
		if loads > 1 {
			panic("state loaded twice for one event")
		}
		return m.states[key], nil
	})
	if err != nil {
		return step{Line: line}, err
	}
	s := step{Line: line, Type: ev.Type, Key: ev.Key, StateKey: ev.StateKey}
	if ev.Platform != Platform || ev.Key == "" || ev.Type == "" {
		panic("event without platform, key or type")
	}
	if m.seen[ev.Key] {
		s.Duplicate, s.StateKey = true, ""
		return s, nil
	}
	m.seen[ev.Key] = true
	if ev.StateKey != "" {
		if ev.State == nil {
			delete(m.states, ev.StateKey)
			s.State = "deleted"
		} else {
			m.states[ev.StateKey] = ev.State
			s.State = "stored"
		}
	}
	if ev.Interaction != nil {
		m.out = append(m.out, ev.Interaction)
		s.Emitted = ev.Interaction.ID
	}
	return s, nil
}

// replay is a sequence's golden: every step, every emitted interaction,
// and the snapshots left at the end (tombstones waiting for REMOVED).
type replay struct {
	Steps        []step                     `json:"steps"`
	Interactions []*connector.Interaction   `json:"interactions"`
	States       map[string]json.RawMessage `json:"states,omitempty"`
}

// run posts every line of file, one body per line.
func run(t *testing.T, dec Decoder, file string) replay {
	t.Helper()
	m := newDaemon(dec)
	var r replay
	for i, body := range lines(t, file) {
		s, err := m.post(i+1, body)
		if err != nil {
			t.Fatalf("%s:%d: %v", file, i+1, err)
		}
		r.Steps = append(r.Steps, s)
	}
	r.Interactions = m.out
	if len(m.states) > 0 {
		r.States = map[string]json.RawMessage{}
		for k, v := range m.states {
			r.States[k] = v
		}
	}
	return r
}

// lines reads a .jsonl file's non-empty lines.
func lines(tb testing.TB, file string) [][]byte {
	tb.Helper()
	f, err := os.Open(file)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		if b := bytes.TrimSpace(sc.Bytes()); len(b) > 0 {
			out = append(out, bytes.Clone(b))
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// sequences returns the testdata sequences.
func sequences(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.jsonl"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no testdata sequences: %v", err)
	}
	sort.Strings(files)
	return files
}

// TestReplay_Golden posts each testdata/NAME.jsonl through Decode the way
// the daemon does and compares the outcome with testdata/NAME.want.json.
// Run with -update to rewrite the goldens, then read the diff: the goldens
// are the spec.
func TestReplay_Golden(t *testing.T) {
	for _, file := range sequences(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".jsonl")
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(run(t, testDecoder(), file), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			wantFile := strings.TrimSuffix(file, ".jsonl") + ".want.json"
			if *update {
				if err := os.WriteFile(wantFile, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the replayed sequence; got:\n%s", wantFile, got)
			}
		})
	}
}
