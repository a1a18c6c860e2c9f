package mapping_test

import (
	"strings"
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
			[]string{"m.toml:5:1: unknown key rule.objekt"}},
		{"Syntax", "[[rule]\nname = 1", []string{"m.toml:1:"}},
		{"UnknownField", `[[rule]]
name = "r"
target = "crm"
object = "Task"
fields = { A = 'anis', B = 'agent.nmae' }`, []string{`rule "r": field A: unknown name anis`, `rule "r": field B:`, "nmae"}},
		{"TypeError", `[[rule]]
name = "r"
target = "crm"
object = "Task"
when = 'duration'
fields = { A = 'duration + "s"' }`, []string{`rule "r": when:`, `rule "r": field A: invalid operation`}},
		{"UnknownTarget", `[[rule]]
name = "r"
target = "salesforce"
object = "Task"
fields = { A = 'id' }`, []string{`target "salesforce" is not configured (configured: crm, jsonl)`}},
		{"UnknownLookup", `[[rule]]
name = "r"
target = "crm"
object = "Task"
fields = { A = 'lookup("dispos", disposition?.name)' }`, []string{`no [lookups.dispos] table is defined`}},
		{"Required", `[[rule]]
when = 'true'`, []string{"rule 1: name is required", "target is required", "object is required", "at least one field"}},
		{"DuplicateRule", `[[rule]]
name = "r"
target = "crm"
object = "Task"
fields = { A = 'id' }
[[rule]]
name = "r"
target = "crm"
object = "Task"
fields = { A = 'id' }`, []string{`rule "r": name already used in m.toml`}},
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
