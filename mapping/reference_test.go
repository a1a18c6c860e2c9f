package mapping_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/mapping"
)

func TestReference(t *testing.T) {
	d := mapping.Reference()
	want := map[string]string{
		"ani":              "text",
		"agent.email":      "text",
		"start":            "time (may be missing)",
		"duration":         "number",
		"disposition":      "record (may be missing)",
		"disposition.name": "text",
		"attached":         "map",
		"objects":          "list",
		"parties[].phone":  "text",
		"isConsultation":   "true/false",
	}
	seen := map[string]bool{}
	for _, f := range d.Fields {
		if f.Doc == "" {
			t.Errorf("field %s has no doc: add it to fieldDocs", f.Name)
		}
		if seen[f.Name] {
			t.Errorf("field %s listed twice", f.Name)
		}
		seen[f.Name] = true
		if w, ok := want[f.Name]; ok && f.Type != w {
			t.Errorf("field %s has type %q, want %q", f.Name, f.Type, w)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("field %s is missing", name)
		}
	}
	if seen["raw"] {
		t.Error("raw is listed, but expressions cannot read it")
	}
	for _, f := range d.Functions {
		if f.Name == "" || f.Doc == "" || f.Example == "" || !strings.HasPrefix(f.Signature, f.Name+"(") {
			t.Errorf("function %+v is not fully documented", f)
		}
	}
	var b strings.Builder
	if err := d.WriteText(&b); err != nil || !strings.Contains(b.String(), "lookup(table, value[, default])") {
		t.Errorf("WriteText = %q, %v", b.String(), err)
	}
}

// TestReference_Examples checks that every function's example compiles.
func TestReference_Examples(t *testing.T) {
	for _, f := range mapping.Reference().Functions {
		src := "[[rule]]\nname = \"r\"\ntarget = \"crm\"\nobject = \"x\"\nfields = { A = '" + f.Example + "' }\n[lookups.dispositions]\nx = \"y\"\n"
		if _, err := mapping.Load([]mapping.File{{Name: f.Name + ".toml", Data: []byte(src)}}, targets); err != nil {
			t.Errorf("the example of %s does not load: %v", f.Name, err)
		}
	}
}

// TestReference_Covered checks that the golden cases call every function
// this package implements, and that the admin's guide names every field
// and function.
func TestReference_Covered(t *testing.T) {
	paths, _ := filepath.Glob("testdata/golden/*.txtar")
	var goldens strings.Builder
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		goldens.Write(b)
	}
	guide, err := os.ReadFile("../docs/mapping.md")
	if err != nil {
		t.Fatal(err)
	}
	builtins := map[string]bool{"len": true, "int": true, "float": true, "round": true, "replace": true, "split": true,
		"filter": true, "map": true, "any": true, "all": true, "none": true, "count": true, "find": true, "first": true, "last": true}
	d := mapping.Reference()
	for _, f := range d.Functions {
		if !builtins[f.Name] && !strings.Contains(goldens.String(), f.Name+"(") {
			t.Errorf("no golden case calls %s", f.Name)
		}
		if !strings.Contains(string(guide), "`"+f.Signature+"`") {
			t.Errorf("docs/mapping.md does not document `%s`", f.Signature)
		}
	}
	for _, f := range d.Fields {
		if !strings.Contains(string(guide), "`"+f.Name+"`") {
			t.Errorf("docs/mapping.md does not list the field `%s`", f.Name)
		}
	}
}

// TestGuideExamples checks that the worked examples of docs/mapping.md are
// the golden cases salesforce_task and hubspot_call, mapping and result.
func TestGuideExamples(t *testing.T) {
	guide, err := os.ReadFile("../docs/mapping.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"salesforce_task", "hubspot_call"} {
		b, err := os.ReadFile("testdata/golden/" + name + ".txtar")
		if err != nil {
			t.Fatal(err)
		}
		ar := parseArchive(b)
		src, _ := ar.get("mapping.toml")
		if !strings.Contains(string(guide), "```toml\n"+string(src)+"```") {
			t.Errorf("docs/mapping.md does not show the mapping of %s as it is", name)
		}
		got := runGolden(t, ar)["want.json"]
		var acts []connector.Activity
		if err := json.Unmarshal(got, &acts); err != nil || len(acts) != 1 {
			t.Fatalf("%s: %v, %d activities", name, err, len(acts))
		}
		fields := strings.TrimSuffix(string(marshal(t, acts[0].Fields)), "\n")
		if !strings.Contains(string(guide), "```json\n"+fields+"\n```") {
			t.Errorf("docs/mapping.md does not show the record %s makes:\n%s", name, fields)
		}
	}
}
