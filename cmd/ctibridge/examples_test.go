package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/mapping"
)

// The shipped examples, relative to the repository's root: the tests run
// there (t.Chdir), so that the commands are the ones an admin types and the
// previews name the files as an admin sees them.
const (
	exampleConfig   = "examples/ctibridge.toml"
	exampleMappings = "examples/mappings"
	previewGoldens  = "cmd/ctibridge/testdata/previews"
)

var update = flag.Bool("update", false, "rewrite testdata/previews/*.json from `mapping preview`")

// exampleEnviron sets the secrets examples/ctibridge.toml refers to.
var exampleEnviron = append(slices.Clone(testEnviron),
	"SALESFORCE_CLIENT_ID=3MVG9example", "SALESFORCE_CLIENT_SECRET=example-secret",
	"HUBSPOT_TOKEN=pat-na1-example",
	"DYNAMICS_CLIENT_ID=0b7c3a52-9d4e-4f1a-8f0e-5a1c2d3e4f60", "DYNAMICS_CLIENT_SECRET=example-secret",
	"ZENDESK_API_TOKEN=example-token",
	"SERVICENOW_PASSWORD=example-password",
	"INTERACTIONS_WEBHOOK_SECRET="+testSecret,
)

// runExampleCLI is runCLI with exampleEnviron, from the repository's root.
func runExampleCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, exampleEnviron)
	return code, stdout.String(), stderr.String()
}

// TestExamples_Check is what CI runs: the shipped mappings load, without a
// problem, against the shipped configuration.
func TestExamples_Check(t *testing.T) {
	t.Chdir("../..")
	code, out, errOut := runExampleCLI(t, "mapping", "check", "--config", exampleConfig, exampleMappings)
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("mapping check %s = %d\n%s%s", exampleMappings, code, out, errOut)
	}
}

