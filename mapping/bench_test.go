package mapping_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/mapping"
)

// benchRule is a Salesforce Task rule of 12 fields, with lookups.
const benchRule = `
[[rule]]
name   = "salesforce-calls"
target = "crm"
object = "Task"
when   = 'channel == "voice" && !isConsultation'

[rule.fields]
Subject               = { expr = '"Call " + (direction == "inbound" ? "from " + ani : "to " + dnis)', max_length = 255 }
TaskSubtype           = '"Call"'
Status                = '"Completed"'
CallType              = 'lookup("call_types", direction, "Inbound")'
CallDurationInSeconds = 'duration'
CallObject            = 'id'
CallDisposition       = { expr = 'lookup("dispositions", disposition?.name, "Other")', max_length = 255 }
Phone                 = 'e164(ani)'
Queue                 = 'queue'
WhoId                 = { expr = 'who?.id', omit_empty = true }
WhatId                = { expr = 'what?.id', omit_empty = true }
OwnerId               = 'agent.id'

[lookups.call_types]
inbound  = "Inbound"
outbound = "Outbound"

[lookups.dispositions]
"Sale Closed" = "Sale"
`

// BenchmarkApply maps one interaction with a 12-field rule.
func BenchmarkApply(b *testing.B) {
	s := mustLoad(b, benchRule)
	in := call()
	b.ReportAllocs()
	for b.Loop() {
		acts, err := s.Apply(in)
		if err != nil || len(acts) != 1 {
			b.Fatal(acts, err)
		}
	}
}

// BenchmarkLoad50 loads 50 files of one such rule each.
func BenchmarkLoad50(b *testing.B) {
	files := make([]mapping.File, 50)
	for i := range files {
		src := fmt.Sprintf("%s\n", benchRule)
		src = replaceOnce(src, `name   = "salesforce-calls"`, fmt.Sprintf(`name   = "calls-%d"`, i))
		src = replaceOnce(src, "[lookups.call_types]", fmt.Sprintf("[lookups.call_types_%d]", i))
		src = replaceOnce(src, `lookup("call_types"`, fmt.Sprintf(`lookup("call_types_%d"`, i))
		src = replaceOnce(src, "[lookups.dispositions]", fmt.Sprintf("[lookups.dispositions_%d]", i))
		src = replaceOnce(src, `lookup("dispositions"`, fmt.Sprintf(`lookup("dispositions_%d"`, i))
		files[i] = mapping.File{Name: fmt.Sprintf("mappings/m%02d.toml", i), Data: []byte(src)}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mapping.Load(files, targets); err != nil {
			b.Fatal(err)
		}
	}
}

func replaceOnce(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic("no " + old)
	}
	return strings.Replace(s, old, new, 1)
}

// BenchmarkMaskJSON masks a Bright Pattern event without card data, as
// ingest does to every body it stores.
func BenchmarkMaskJSON(b *testing.B) {
	body, err := os.ReadFile("../examples/events/brightpattern-call.json")
	if err != nil {
		b.Fatal(err)
	}
	var none *mapping.Set
	b.ReportAllocs()
	for b.Loop() {
		if out := none.MaskJSON(body); len(out) != len(body) {
			b.Fatal("masked a body without card data")
		}
	}
}
