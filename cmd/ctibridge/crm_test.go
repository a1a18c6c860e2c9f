package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/connector/dynamics"
	"github.com/ctibridge/ctibridge/outbox"
)

// crmCase is one CRM the daemon logs calls into with the shipped example
// mappings: how to configure it against its fake, the CRM records the
// agent picked (Bright Pattern's associatedObjects, as that CRM names
// them), and how to count and check what the fake holds.
type crmCase struct {
	name  string // the example mappings' target
	start func(t *testing.T) crmSetup
}

// crmSetup is one CRM's fake, started: the target's TOML (after its
// [targets.NAME] line), the environment its secrets come from, the
// associatedObjects of a call on a record of it, a check of the record a
// call made, and the fake's records of a key.
type crmSetup struct {
	toml    string
	environ []string
	objects string
	check   func(t *testing.T, key func(rule string) string, recordID string)
	records func(key string) []string
}

// crmCases builds the fakes of the CRMs whose example mappings log a call.
var crmCases = []crmCase{
	{name: "salesforce", start: func(t *testing.T) crmSetup {
		f := connectortest.NewSalesforce(t)
		const contact = "003000000000001AAA" // a valid 18-character id: checksum of no capitals
		return crmSetup{fmt.Sprintf(`
type = "salesforce"
login_url = %q
client_id = %q
client_secret = "${SF_CLIENT_SECRET}"
external_id_field = "CallLogKey__c"
`, f.URL, f.ClientID), []string{"SF_CLIENT_SECRET=" + f.ClientSecret},
			`[{"id": "` + contact + `", "type": "contact", "displayName": "Maria Lopez"}]`,
			func(t *testing.T, key func(string) string, recordID string) {
				if rec := f.Record(recordID); rec["WhoId"] != contact || rec["TaskSubtype"] != "Call" {
					t.Errorf("salesforce Task = %v, want WhoId %s and TaskSubtype Call", rec, contact)
				}
			}, f.Records}
	}},
	{name: "hubspot", start: func(t *testing.T) crmSetup {
		f := connectortest.NewHubSpot(t, connectortest.HubSpotOptions{PrivateAppToken: "pat-na1-fake"})
		contact := f.AddRecord("contacts", map[string]string{"phone": "+14155550142"}, time.Unix(0, 0))
		return crmSetup{fmt.Sprintf(`
type = "hubspot"
base_url = %q
token = "${HUBSPOT_TOKEN}"
id_property = "ctibridge_key"
`, f.URL), []string{"HUBSPOT_TOKEN=pat-na1-fake"},
			`[{"id": "` + contact + `", "type": "contact", "displayName": "Maria Lopez"}]`,
			func(t *testing.T, key func(string) string, recordID string) {
				ids := f.Records(key("hubspot-calls"))
				if len(ids) != 1 {
					t.Fatalf("hubspot: %d calls for the call, want 1", len(ids))
				}
				if c := f.Calls()[ids[0]]; ids[0] != recordID || !strings.Contains(strings.Join(c.Links, " "), contact) {
					t.Errorf("hubspot call %s = %+v, want record %s linked to contact %s", ids[0], c, recordID, contact)
				}
			}, f.Records}
	}},
	{name: "dynamics", start: func(t *testing.T) crmSetup {
		f := connectortest.NewFakeDataverse(t)
		const contact = "5a9d6c1e-2b3c-4d5e-8f90-0123456789ab"
		return crmSetup{fmt.Sprintf(`
type = "dynamics"
url = %q
token_url = %q
tenant_id = %q
client_id = %q
client_secret = "${DYNAMICS_SECRET}"
`, f.URL, f.TokenURL(), connectortest.DataverseTenant, connectortest.DataverseClientID),
			[]string{"DYNAMICS_SECRET=" + connectortest.DataverseClientSecret},
			`[{"id": "` + contact + `", "type": "contact", "displayName": "Maria Lopez"}]`,
			func(t *testing.T, key func(string) string, recordID string) {
				if n := f.Count("phonecalls"); n != 1 {
					t.Fatalf("dynamics: %d phone calls, want 1", n)
				}
				if rec := f.Record("phonecalls", recordID); !strings.Contains(fmt.Sprint(rec), contact) {
					t.Errorf("dynamics phone call = %v, want it linked to contact %s", rec, contact)
				}
			}, func(key string) []string {
				if id := dynamics.ActivityID(key); f.Record("phonecalls", id) != nil {
					return []string{id}
				}
				return nil
			}}
	}},
	{name: "servicenow", start: func(t *testing.T) crmSetup {
		f := connectortest.NewFakeServiceNow(t)
		incident := f.AddRow("incident", map[string]string{"short_description": "Customer cannot log in"})
		return crmSetup{fmt.Sprintf(`
type = "servicenow"
url = %q
username = %q
password = "${SN_PASSWORD}"
`, f.URL, connectortest.ServiceNowUser), []string{"SN_PASSWORD=" + connectortest.ServiceNowPassword},
			`[{"id": "` + incident + `", "type": "incident", "displayName": "INC0010001"}]`,
			func(t *testing.T, key func(string) string, recordID string) {
				if n := len(f.Records(key("servicenow-incident-notes"))); n != 1 {
					t.Fatalf("servicenow: %d work notes for the call, want 1", n)
				}
			}, f.Records}
	}},
	{name: "zendesk", start: func(t *testing.T) crmSetup {
		f := connectortest.NewFakeZendesk(t)
		return crmSetup{fmt.Sprintf(`
type = "zendesk"
url = %q
email = %q
api_token = "${ZENDESK_TOKEN}"
`, f.URL, connectortest.ZendeskEmail), []string{"ZENDESK_TOKEN=" + connectortest.ZendeskAPIToken},
			`[]`,
			func(t *testing.T, key func(string) string, recordID string) {
				if n := len(f.Records(key("zendesk-talk-calls"))); n != 1 {
					t.Fatalf("zendesk: %d Talk calls for the call, want 1", n)
				}
			}, f.Records}
	}},
}

