package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/outbox"
)

// TestServe_PlatformFixtures replays every fixture sequence of the three
// platform packages through the real daemon (HTTP, the SQLite snapshots,
// the per-interaction locks, duplicate detection) and checks that the
// interactions it stores are exactly those each package's golden file
// says the sequence produces.
// fixtureNow is the receipt time the platforms' decoder tests give events
// without a time of their own.
var fixtureNow = time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)

func TestServe_PlatformFixtures(t *testing.T) {
	for _, platform := range []string{"brightpattern", "five9", "genesys"} {
		dir := filepath.Join("..", "..", "connector", platform, "testdata")
		seqs, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		singles, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, s := range singles {
			if !strings.HasSuffix(s, ".want.json") {
				seqs = append(seqs, s)
			}
		}
		if len(seqs) == 0 {
			t.Fatalf("%s: no fixtures in %s", platform, dir)
		}
		for _, seq := range seqs {
			name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(seq), ".jsonl"), ".json")
			t.Run(platform+"/"+name, func(t *testing.T) {
				want := goldenInteractions(t, filepath.Join(dir, name+".want.json"))
				cfg, err := config.Load(writeConfig(t, t.TempDir(), connectortest.NewFakeCRM(t).URL), testEnviron)
				if err != nil {
					t.Fatal(err)
				}
				// The decoders' goldens date an event that carries no time
				// at this receipt time.
				m := MustRunMainConfig(t, cfg, func(m *Main) { m.Now = func() time.Time { return fixtureNow } })
				for i, body := range fixtureBodies(t, seq) {
					resp, err := http.Post("http://"+m.Addr()+"/v1/events/"+platform, "application/json", bytes.NewReader(body))
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
						t.Fatalf("line %d: POST = %d", i+1, resp.StatusCode)
					}
				}
				evs, err := m.DB.Events(context.Background(), outbox.EventFilter{WithInteraction: true})
				if err != nil {
					t.Fatal(err)
				}
				slices.Reverse(evs) // oldest first, as the golden lists them
				var got []any
				for _, e := range evs {
					var v map[string]any
					if err := json.Unmarshal(e.Interaction, &v); err != nil {
						t.Fatal(err)
					}
					got = append(got, v)
				}
				if !reflect.DeepEqual(got, want) {
					g, _ := json.MarshalIndent(got, "", "  ")
					w, _ := json.MarshalIndent(want, "", "  ")
					t.Errorf("the daemon stored\n%s\nthe golden file says\n%s", g, w)
				}
			})
		}
	}
}

// fixtureBodies returns the bodies a fixture posts: one per line of a
// .jsonl sequence, or the whole of a .json file.
func fixtureBodies(tb testing.TB, path string) [][]byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if !strings.HasSuffix(path, ".jsonl") {
		return [][]byte{data}
	}
	var bodies [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			bodies = append(bodies, append([]byte(nil), line...))
		}
	}
	return bodies
}

// goldenInteractions reads the interactions a golden file expects, without
// their raw payloads (the daemon stores those once, with the event). A
// sequence golden lists them under "interactions"; a single event's golden
// is the Event, with one "Interaction" or null.
func goldenInteractions(tb testing.TB, path string) []any {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var g struct {
		Interactions []map[string]any `json:"interactions"`
		Interaction  map[string]any   `json:"Interaction"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		tb.Fatal(err)
	}
	if g.Interaction != nil {
		g.Interactions = append(g.Interactions, g.Interaction)
	}
	var out []any
	for _, in := range g.Interactions {
		delete(in, "raw")
		out = append(out, in)
	}
	return out
}
