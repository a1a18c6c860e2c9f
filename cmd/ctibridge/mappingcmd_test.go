package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMappingCheck(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "http://127.0.0.1:1")
	if code, out, errOut := runCLI(t, "mapping", "check", "--config", path); code != 0 || !strings.Contains(out, "ok: 1 rules in 1 files (crm.toml)") {
		t.Fatalf("check of a good mapping = %d\n%s%s", code, out, errOut)
	}
	bad := strings.Replace(testMapping, `Duration    = 'duration'`, `Duration    = 'duraton'`, 1)
	bad = strings.Replace(bad, `target = "crm"`, `target = "salesforce"`, 1)
	os.WriteFile(filepath.Join(dir, "mappings", "crm.toml"), []byte(bad), 0o644)
	code, out, errOut := runCLI(t, "mapping", "check", "--config", path)
	if code != 1 || !strings.Contains(errOut, "2 problems") {
		t.Fatalf("check of a broken mapping = %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"crm.toml:4:", `target "salesforce"`, "crm.toml:10:", `unknown name duraton`} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

// TestMappingCheck_WithoutSecrets: checking mappings needs the targets'
// names, not their secrets, so a machine without CRM_SECRET can check
// them; the unresolved secret is a note.
func TestMappingCheck_WithoutSecrets(t *testing.T) {
	path := writeConfig(t, t.TempDir(), "http://127.0.0.1:1")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"mapping", "check", "--config", path}, &stdout, &stderr, nil)
	if code != 0 || !strings.Contains(stdout.String(), "ok: 1 rules") {
		t.Fatalf("check without the secret's variable = %d\n%s%s", code, &stdout, &stderr)
	}
	if !strings.Contains(stderr.String(), "CRM_SECRET is not set") {
		t.Errorf("stderr = %q, want a note naming the unresolved secret", &stderr)
	}
}

func TestMappingPreview(t *testing.T) {
	path := writeConfig(t, t.TempDir(), "http://127.0.0.1:1")
	code, out, errOut := runCLI(t, "mapping", "preview", "--config", path, "--event", "../../examples/events/brightpattern-call.json")
	if code != 0 || !strings.Contains(errOut, "brightpattern interaction 7E0C4B2A") {
		t.Fatalf("preview = %d\n%s%s", code, out, errOut)
	}
	var res []struct {
		Rule     string
		Matched  bool
		Activity struct{ Fields map[string]any }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 || !res[0].Matched ||
		res[0].Activity.Fields["Disposition"] != "Sale" {
		t.Fatalf("preview output = %s (%v); want the calls rule matched with Disposition Sale", out, err)
	}

	// A chat does not match a voice-only rule, and preview says why.
	chat := filepath.Join(t.TempDir(), "chat.json")
	b, _ := os.ReadFile("../../connector/brightpattern/testdata/chat.json")
	os.WriteFile(chat, b, 0o644)
	_, out, _ = runCLI(t, "mapping", "preview", "--config", path, "--event", chat, "--platform", "brightpattern")
	if !strings.Contains(out, `"matched": false`) || !strings.Contains(out, `channel is \"chat\"`) {
		t.Fatalf("preview of a chat = %s, want the rule unmatched with the reason", out)
	}

	// A sequence, guessed to be Five9's.
	code, out, errOut = runCLI(t, "mapping", "preview", "--config", path, "--event", "../../examples/events/five9-call.jsonl")
	if code != 0 || !strings.Contains(errOut, "five9 interaction") || !strings.Contains(out, `"matched": true`) {
		t.Fatalf("preview of a Five9 sequence = %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "mapping", "preview", "--config", path, "--event", path); code != 1 ||
		!strings.Contains(errOut, "no platform makes an interaction") {
		t.Fatalf("preview of a non-event = %d %s", code, errOut)
	}
}

func TestMappingFields(t *testing.T) {
	code, out, _ := runCLI(t, "mapping", "fields")
	for _, want := range []string{"disposition.name", "who.id", "lookup(", "e164(", "redact("} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("mapping fields lacks %q (exit %d)", want, code)
		}
	}
}

// TestRun_Commands checks that every command the usage names is
// dispatched: a verb lost from run() is an "unknown command".
func TestRun_Commands(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "ctibridge ") {
		t.Errorf("version = %d %q", code, out)
	}
	for _, args := range [][]string{{"serve", "--help"}, {"outbox", "ls", "--help"}, {"events", "ls", "--help"},
		{"mapping", "check", "--help"}, {"bench", "--help"}} {
		if _, _, errOut := runCLI(t, args...); strings.Contains(errOut, "unknown command") {
			t.Errorf("%v: %s", args, errOut)
		}
	}
}

// TestConfigCommands: check validates without starting anything and names
// a bad key; show prints the effective config with secrets redacted.
func TestConfigCommands(t *testing.T) {
	path := writeConfig(t, t.TempDir(), "http://127.0.0.1:1")
	if code, out, errOut := runCLI(t, "config", "check", path); code != 0 || !strings.Contains(out, "ok: 1 targets ([crm])") {
		t.Fatalf("config check = %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "config", "show", "--config", path)
	if code != 0 || !strings.Contains(out, `secret = '[redacted]'`) || strings.Contains(out, testSecret) {
		t.Fatalf("config show = %d, want the secret redacted\n%s%s", code, out, errOut)
	}
	sf := writeConfigWith(t, t.TempDir(), testMapping, `
[targets.crm]
type = "salesforce"
login_url = "https://acme.my.salesforce.com"
client_id = "id"
client_secret = "s"
`)
	if code, _, errOut := runCLI(t, "config", "check", sf); code != 1 || !strings.Contains(errOut, "targets.crm.external_id_field") {
		t.Errorf("config check of a salesforce target without its external-id field = %d %q, want 1 naming the key", code, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[server]\nlisen = \"x\"\n"), 0o600)
	if code, _, errOut := runCLI(t, "config", "check", bad); code != 1 || !strings.Contains(errOut, "lisen") {
		t.Errorf("config check of a bad file = %d %q, want 1 naming the key", code, errOut)
	}
}