// TestExamples_Targets checks that an admin can copy the examples as they
// are: every rule of every file targets a target examples/ctibridge.toml
// defines, the one named after the file's CRM, and every target is used.
func TestExamples_Targets(t *testing.T) {
	t.Chdir("../..")
	cfg, err := config.Load(exampleConfig, exampleEnviron)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mapping.Dir != exampleMappings {
		t.Errorf("%s: mapping.dir = %q, want %q", exampleConfig, cfg.Mapping.Dir, exampleMappings)
	}
	set, err := mapping.LoadDir(exampleMappings, mapping.Options{Targets: cfg.TargetNames(), DefaultRegion: cfg.Mapping.DefaultRegion})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range cfg.TargetNames() {
		want := name // each CRM's own target type, named after it
		if tg := cfg.Targets[name]; tg.Type != want {
			t.Errorf("target %s is of type %s, want %s", name, tg.Type, want)
		}
	}
	// Every target builds from the example as it is, with its secrets set.
	if err := checkConfig(cfg, io.Discard); err != nil {
		t.Errorf("config check of %s: %v", exampleConfig, err)
	}
	if got, want := set.Targets(), cfg.TargetNames(); !slices.Equal(got, want) {
		t.Errorf("the rules target %v; the config defines %v", got, want)
	}
	files, _ := filepath.Glob(filepath.Join(exampleMappings, "*.toml"))
	withRules := map[string]bool{}
	for _, r := range set.Explain(&connector.Interaction{}) {
		crm := strings.TrimSuffix(filepath.Base(r.File), ".toml")
		withRules[crm] = true
		if r.Target != crm {
			t.Errorf("%s:%d: rule %s targets %q, want %q, the CRM the file is for", r.File, r.Line, r.Rule, r.Target, crm)
		}
	}
	for _, f := range files {
		if crm := strings.TrimSuffix(filepath.Base(f), ".toml"); crm != "lookups" && !withRules[crm] {
			t.Errorf("%s has no rules", f)
		}
	}

	// mapping check is what catches a target the config lacks.
	dir := t.TempDir()
	b, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	without := strings.Replace(string(b), "[targets.zendesk]", "[targets.helpdesk]", 1)
	if err := os.WriteFile(filepath.Join(dir, "ctibridge.toml"), []byte(without), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runExampleCLI(t, "mapping", "check", "--config", filepath.Join(dir, "ctibridge.toml"), exampleMappings)
	if code == 0 || !strings.Contains(out, `target "zendesk" is not configured`) {
		t.Errorf("check without a zendesk target = %d\n%s, want the zendesk rules reported", code, out)
	}
}

// exampleEvents are the sample events the previews show, and the rules
// each must match: the previews are the spec an admin reads.
var exampleEvents = []struct {
	platform, file string
	name           string // the golden's name; default the file's
	// edit, if set, makes the event previewed of the file's contents.
	edit        func(t *testing.T, event string) string
	interaction string // what `mapping preview` says it previews, if not the file's last interaction
	// earlier are the rules each interaction the sequence completes before
	// its last one matches, in order (each agent's leg, a consult leg).
	earlier [][]string
	matched []string // the rules the last interaction matches
}{
	{platform: "brightpattern", file: "connector/brightpattern/testdata/inbound-call.json",
		matched: []string{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "servicenow-case-notes", "webhook-interactions", "zendesk-talk-calls"}},
	// A card number in the agent's notes and in attached data is masked
	// in every record.
	{platform: "brightpattern", file: "connector/brightpattern/testdata/inbound-call.json", name: "card-in-notes",
		edit: replacing(
			"Walked customer through", "Took payment with 4111 1111 1111 1111, CVV: 123. Walked customer through",
			`"accountNumber": "AC-104233",`, `"accountNumber": "AC-104233", "paymentNote": "card 5555555555554444 exp 12/28",`),
		matched: []string{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "servicenow-case-notes", "webhook-interactions", "zendesk-talk-calls"}},
	// Notes longer than Dynamics' description (2,000) are cut there only.
	{platform: "brightpattern", file: "connector/brightpattern/testdata/inbound-call.json", name: "long-notes",
		edit:    replacing("Walked customer through firmware update.", strings.Repeat("Router drops the connection every evening; ", 50)+"walked customer through firmware update."),
		matched: []string{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "servicenow-case-notes", "webhook-interactions", "zendesk-talk-calls"}},
	{platform: "brightpattern", file: "connector/brightpattern/testdata/outbound-call.json",
		matched: []string{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "webhook-interactions", "zendesk-talk-calls"}},
	{platform: "brightpattern", file: "connector/brightpattern/testdata/chat.json",
		matched: []string{"salesforce-chats-emails", "webhook-interactions"}},
	{platform: "brightpattern", file: "connector/brightpattern/testdata/email.json",
		matched: []string{"salesforce-chats-emails", "webhook-interactions", "zendesk-ticket-notes"}},
	{platform: "five9", file: "connector/five9/testdata/inbound-call.jsonl",
		matched: []string{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "webhook-interactions", "zendesk-talk-calls"}},
	{platform: "five9", file: "connector/five9/testdata/outbound-preview-call.jsonl",
		matched: []string{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "webhook-interactions", "zendesk-talk-calls"}},
	// A transfer: one record per agent's leg, then the second agent's chat.
	{platform: "five9", file: "connector/five9/testdata/transfer.jsonl",
		earlier: [][]string{
			{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "servicenow-case-notes", "webhook-interactions", "zendesk-talk-calls"},
			{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "servicenow-case-notes", "webhook-interactions", "zendesk-talk-calls"}},
		matched: []string{"salesforce-chats-emails", "webhook-interactions"}},
	{platform: "five9", file: "connector/five9/testdata/chat.jsonl",
		matched: []string{"salesforce-chats-emails", "webhook-interactions"}},
	{platform: "five9", file: "connector/five9/testdata/email.jsonl",
		matched: []string{"salesforce-chats-emails", "servicenow-case-notes", "webhook-interactions"}},
	{platform: "genesys", file: "connector/genesys/testdata/inbound-call.jsonl",
		matched: []string{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "webhook-interactions", "zendesk-talk-calls"}},
	{platform: "genesys", file: "connector/genesys/testdata/chat.jsonl",
		matched: []string{"salesforce-chats-emails", "webhook-interactions"}},
	{platform: "genesys", file: "connector/genesys/testdata/email.jsonl",
		matched: []string{"salesforce-chats-emails", "webhook-interactions"}},
	// The sequence's last interaction is the customer's call; the consult
	// leg, which ends first, is shown before it (and alone in the next case).
	{platform: "genesys", file: "connector/genesys/testdata/consult.jsonl", earlier: [][]string{nil},
		matched: []string{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "webhook-interactions", "zendesk-talk-calls"}},
	{platform: "genesys", file: "connector/genesys/testdata/consult.jsonl", name: "consult-leg", edit: upTo(`"eventType":"REMOVED"`),
		interaction: "05NHA0L13O8RBCHAHD8O2LAES0000ABD (voice, internal)", matched: nil},
	// A transfer: one record per agent's leg.
	{platform: "genesys", file: "connector/genesys/testdata/transfer.jsonl",
		earlier: [][]string{{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "webhook-interactions", "zendesk-talk-calls"}},
		matched: []string{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "webhook-interactions", "zendesk-talk-calls"}},
	{platform: "genesys", file: "connector/genesys/testdata/outbound-preview.jsonl",
		matched: []string{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "webhook-interactions"}},
	{platform: "genesys", file: "connector/genesys/testdata/click-to-dial.jsonl",
		matched: []string{"dynamics-phonecalls", "hubspot-calls", "salesforce-calls", "webhook-interactions"}},
}

// limits are the CRMs' text limits (from their field references) the examples respect.
var limits = map[string]map[string]int{
	"salesforce": {"Subject": 255, "CallObject": 255, "CallDisposition": 255, "Description": 32000},
	"hubspot":    {"hs_call_title": 255},
	"dynamics":   {"subject": 200, "phonenumber": 200, "category": 250, "description": 2000},
}

// TestExamples_Previews previews sample events of every platform with the
// shipped mappings and compares each preview with its golden file in
// testdata/previews (go test -run Examples_Previews -update rewrites them).
func TestExamples_Previews(t *testing.T) {
	t.Chdir("../..")
	for _, ev := range exampleEvents {
		name := ev.name
		if name == "" {
			name = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(ev.file), ".jsonl"), ".json")
		}
		t.Run(ev.platform+"-"+name, func(t *testing.T) {
			event := ev.file
			if ev.edit != nil {
				b, err := os.ReadFile(ev.file)
				if err != nil {
					t.Fatal(err)
				}
				event = filepath.Join(t.TempDir(), filepath.Base(ev.file))
				if err := os.WriteFile(event, []byte(ev.edit(t, string(b))), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			code, out, errOut := runExampleCLI(t, "mapping", "preview", "--event", event, "--platform", ev.platform,
				"--dir", exampleMappings, "--config", exampleConfig)
			if code != 0 {
				t.Fatalf("mapping preview = %d\n%s%s", code, out, errOut)
			}
			if ev.interaction != "" && !strings.Contains(errOut, ev.interaction) {
				t.Fatalf("mapping preview says %q, want the interaction %s", errOut, ev.interaction)
			}
			golden := filepath.Join(previewGoldens, ev.platform+"-"+name+".json")
			if *update {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run Examples_Previews -update writes it)", err)
			}
			if out != string(want) {
				t.Errorf("mapping preview differs from %s (-update rewrites it):\n%s", golden, out)
			}
			for _, card := range []string{"1111 1111 1111", "555555555555", "CVV: 123"} {
				if strings.Contains(out, card) {
					t.Errorf("the preview shows %q: card numbers must be masked", card)
				}
			}

			var interactions [][]previewResult // one array per interaction
			for dec := json.NewDecoder(strings.NewReader(out)); dec.More(); {
				var results []previewResult
				if err := dec.Decode(&results); err != nil {
					t.Fatal(err)
				}
				interactions = append(interactions, results)
			}
			if len(interactions) != len(ev.earlier)+1 {
				t.Fatalf("the preview shows %d interactions, want %d", len(interactions), len(ev.earlier)+1)
			}
			for i, results := range interactions {
				want := ev.matched
				if i < len(ev.earlier) {
					want = ev.earlier[i]
				}
				checkResults(t, results, want)
			}
		})
	}
}

