package mapping_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ctibridge/ctibridge/mapping"
)

// FuzzLoad checks that no file, however broken, makes Load panic; that
// every error is Problems placed inside the file; and that a Set that loads
// can map an interaction without panicking.
func FuzzLoad(f *testing.F) {
	paths, _ := filepath.Glob("testdata/golden/*.txtar")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, af := range parseArchive(b).files {
			if filepath.Ext(af.name) == ".toml" {
				f.Add(af.data)
			}
		}
	}
	f.Add([]byte(salesforce))
	f.Add([]byte("[[rule]]\nname = \"r\"\ntarget = \"crm\"\nobject = \"x\"\nfields = { A = \"\"\"\n\\u00e9\\\n  + anis\"\"\" }\n"))
	in := call()
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := mapping.Load([]mapping.File{{Name: "f.toml", Data: data}}, targets)
		if err != nil {
			var ps mapping.Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Load error %T %v, want Problems", err, err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, p := range ps {
				if p.File != "f.toml" || p.Msg == "" || p.Line < 0 || p.Line > lines || p.Col < 0 {
					t.Fatalf("misplaced problem %+v in a file of %d lines", p, lines)
				}
				_ = p.Error()
			}
			return
		}
		_, _ = set.Apply(in)
		_ = set.Explain(in)
	})
}
