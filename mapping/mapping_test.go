package mapping_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/mapping"
)

var targets = mapping.Options{Targets: []string{"crm", "jsonl"}}

func mustLoad(tb testing.TB, src string) *mapping.Set {
	tb.Helper()
	s, err := mapping.Load([]mapping.File{{Name: "m.toml", Data: []byte(src)}}, targets)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func call() *connector.Interaction {
	start := time.Date(2026, 11, 21, 14, 25, 0, 0, time.UTC)
	return &connector.Interaction{
		Platform: "brightpattern", ID: "I-1", Channel: "voice", Direction: "inbound",
		ANI: "+14155550142", DNIS: "+18005550199", Duration: 385, Start: &start,
		Disposition: &connector.Disposition{Name: "Sale Closed"},
		Who:         &connector.CRMObject{Type: "contact", ID: "003X"},
		Agent:       connector.Agent{ID: "jane"},
	}
}

const salesforce = `
[[rule]]
name   = "calls"
target = "crm"
object = "Task"
when   = 'channel == "voice" && !isConsultation'

[rule.fields]
Subject               = '"Call " + (direction == "inbound" ? "from " + ani : "to " + dnis)'
CallDurationInSeconds = 'duration'
CallDisposition       = 'lookup("dispositions", disposition?.name, "Other")'
WhoId                 = 'who?.id'
WhatId                = 'what?.id'
Start                 = 'start'

[[rule]]
name   = "chats"
target = "crm"
object = "Task"
when   = 'channel == "chat"'
[rule.fields]
Subject = '"Chat"'

[lookups.dispositions]
"Sale Closed" = "Sale"
`

func TestSet_Apply(t *testing.T) {
	s := mustLoad(t, salesforce)
	in := call()
	got, err := s.Apply(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("Apply made %d activities, want 1 (only the voice rule matches)", len(got))
	}
	a := got[0]
	if a.Key != "brightpattern:I-1:calls" || a.Target != "crm" || a.Object != "Task" || a.Rule != "calls" {
		t.Errorf("activity header = %+v", a)
	}
	want := map[string]any{
		"Subject":               "Call from +14155550142",
		"CallDurationInSeconds": 385,
		"CallDisposition":       "Sale",
		"WhoId":                 "003X",
		"WhatId":                nil,
		"Start":                 in.Start,
	}
	for k, v := range want {
		if got := a.Fields[k]; got != v {
			t.Errorf("field %s = %#v, want %#v", k, got, v)
		}
	}

	in.Disposition = &connector.Disposition{Name: "Callback"}
	got, _ = s.Apply(in)
	if v := got[0].Fields["CallDisposition"]; v != "Other" {
		t.Errorf("unmapped disposition gives %#v, want the default \"Other\"", v)
	}
	in.Disposition = nil
	got, _ = s.Apply(in)
	if v := got[0].Fields["CallDisposition"]; v != "Other" {
		t.Errorf("missing disposition gives %#v, want the default \"Other\"", v)
	}
	in.IsConsultation = true
	if got, _ := s.Apply(in); len(got) != 0 {
		t.Errorf("a consultation leg made %d activities, want 0", len(got))
	}
}

func TestSet_ApplyCustomKey(t *testing.T) {
	s := mustLoad(t, `
[[rule]]
name = "r"
target = "crm"
object = "Task"
key = '"call-" + id'
fields = { Subject = '"x"' }
`)
	got, err := s.Apply(call())
	if err != nil || got[0].Key != "call-I-1" {
		t.Fatalf("Apply = %+v, %v; want key call-I-1", got, err)
	}
}

func TestSet_ApplyRuntimeErrorNamesRuleAndField(t *testing.T) {
	s := mustLoad(t, `
[[rule]]
name = "r"
target = "crm"
object = "Task"
fields = { Owner = 'attached.owner.name' }
`)
	got, err := s.Apply(call())
	if err == nil || len(got) != 0 {
		t.Fatalf("Apply = %+v, %v; want an error and no activities", got, err)
	}
	if !strings.Contains(err.Error(), `rule "r": field Owner`) {
		t.Errorf("error %q does not name the rule and field", err)
	}
}

func TestLoad_Errors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // every one must appear
	}{
		{"UnknownKey", "[[rule]]\nname = \"r\"\ntarget = \"crm\"\nobject = \"Task\"\nobjekt = \"x\"\n",
			[]string{`m.toml:5:1: unknown key "objekt" in rule "r"`, `did you mean "object"?`}},
		{"Syntax", "[[rule]\nname = 1", []string{"m.toml:1:8: not valid TOML: expected character ]"}},
		{"UnknownField", `[[rule]]
name = "r"
target = "crm"
object = "Task"
fields = { A = 'anis', B = 'agent.nmae' }`, []string{`m.toml:5:17: rule "r": field A: unknown name anis; did you mean "ani"?`, `m.toml:5:35: rule "r": field B: agent has no field nmae`}},
		{"TypeError", `[[rule]]
name = "r"
target = "crm"
object = "Task"
when = 'duration'
fields = { A = 'duration + "s"' }`, []string{`m.toml:5:9: rule "r": when must give true or false`, `m.toml:6:26: rule "r": field A: invalid operation`}},
		{"UnknownTarget", `[[rule]]
name = "r"
target = "salesforce"
object = "Task"
fields = { A = 'id' }`, []string{`m.toml:3:10: rule "r": target "salesforce" is not configured (configured: crm, jsonl)`}},
		{"UnknownLookup", `[[rule]]
name = "r"
target = "crm"
object = "Task"
fields = { A = 'lookup("dispos", disposition?.name)' }`, []string{`m.toml:5:24: rule "r": field A: lookup: no [lookups.dispos] table is defined`}},
		{"Required", `[[rule]]
when = 'true'`, []string{"m.toml:1:1: rule 1: name, target, object and fields are required"}},
		{"DuplicateRule", `[[rule]]
name = "r"
target = "crm"
object = "Task"
fields = { A = 'id' }
[[rule]]
name = "r"
target = "crm"
object = "Task"
fields = { A = 'id' }`, []string{`m.toml:7:8: rule name "r" is already used at m.toml:2`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mapping.Load([]mapping.File{{Name: "m.toml", Data: []byte(tt.src)}}, targets)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoad_ProblemsAreStructured(t *testing.T) {
	src := "[[rule]]\nname = \"r\"\ntarget = \"crm\"\nobject = \"Task\"\n\n[rule.fields]\nSubject = '\"Call \" + anis'\nBogus = { expr = 'id', max = 3 }\n"
	_, err := mapping.Load([]mapping.File{{Name: "mappings/x.toml", Data: []byte(src)}}, targets)
	var ps mapping.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Load error %T, want mapping.Problems", err)
	}
	want := mapping.Problems{
		{File: "mappings/x.toml", Line: 7, Col: 22, Msg: `rule "r": field Subject: unknown name anis; did you mean "ani"?`, Text: `Subject = '"Call " + anis'`},
		{File: "mappings/x.toml", Line: 8, Col: 24, Msg: `unknown key "max" in rule "r": field Bogus (a field has expr, max_length, omit_empty, required, redact); did you mean "max_length"?`, Text: `Bogus = { expr = 'id', max = 3 }`},
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(want), err)
	}
	for i := range want {
		if ps[i] != want[i] {
			t.Errorf("problem %d =\n%#v\nwant\n%#v", i, ps[i], want[i])
		}
	}
	if got, want := ps[0].Error(), "mappings/x.toml:7:22: rule \"r\": field Subject: unknown name anis; did you mean \"ani\"?\n\tSubject = '\"Call \" + anis'\n\t                     ^"; got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}

// TestLoad_ColumnsCountCharacters checks that a column after non-ASCII
// text, in the file and in the expression, counts characters.
func TestLoad_ColumnsCountCharacters(t *testing.T) {
	src := "[[rule]]\nname = \"r\"\ntarget = \"crm\"\nobject = \"Task\"\nfields = { Betreff = '\"Grüße – \" + anis' }\n"
	_, err := mapping.Load([]mapping.File{{Name: "m.toml", Data: []byte(src)}}, targets)
	var ps mapping.Problems
	if !errors.As(err, &ps) || len(ps) != 1 {
		t.Fatalf("Load = %v, want one problem", err)
	}
	if ps[0].Line != 5 || ps[0].Col != 36 {
		t.Errorf("problem at %d:%d, want 5:36 (the a of anis)\n%v", ps[0].Line, ps[0].Col, err)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := mapping.LoadDir(dir, targets); err == nil || !strings.Contains(err.Error(), "no mapping files") {
		t.Errorf("LoadDir(empty) = %v, want no mapping files", err)
	}
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.toml", "[[rule]]\nname = \"a\"\ntarget = \"crm\"\nobject = \"Task\"\nfields = { S = 'lookup(\"t\", id)' }\n")
	write("b.toml", "[[rule]]\nname = \"b\"\ntarget = \"jsonl\"\nobject = \"x\"\nfields = { S = 'id' }\n[lookups.t]\nI-1 = \"one\"\n")
	write("notes.txt", "not a mapping")
	s, err := mapping.LoadDir(dir, targets)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Rules(), ","); got != "a,b" {
		t.Errorf("Rules() = %s, want a,b", got)
	}
	if got := strings.Join(s.Targets(), ","); got != "crm,jsonl" {
		t.Errorf("Targets() = %s, want crm,jsonl", got)
	}
	acts, err := s.Apply(call())
	if err != nil || len(acts) != 2 || acts[0].Fields["S"] != "one" {
		t.Errorf("Apply = %+v, %v; want the lookup from the other file", acts, err)
	}
}

