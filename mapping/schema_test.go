package mapping_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/mapping"
)

// TestSchemaGolden runs every testdata/schema/*.txtar case: mapping files
// (*.toml, loaded as mappings/NAME), schema files (TARGET.OBJECT.schema.json)
// and want-problems, what CheckSchemas reports ("ok" for nothing), each
// problem at its line and column. -update rewrites want-problems.
func TestSchemaGolden(t *testing.T) {
	paths, err := filepath.Glob("testdata/schema/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 4 {
		t.Fatalf("%d schema cases, want at least 4", len(paths))
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ar := parseArchive(data)
			dir := t.TempDir()
			var files []mapping.File
			for _, f := range ar.files {
				switch {
				case strings.HasSuffix(f.name, ".toml"):
					files = append(files, mapping.File{Name: "mappings/" + f.name, Data: f.data})
				case strings.HasSuffix(f.name, mapping.SchemaSuffix):
					if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			set, err := mapping.Load(files, goldenOptions)
			if err != nil {
				t.Fatalf("the mappings do not load: %v", err)
			}
			schemas, err := mapping.LoadSchemas(dir)
			if err != nil {
				t.Fatal(err)
			}
			got := []byte("ok\n")
			if ps := set.CheckSchemas(schemas); len(ps) > 0 {
				got = []byte(ps.Error() + "\n")
			}
			want, _ := ar.get("want-problems")
			if *update {
				if ar.set("want-problems", got) {
					if err := os.WriteFile(path, ar.format(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return
			}
			if !bytes.Equal(got, want) {
				t.Errorf("problems differ\n--- got:\n%s--- want:\n%s", got, want)
			}
		})
	}
}

// TestLoadSchemas_Bad: a schema file that is not one is an error naming
// the file and what is wrong.
func TestLoadSchemas_Bad(t *testing.T) {
	for name, body := range map[string]string{
		"crm.Task.schema.json":  `{"crm":"x","object":"Task","fields":[{"name":"A","type":"texte"}]}`,
		"crm.Call.schema.json":  `{"crm":"x","object":"Call","fields":[{"name":"A","type":"text","colour":1}]}`,
		"crm.Empty.schema.json": `{"crm":"x","object":"Empty","fields":[]}`,
		"noobject.schema.json":  `{"crm":"x","object":"x","fields":[{"name":"A","type":"text"}]}`,
		"crm.Twice.schema.json": `{"crm":"x","object":"Twice","fields":[{"name":"A","type":"text"},{"name":"A","type":"date"}]}`,
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := mapping.LoadSchemas(dir)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
}

// TestSchemaFromSalesforce: describe's types, lengths, picklists and
// rights become the schema's.
func TestSchemaFromSalesforce(t *testing.T) {
	s, err := mapping.SchemaFromSalesforce("Task", []byte(`{"name":"Task","fields":[
		{"name":"Subject","type":"combobox","length":255,"createable":true,"updateable":true,"nillable":true,
		 "picklistValues":[{"value":"Call","active":true}]},
		{"name":"CallType","type":"picklist","length":40,"restrictedPicklist":true,"createable":true,"updateable":true,"nillable":true,
		 "picklistValues":[{"value":"Inbound","active":true},{"value":"Old","active":false}]},
		{"name":"TaskSubtype","type":"picklist","length":40,"restrictedPicklist":true,"createable":true,"updateable":false,"nillable":true},
		{"name":"Status","type":"picklist","createable":true,"updateable":true,"nillable":false,"defaultedOnCreate":false},
		{"name":"CreatedDate","type":"datetime","createable":false,"updateable":false},
		{"name":"Geo__c","type":"location"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping.SchemaField{
		{Name: "Subject", Type: "text", MaxLength: 255, Picklist: []string{"Call"}, OpenPicklist: true},
		{Name: "CallType", Type: "picklist", Picklist: []string{"Inbound"}},
		{Name: "TaskSubtype", Type: "picklist", CreateOnly: true},
		{Name: "Status", Type: "picklist", Required: true},
		{Name: "CreatedDate", Type: "datetime", ReadOnly: true},
		{Name: "Geo__c", Type: "other", ReadOnly: true},
	}
	if got := marshal(t, s.Fields); !bytes.Equal(got, marshal(t, want)) {
		t.Errorf("fields\n%s\nwant\n%s", got, marshal(t, want))
	}
	if !s.CaseInsensitive || s.CRM != "salesforce" {
		t.Errorf("schema %+v: want a case-insensitive salesforce schema", s)
	}
}

// TestSchemaFromHubSpot: property types become the schema's; checkbox
// enumerations are multi-valued, calculated properties read-only.
func TestSchemaFromHubSpot(t *testing.T) {
	s, err := mapping.SchemaFromHubSpot("calls", []byte(`{"results":[
		{"name":"hs_call_direction","type":"enumeration","fieldType":"select","options":[{"value":"INBOUND"},{"value":"OUTBOUND"}]},
		{"name":"tags","type":"enumeration","fieldType":"checkbox","options":[{"value":"a"}]},
		{"name":"done","type":"enumeration","fieldType":"booleancheckbox","options":[{"value":"true"},{"value":"false"}]},
		{"name":"hs_call_duration","type":"number","fieldType":"number"},
		{"name":"hs_timestamp","type":"datetime","fieldType":"date"},
		{"name":"hs_createdate","type":"datetime","modificationMetadata":{"readOnlyValue":true}},
		{"name":"hs_call_title","type":"string","fieldType":"text"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping.SchemaField{
		{Name: "hs_call_direction", Type: "picklist", Picklist: []string{"INBOUND", "OUTBOUND"}},
		{Name: "tags", Type: "multipicklist", Picklist: []string{"a"}},
		{Name: "done", Type: "boolean"},
		{Name: "hs_call_duration", Type: "number"},
		{Name: "hs_timestamp", Type: "datetime"},
		{Name: "hs_createdate", Type: "datetime", ReadOnly: true},
		{Name: "hs_call_title", Type: "text"},
	}
	if got := marshal(t, s.Fields); !bytes.Equal(got, marshal(t, want)) {
		t.Errorf("fields\n%s\nwant\n%s", got, marshal(t, want))
	}
}