// exampleTargets are the targets the example mappings name.
var exampleTargets = []string{"salesforce", "hubspot", "dynamics", "servicenow", "zendesk", "webhook"}

// TestServe_CRMTargets runs the daemon with the shipped example mappings
// and, for each CRM, a config holding nothing but that CRM's credentials
// (the other targets are a generic receiver): a Bright Pattern call on a
// record of that CRM becomes exactly one record there, linked to it, with
// the CRM's record id kept in the outbox; posting the call twice changes
// nothing.
func TestServe_CRMTargets(t *testing.T) {
	for _, c := range crmCases {
		t.Run(c.name, func(t *testing.T) {
			cs := c.start(t)
			toml, environ, objects, check := cs.toml, cs.environ, cs.objects, cs.check
			path := writeCRMConfig(t, c.name, toml)
			cfg, err := config.Load(path, environ)
			if err != nil {
				t.Fatal(err)
			}
			m := MustRunMainConfig(t, cfg)
			const id = "CRM-CALL-1"
			event := strings.Replace(strings.Replace(string(readExample(t)), "7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D", id, 1),
				`[
      {"id": "0035g00000XyZ12AAB", "type": "contact", "displayName": "Maria Lopez", "displayType": "Contact", "customFields": []}
    ]`, objects, 1)
			for range 2 {
				if status, res := post(t, m.Addr(), "brightpattern", []byte(event)); status != 202 && status != 200 {
					t.Fatalf("POST = %d %v", status, res)
				}
			}
			var mine outbox.Delivery
			waitFor(t, "the CRM's delivery to finish", func() bool {
				for _, d := range mustList(t, m.DB) {
					if d.Target == c.name {
						mine = d
						return d.State == outbox.StateDelivered || d.State == outbox.StateDead
					}
				}
				return false
			})
			if mine.State != outbox.StateDelivered || mine.RecordID == "" {
				t.Fatalf("%s: %s after %d attempts (record id %q): %s", mine.Key, mine.State, mine.Attempts, mine.RecordID, mine.LastError)
			}
			check(t, func(rule string) string { return "brightpattern:" + id + ":" + exampleAgent + ":" + rule }, mine.RecordID)
		})
	}
}

// writeCRMConfig writes a config with the shipped example mappings whose
// target crm is configured by toml, and every other target the mappings
// name is a generic receiver; it returns its path.
func writeCRMConfig(t *testing.T, crm, toml string) string {
	t.Helper()
	mappings, err := filepath.Abs("../../examples/mappings")
	if err != nil {
		t.Fatal(err)
	}
	other := connectortest.NewFakeCRM(t)
	dir := t.TempDir()
	text := fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n"+
		"[store]\npath = %q\n[mapping]\ndir = %q\ndefault_region = \"US\"\n", filepath.Join(dir, "ctibridge.db"), mappings)
	for _, name := range exampleTargets {
		if name == crm {
			text += "[targets." + name + "]" + toml
		} else {
			text += fmt.Sprintf("[targets.%s]\ntype = \"webhook\"\nurl = %q\n", name, other.URL)
		}
	}
	path := filepath.Join(dir, "ctibridge.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustList(tb testing.TB, db *outbox.DB) []outbox.Delivery {
	tb.Helper()
	ds, err := db.List(context.Background(), outbox.Filter{Limit: 1000})
	if err != nil {
		tb.Fatal(err)
	}
	return ds
}
