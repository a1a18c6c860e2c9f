package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/mapping"
)

// allCRMsConfig writes a config with every CRM of crmCases against its
// fake, a jsonl and a webhook target, the example mappings and schemaDir,
// and returns its path and environment.
func allCRMsConfig(t *testing.T, schemaDir string) (string, []string) {
	t.Helper()
	mappings, err := filepath.Abs("../../examples/mappings")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := fmt.Sprintf("[mapping]\ndir = %q\nschema_dir = %q\ndefault_region = \"US\"\n", mappings, schemaDir)
	var environ []string
	for _, c := range crmCases {
		cs := c.start(t)
		text += "[targets." + c.name + "]" + cs.toml
		environ = append(environ, cs.environ...)
	}
	text += fmt.Sprintf("[targets.webhook]\ntype = \"webhook\"\nurl = %q\n", connectortest.NewFakeCRM(t).URL)
	text += fmt.Sprintf("[targets.jsonl]\ntype = \"jsonl\"\npath = %q\n", filepath.Join(dir, "activities.jsonl"))
	path := filepath.Join(dir, "ctibridge.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, environ
}

func runWith(t *testing.T, environ []string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr, environ)
	return code, stdout.String(), stderr.String()
}

// TestTargetsCheck: every target of a good config is checked against its
// fake over loopback: each line is OK and names its target, the jsonl
// file is not created, the webhook is skipped with a note, and nothing is
// written to any CRM.
func TestTargetsCheck(t *testing.T) {
	path, environ := allCRMsConfig(t, t.TempDir())
	code, out, errOut := runWith(t, environ, "targets", "check", "--config", path)
	if code != 0 {
		t.Fatalf("targets check = %d\n%s%s", code, out, errOut)
	}
	for _, name := range []string{"salesforce", "hubspot", "dynamics", "servicenow", "zendesk", "webhook", "jsonl"} {
		if !strings.Contains(out, "OK      "+name+": ") {
			t.Errorf("no OK line for %s:\n%s", name, out)
		}
	}
	for _, want := range []string{"external_id_field CallLogKey__c: External ID and Unique", "id_property ctibridge_key: text with a unique value",
		"webhook: not checked", "activities.jsonl: not there yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PROBLEM") || errOut != "" {
		t.Errorf("problems or notes in a good config:\n%s%s", out, errOut)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "activities.jsonl")); err == nil {
		t.Error("targets check created the jsonl file")
	}

	code, out, _ = runWith(t, environ, "targets", "check", "hubspot", "--config", path)
	if code != 0 || strings.Contains(out, "salesforce") || !strings.Contains(out, "OK      hubspot: ") {
		t.Errorf("targets check hubspot = %d\n%s", code, out)
	}
}

// TestTargetsCheck_Problems: a refused secret, an external-id field the
// org does not have and a jsonl file in a missing directory are PROBLEM
// lines naming their targets, and the command fails; no secret shows.
func TestTargetsCheck_Problems(t *testing.T) {
	path, environ := allCRMsConfig(t, t.TempDir())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), `external_id_field = "CallLogKey__c"`, `external_id_field = "CallKey__c"`, 1)
	text = strings.Replace(text, "activities.jsonl", "missing/activities.jsonl", 1)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, e := range environ {
		if strings.HasPrefix(e, "SN_PASSWORD=") {
			environ[i] = "SN_PASSWORD=not-the-password-4411"
		}
	}
	code, out, errOut := runWith(t, environ, "targets", "check", "--config", path)
	if code != 1 || !strings.Contains(errOut, "3 problems") {
		t.Fatalf("targets check = %d, want 1 and 3 problems\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"PROBLEM salesforce: external_id_field CallKey__c: Task has no such field",
		"PROBLEM servicenow: ",
		"PROBLEM jsonl: path " + filepath.Join(filepath.Dir(path), "missing/activities.jsonl") + ": its directory",
		"OK      hubspot: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "not-the-password-4411") {
		t.Errorf("the password shows:\n%s", out)
	}
}

// TestTargetsDescribe: describe writes the fakes' field lists as schema
// files named TARGET.OBJECT.schema.json in mapping.schema_dir, which
// mapping check then uses: the example mappings fit the fakes' Task and
// calls; a misspelt field in a mapping is then a problem at its
// file:line:col.
func TestTargetsDescribe(t *testing.T) {
	schemas := t.TempDir()
	path, environ := allCRMsConfig(t, schemas)
	for _, c := range [][]string{{"salesforce", "Task"}, {"hubspot", "calls"}} {
		code, out, errOut := runWith(t, environ, "targets", "describe", c[0], c[1], "--config", path)
		file := filepath.Join(schemas, c[0]+"."+c[1]+".schema.json")
		if code != 0 || !strings.Contains(out, "wrote "+file) {
			t.Fatalf("targets describe %s = %d\n%s%s", c, code, out, errOut)
		}
	}
	s, err := mapping.ReadSchema(filepath.Join(schemas, "salesforce.Task.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s.Fields)
	for _, want := range []string{`{"name":"Subject","type":"text","maxLength":255}`, `{"name":"TaskSubtype","type":"picklist","createOnly":true}`,
		`{"name":"CallLogKey__c","type":"text","maxLength":255}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("salesforce Task schema lacks %s:\n%s", want, b)
		}
	}

	code, out, errOut := runWith(t, environ, "mapping", "check", "--config", path)
	if code != 0 || !strings.Contains(out, "ok: the fields fit the CRM schemas hubspot.calls, salesforce.Task") {
		t.Fatalf("mapping check against the fakes' schemas = %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = runWith(t, environ, "targets", "describe", "dynamics", "phonecall", "--config", path)
	if code != 1 || !strings.Contains(errOut, "describe reads Salesforce and HubSpot objects") {
		t.Errorf("describe of a dynamics target = %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runWith(t, environ, "targets", "describe", "salesforce", "Nope__c", "--config", path)
	if code != 1 || !strings.Contains(errOut, "NOT_FOUND") {
		t.Errorf("describe of an object the org lacks = %d\n%s", code, errOut)
	}
}

// TestMappingCheck_UnknownField: with a schema next to the mappings, a
// field the CRM does not have is a problem at its file:line:col, as is a
// text that may exceed its field's limit, and the check fails.
func TestMappingCheck_UnknownField(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "http://127.0.0.1:1")
	schema := `{"crm": "salesforce", "object": "Task", "fields": [
		{"name": "Subject", "type": "text", "maxLength": 255},
		{"name": "Duration", "type": "integer"},
		{"name": "Disposition", "type": "text"},
		{"name": "WhoId", "type": "reference"},
		{"name": "Comments", "type": "text", "maxLength": 32000}]}`
	if err := os.WriteFile(filepath.Join(dir, "mappings", "crm.Task.schema.json"), []byte(schema), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "mapping", "check", "--config", path)
	if code != 1 || !strings.Contains(errOut, "2 problems against the CRM schemas (crm.Task)") {
		t.Fatalf("mapping check = %d\n%s%s", code, out, errOut)
	}
	file := filepath.Join(dir, "mappings", "crm.toml")
	for _, want := range []string{
		file + `:9:1: rule "calls": field Subject: may exceed Subject's limit of 255 characters`,
		file + `:13:1: rule "calls": field Notes: salesforce Task has no field Notes`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
