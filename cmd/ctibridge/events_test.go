package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// TestEvents_RemapAfterFix: a mapping that fails at run time keeps the
// event; once the mapping file is fixed, `ctibridge events remap --failed`
// maps it, and the daemon delivers the activity.
func TestEvents_RemapAfterFix(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	dir := t.TempDir()
	path := writeConfig(t, dir, crm.URL)
	mappingFile := filepath.Join(dir, "mappings", "crm.toml")
	broken := strings.Replace(testMapping, `Notes       = 'notes'`, `Notes       = 'attached.missing.deeper'`, 1)
	os.WriteFile(mappingFile, []byte(broken), 0o644)
	m := MustRunMain(t, path)
	status, body := post(t, m.Addr(), "brightpattern", readExample(t))
	if status != http.StatusAccepted || body["mappingError"] == nil {
		t.Fatalf("POST = %d %v, want 202 with a mapping error", status, body)
	}

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"events", "ls", "--failed", "--config", path}, &out, &errOut, testEnviron); code != 0 ||
		!strings.Contains(out.String(), "mapping_failed") || !strings.Contains(out.String(), `field Notes`) {
		t.Fatalf("events ls --failed = %d\n%s%s", code, out.String(), errOut.String())
	}

	os.WriteFile(mappingFile, []byte(testMapping), 0o644)
	out.Reset()
	if code := run(context.Background(), []string{"events", "remap", "--failed", "--config", path}, &out, &errOut, testEnviron); code != 0 ||
		!strings.Contains(out.String(), "remapped 1 events into 1 activities; 0 still fail") {
		t.Fatalf("events remap --failed = %d\n%s%s", code, out.String(), errOut.String())
	}
	crm.WaitAccepted(t, 10*time.Second, callKey("7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D"))

	out.Reset()
	run(context.Background(), []string{"events", "ls", "--json", "--config", path}, &out, &errOut, testEnviron)
	var evs []map[string]any
	if err := json.Unmarshal(out.Bytes(), &evs); err != nil || len(evs) != 1 || evs[0]["state"] != "processed" {
		t.Fatalf("events ls --json = %s (%v), want the one event, processed", out.String(), err)
	}
}

func TestEvents_RemapRefusesBrokenMappings(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "http://127.0.0.1:1")
	MustRunMain(t, path).Close(context.Background()) // create the outbox
	os.WriteFile(filepath.Join(dir, "mappings", "crm.toml"), []byte("[[rule]]\nname = 1\n"), 0o644)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"events", "remap", "--failed", "--config", path}, &out, &errOut, testEnviron)
	if code != 1 || !strings.Contains(errOut.String(), "fix them first") {
		t.Fatalf("remap with broken mappings = %d\n%s", code, errOut.String())
	}
}
