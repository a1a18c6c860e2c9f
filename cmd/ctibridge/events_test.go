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

// ruleFailureMapping has a working rule (calls, to crm) and the HubSpot
// example's trap (hubspot-calls, to hubspot): expr's UnixMilli fails on a
// call with no start time.
func ruleFailureMapping(expr string) string {
	return testMapping + `
[[rule]]
name   = "hubspot-calls"
target = "hubspot"
object = "calls"
when   = 'channel == "voice"'

[rule.fields]
hs_timestamp = { expr = '` + expr + `', required = true }
hs_call_body = 'notes'
`
}

// TestEvents_OneRuleFailsOthersDeliver: a rule that cannot map a call
// with no start time never holds back the other rule: its record is
// delivered, the failed rule is listed with its error (CLI and admin API),
// and once the mapping is fixed, a remap (CLI or admin API) maps only that
// rule and nothing is delivered twice. The card number in the notes rests
// nowhere on disk, and the rules see it masked.
func TestEvents_OneRuleFailsOthersDeliver(t *testing.T) {
	t.Run("CLI", func(t *testing.T) { testOneRuleFails(t, false) })
	t.Run("AdminAPI", func(t *testing.T) { testOneRuleFails(t, true) })
}

func testOneRuleFails(t *testing.T, viaAdmin bool) {
	crm, hubspot := connectortest.NewFakeCRM(t), connectortest.NewFakeCRM(t)
	dir := t.TempDir()
	targets := func(name, url string) string {
		return "\n[targets." + name + "]\ntype = \"webhook\"\nurl = \"" + url + "\"\nsecret = \"${CRM_SECRET}\"\ntimeout = \"2s\"\n"
	}
	path := writeConfigWith(t, dir, ruleFailureMapping(`string(start?.UnixMilli())`),
		targets("crm", crm.URL)+targets("hubspot", hubspot.URL))
	m := MustRunMain(t, path)

	const card, masked = "4111 1111 1111 1111", "**** **** **** 1111"
	var ev map[string]any
	if err := json.Unmarshal(readExample(t), &ev); err != nil {
		t.Fatal(err)
	}
	data := ev["data"].(map[string]any)
	delete(data, "startTime")
	delete(data, "duration")
	data["description"] = "Paid with " + card + ", send the receipt."
	body, _ := json.Marshal(ev)

	status, res := post(t, m.Addr(), "brightpattern", body)
	failed, _ := res["failedRules"].([]any)
	if status != http.StatusAccepted || res["activities"] != float64(1) || len(failed) != 1 ||
		failed[0].(map[string]any)["rule"] != "hubspot-calls" ||
		!strings.Contains(failed[0].(map[string]any)["error"].(string), "start is missing") {
		t.Fatalf("POST = %d %v, want 202 with 1 activity and hubspot-calls failed", status, res)
	}
	key := callKey("7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D")
	crm.WaitAccepted(t, 10*time.Second, key)
	if got := string(crm.Accepted()[key]); !strings.Contains(got, masked) || strings.Contains(got, card) {
		t.Errorf("the record's notes = %s, want the card masked as %q", got, masked)
	}

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"events", "ls", "--failed", "--config", path}, &out, &errOut, testEnviron); code != 0 ||
		!strings.Contains(out.String(), "hubspot-calls (hubspot)") || !strings.Contains(out.String(), "start is missing") {
		t.Fatalf("events ls --failed = %d\n%s%s", code, out.String(), errOut.String())
	}
	token, err := os.ReadFile(filepath.Join(dir, "ctibridge.db.admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := func(method, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+m.AdminAddr()+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := admin("GET", "/admin/api/events?state=mapping_failed")
	var listed []struct {
		State    string
		Failures []struct{ Rule, Target, Error string }
	}
	err = json.NewDecoder(resp.Body).Decode(&listed)
	resp.Body.Close()
	if err != nil || len(listed) != 1 || listed[0].State != "mapping_failed" || len(listed[0].Failures) != 1 ||
		listed[0].Failures[0].Rule != "hubspot-calls" || listed[0].Failures[0].Target != "hubspot" ||
		!strings.Contains(listed[0].Failures[0].Error, "start is missing") {
		t.Fatalf("GET /admin/api/events?state=mapping_failed = %+v (%v), want the event with hubspot-calls failed", listed, err)
	}

	mappingFile := filepath.Join(dir, "mappings", "crm.toml")
	if err := os.WriteFile(mappingFile, []byte(ruleFailureMapping(`string((start ?? end).UnixMilli())`)), 0o644); err != nil {
		t.Fatal(err)
	}
	if viaAdmin {
		if _, err := m.ReloadMappings(); err != nil {
			t.Fatal(err)
		}
		resp := admin("POST", "/admin/api/events/remap")
		var r map[string]any
		err := json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || r["remapped"] != float64(1) || r["rules"] != float64(1) ||
			r["activities"] != float64(1) || r["stillFailing"] != float64(0) {
			t.Fatalf("POST /admin/api/events/remap = %d %v (%v), want 1 event, 1 rule, 1 activity", resp.StatusCode, r, err)
		}
	} else {
		out.Reset()
		if code := run(context.Background(), []string{"events", "remap", "--failed", "--config", path}, &out, &errOut, testEnviron); code != 0 ||
			!strings.Contains(out.String(), "remapped 1 events into 1 activities; 0 still fail\n1 failed rules now map") {
			t.Fatalf("events remap --failed = %d\n%s%s", code, out.String(), errOut.String())
		}
	}
	hubspotKey := "brightpattern:7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D:" + exampleAgent + ":hubspot-calls"
	hubspot.WaitAccepted(t, 10*time.Second, hubspotKey)
	if got := string(hubspot.Accepted()[hubspotKey]); !strings.Contains(got, masked) || strings.Contains(got, card) {
		t.Errorf("the remapped record = %s, want the card masked", got)
	}
	if n := len(crm.Requests()); n != 1 {
		t.Errorf("crm received %d requests, want its one record, not sent again by the remap", n)
	}
	if n := countRows(t, m, "deliveries"); n != 2 {
		t.Errorf("%d deliveries, want 2", n)
	}
	var state string
	var failures int
	db := rawDB(t, m)
	if err := db.QueryRow(`SELECT state, (SELECT count(*) FROM rule_failures) FROM events`).Scan(&state, &failures); err != nil ||
		state != "processed" || failures != 0 {
		t.Errorf("after the remap: event %s with %d rule failures (%v), want processed with none", state, failures, err)
	}

	// Card data rests nowhere on disk: not in the raw event, the
	// interaction or the records.
	for _, q := range []string{`SELECT body FROM events`, `SELECT interaction FROM events`, `SELECT payload FROM deliveries`} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var b []byte
			rows.Scan(&b)
			if bytes.Contains(b, []byte(card)) || !bytes.Contains(b, []byte(masked)) {
				t.Errorf("%s: %s, want the card masked", q, b)
			}
		}
		rows.Close()
	}
}