func TestSet_ApplyIsAllOrNothing(t *testing.T) {
	s := mustLoad(t, `
[[rule]]
name = "ok"
target = "crm"
object = "Task"
fields = { A = 'id' }

[[rule]]
name = "bad"
target = "crm"
object = "Task"
fields = { A = 'who.id' }
`)
	in := call()
	in.Who = nil
	acts, err := s.Apply(in)
	var re *mapping.RuleError
	if !errors.As(err, &re) || acts != nil {
		t.Fatalf("Apply = %v, %v; want no activities and a *RuleError", acts, err)
	}
	if re.Rule != "bad" || re.Field != "A" || re.Line != 12 || re.Col != 17 {
		t.Errorf("RuleError = %+v, want rule bad, field A at 12:17", re)
	}
	res := s.Explain(in)
	if len(res) != 2 || !res[0].Matched || res[0].Activity == nil || res[1].Err == nil {
		t.Errorf("Explain = %+v; want the first rule's activity and the second's error", res)
	}
}

func TestSet_ApplyNeedsAnID(t *testing.T) {
	s := mustLoad(t, salesforce)
	in := call()
	in.ID = ""
	if _, err := s.Apply(in); err == nil || !strings.Contains(err.Error(), "no platform or id") {
		t.Errorf("Apply without an id = %v, want an error about the default key", err)
	}
	if _, err := s.Apply(nil); err == nil {
		t.Error("Apply(nil) succeeded")
	}
}