// previewResult is what `mapping preview` says of one rule.
type previewResult struct {
	Rule, Target, Error string
	Matched             bool
	Activity            *struct{ Fields map[string]any }
}

// checkResults checks the rules a preview of one interaction says matched,
// and the CRMs' text limits in what they make.
func checkResults(t *testing.T, results []previewResult, want []string) {
	t.Helper()
	var matched []string
	for _, r := range results {
		if r.Error != "" {
			t.Errorf("rule %s failed: %s", r.Rule, r.Error)
		}
		if !r.Matched {
			continue
		}
		matched = append(matched, r.Rule)
		if r.Activity == nil {
			continue
		}
		for field, max := range limits[r.Target] {
			if s, _ := r.Activity.Fields[field].(string); utf8.RuneCountInString(s) > max {
				t.Errorf("rule %s: %s has %d characters, more than %s's %d", r.Rule, field, utf8.RuneCountInString(s), r.Target, max)
			}
		}
	}
	slices.Sort(matched)
	if !slices.Equal(matched, want) {
		t.Errorf("matched rules %v, want %v", matched, want)
	}
}

// upTo keeps the lines of a sequence up to the first that contains marker.
func upTo(marker string) func(*testing.T, string) string {
	return func(t *testing.T, event string) string {
		i := strings.Index(event, marker)
		if i < 0 {
			t.Fatalf("the event has no line with %s", marker)
		}
		if j := strings.IndexByte(event[i:], '\n'); j >= 0 {
			return event[:i+j+1]
		}
		return event
	}
}

// replacing replaces each old with its new, pairwise.
func replacing(oldnew ...string) func(*testing.T, string) string {
	return func(t *testing.T, event string) string {
		for i := 0; i < len(oldnew); i += 2 {
			if !strings.Contains(event, oldnew[i]) {
				t.Fatalf("the event has no %q", oldnew[i])
			}
			event = strings.Replace(event, oldnew[i], oldnew[i+1], 1)
		}
		return event
	}
}
