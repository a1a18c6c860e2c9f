package mapping_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/mapping"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/golden/*.txtar")

// goldenOptions are the options every golden case loads with, unless it has
// an options.json section.
var goldenOptions = mapping.Options{
	Targets:       []string{"crm", "hubspot", "jsonl", "salesforce"},
	DefaultRegion: "US",
}

// TestGolden runs every testdata/golden/*.txtar case. A case holds one or
// more mapping files (*.toml, loaded as mappings/NAME), an optional
// interaction.json and options.json, and what should come of them:
// want.json (the activities) or want-error (the load or apply error), and
// optionally explain.json (what Explain says). -update rewrites the wants.
func TestGolden(t *testing.T) {
	paths, err := filepath.Glob("testdata/golden/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 15 {
		t.Fatalf("%d golden cases, want at least 15", len(paths))
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ar := parseArchive(data)
			got := runGolden(t, ar)
			changed := false
			for _, name := range []string{"want.json", "want-error", "explain.json"} {
				g, hasGot := got[name]
				w, hasWant := ar.get(name)
				switch {
				case *update && hasGot:
					changed = ar.set(name, g) || changed
				case *update && hasWant && name != "explain.json":
					ar.remove(name)
					changed = true
				case hasGot && hasWant && !bytes.Equal(g, w):
					t.Errorf("%s differs\n--- got:\n%s--- want:\n%s", name, g, w)
				case hasGot != hasWant && name != "explain.json":
					t.Errorf("got a %s section %q; the case has one: %v (run with -update to accept)", name, g, hasWant)
				}
			}
			if *update && changed {
				if err := os.WriteFile(path, ar.format(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// runGolden loads and applies a case, and returns its results by section.
func runGolden(t *testing.T, ar *archive) map[string][]byte {
	t.Helper()
	var files []mapping.File
	for _, f := range ar.files {
		if strings.HasSuffix(f.name, ".toml") {
			files = append(files, mapping.File{Name: "mappings/" + f.name, Data: f.data})
		}
	}
	opts := goldenOptions
	if b, ok := ar.get("options.json"); ok {
		opts = mapping.Options{}
		if err := json.Unmarshal(b, &opts); err != nil {
			t.Fatalf("options.json: %v", err)
		}
	}
	out := map[string][]byte{}
	set, err := mapping.Load(files, opts)
	if err != nil {
		var ps mapping.Problems
		if !errors.As(err, &ps) {
			t.Fatalf("Load returned %T, want mapping.Problems: %v", err, err)
		}
		for _, p := range ps {
			if p.File == "" || p.Msg == "" {
				t.Errorf("problem without a file or message: %+v", p)
			}
		}
		out["want-error"] = []byte(err.Error() + "\n")
		return out
	}
	var in connector.Interaction
	b, ok := ar.get("interaction.json")
	if !ok {
		t.Fatal("the mapping loads, but the case has no interaction.json")
	}
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatalf("interaction.json: %v", err)
	}
	if _, ok := ar.get("explain.json"); ok {
		out["explain.json"] = marshal(t, set.Explain(&in))
	}
	acts, err := set.Apply(&in)
	if err != nil {
		var re *mapping.RuleError
		if !errors.As(err, &re) {
			t.Fatalf("Apply returned %T, want *mapping.RuleError: %v", err, err)
		}
		out["want-error"] = []byte(err.Error() + "\n")
		return out
	}
	if acts == nil {
		acts = []connector.Activity{}
	}
	out["want.json"] = marshal(t, acts)
	return out
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// archive is a txtar file: a comment, then files, each introduced by a
// line "-- NAME --".
type archive struct {
	comment []byte
	files   []archiveFile
}

type archiveFile struct {
	name string
	data []byte
}

func parseArchive(data []byte) *archive {
	ar := &archive{}
	var cur *archiveFile
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		data = rest
		if name, ok := fileMarker(line); ok {
			ar.files = append(ar.files, archiveFile{name: name})
			cur = &ar.files[len(ar.files)-1]
			continue
		}
		if cur == nil {
			ar.comment = append(append(ar.comment, line...), '\n')
		} else {
			cur.data = append(append(cur.data, line...), '\n')
		}
	}
	return ar
}

func fileMarker(line []byte) (string, bool) {
	s := strings.TrimRight(string(line), "\r")
	if !strings.HasPrefix(s, "-- ") || !strings.HasSuffix(s, " --") || len(s) < 7 {
		return "", false
	}
	return strings.TrimSpace(s[3 : len(s)-3]), true
}

func (ar *archive) get(name string) ([]byte, bool) {
	for _, f := range ar.files {
		if f.name == name {
			return f.data, true
		}
	}
	return nil, false
}

// set replaces or adds a section, and reports whether that changed it.
func (ar *archive) set(name string, data []byte) bool {
	for i, f := range ar.files {
		if f.name == name {
			ar.files[i].data = data
			return !bytes.Equal(f.data, data)
		}
	}
	ar.files = append(ar.files, archiveFile{name: name, data: data})
	return true
}

func (ar *archive) remove(name string) {
	for i, f := range ar.files {
		if f.name == name {
			ar.files = append(ar.files[:i], ar.files[i+1:]...)
			return
		}
	}
}

func (ar *archive) format() []byte {
	var b bytes.Buffer
	b.Write(ar.comment)
	for _, f := range ar.files {
		b.WriteString("-- " + f.name + " --\n")
		b.Write(f.data)
	}
	return b.Bytes()
}