func TestSet_ConcurrentApply(t *testing.T) {
	s := mustLoad(t, salesforce)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				acts, err := s.Apply(call())
				if err != nil || len(acts) != 1 || acts[0].Fields["CallDisposition"] != "Sale" {
					t.Errorf("Apply = %+v, %v", acts, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestFunctions_PassNilThrough: functions documented to pass a missing
// value through must do so when it comes through an optional chain, as
// `what?.type` does for an interaction with no "what".
func TestFunctions_PassNilThrough(t *testing.T) {
	s := mustLoad(t, `
[[rule]]
name = "r"
target = "crm"
object = "Task"
when = 'lower(what?.type) != "case"'
[rule.fields]
A = 'lower(what?.type)'
B = 'upper(what?.name)'
C = 'trim(what?.id)'
D = 'truncate(what?.name, 3)'
E = 'e164(what?.id)'
F = 'date_in(end, "UTC")'
`)
	in := call() // no what, no end
	got, err := s.Apply(in)
	if err != nil || len(got) != 1 {
		t.Fatalf("Apply = %v, %v; want one activity with every field nil", got, err)
	}
	for _, f := range []string{"A", "B", "C", "D", "E", "F"} {
		if v, ok := got[0].Fields[f]; !ok || v != nil {
			t.Errorf("field %s = %#v, want nil", f, v)
		}
	}
}
