package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// rejectFirst makes crm reject the first request for every key with a
// Salesforce-like 400, and accept every later one.
func rejectFirst(crm *connectortest.FakeCRM) {
	crm.Respond(func(r connectortest.Request) connectortest.Response {
		if r.Try == 1 {
			return connectortest.Response{Status: 400, Body: `[{"message":"Subject: value too long","errorCode":"STRING_TOO_LONG"}]`}
		}
		return connectortest.Response{}
	})
}

// TestDashboard_API: the overview shows a dead delivery with the CRM's
// answer and the target's counts; the trace finds the call by its
// interaction id, by the caller's number as an agent types it, and by its
// agent, from the raw event to every attempt; a retry delivers it.
func TestDashboard_API(t *testing.T) {
	e := newEditorEnv(t)
	rejectFirst(e.crm)
	key := e.post(t, "DASH-1")
	l := e.login(t)
	var dead []any
	waitFor(t, "the delivery to be dead", func() bool {
		_, o := e.do(t, e.as(l, editorReq{path: "/admin/api/overview"}))
		dead, _ = o["dead"].([]any)
		return len(dead) == 1
	})
	status, o := e.do(t, e.as(l, editorReq{path: "/admin/api/overview"}))
	d := dead[0].(map[string]any)
	if status != 200 || d["key"] != key || !strings.Contains(fmt.Sprint(d["lastError"]), "STRING_TOO_LONG") {
		t.Fatalf("overview = %d, dead %v; want the delivery with the CRM's answer", status, d)
	}
	stats := o["stats"].(map[string]any)
	if targets := stats["targets"].([]any); len(targets) != 1 || targets[0].(map[string]any)["dead"] != float64(1) {
		t.Errorf("overview targets = %v, want crm with 1 dead", targets)
	}
	if fails, _ := o["recentFailures"].([]any); len(fails) != 1 || fails[0].(map[string]any)["status"] != float64(400) {
		t.Errorf("recent failures = %v, want the 400", fails)
	}
	if _, ok := o["breakers"].(map[string]any)["crm"]; !ok {
		t.Errorf("overview breakers = %v, want crm's", o["breakers"])
	}

	// The config sets no mapping.default_region: a number is found as an
	// agent writes it with its country code.
	for _, q := range []string{"DASH-1", "+1 (415) 555-0142"} {
		status, tr := e.do(t, e.as(l, editorReq{path: "/admin/api/trace?q=" + url.QueryEscape(q)}))
		evs, _ := tr["events"].([]any)
		if status != 200 || len(evs) != 1 {
			t.Fatalf("trace %q = %d %v, want the call", q, status, tr)
		}
		ev := evs[0].(map[string]any)
		ix, _ := ev["interaction"].(map[string]any)
		body, _ := ev["body"].(map[string]any)
		ds, _ := ev["deliveries"].([]any)
		if ix["id"] != "DASH-1" || body["event"] != "ON_SAVE_ACTIVITY_RECORD" || len(ds) != 1 {
			t.Fatalf("trace %q event = %v, want the raw event, the interaction and one delivery", q, ev)
		}
		attempts := ds[0].(map[string]any)["attempts"].([]any)
		if len(attempts) != 1 || !strings.Contains(fmt.Sprint(attempts[0].(map[string]any)["responseBody"]), "STRING_TOO_LONG") {
			t.Errorf("trace %q attempts = %v, want the rejected attempt with the CRM's answer", q, attempts)
		}
	}
	var ix struct{ Agent struct{ ID string } }
	_, tr := e.do(t, e.as(l, editorReq{path: "/admin/api/trace?q=DASH-1"}))
	b, _ := json.Marshal(tr["events"].([]any)[0].(map[string]any)["interaction"])
	_ = json.Unmarshal(b, &ix)
	if _, byAgent := e.do(t, e.as(l, editorReq{path: "/admin/api/trace?q=" + url.QueryEscape(ix.Agent.ID)})); len(byAgent["events"].([]any)) != 1 {
		t.Errorf("trace by agent %q = %v, want the call", ix.Agent.ID, byAgent)
	}
	if status, _ := e.do(t, e.as(l, editorReq{path: "/admin/api/trace?q="})); status != http.StatusBadRequest {
		t.Errorf("trace without q = %d, want 400", status)
	}

	id := int64(d["id"].(float64))
	if status, body := e.do(t, e.as(l, editorReq{method: "POST", path: fmt.Sprintf("/admin/api/deliveries/%d/retry", id)})); status != 200 {
		t.Fatalf("retry = %d %v", status, body)
	}
	e.crm.WaitAccepted(t, 10e9, key)
}

// TestDashboard_Browser follows an operator in headless Chromium: log in,
// open the dashboard, see a rejected call's delivery dead with the CRM's
// answer, follow the call by the caller's number, press Retry once the
// cause is fixed and see the delivery delivered; and a new call's counts
// appear without reloading the page.
func TestDashboard_Browser(t *testing.T) {
	br := startEditorBrowser(t)
	e := newEditorEnv(t)
	rejectFirst(e.crm)
	key := e.post(t, "DASH-BROWSER-1")

	var at string
	_ = json.Unmarshal(br.do(t, "open", map[string]any{"url": e.base + "/admin/dashboard"}), &at)
	if at != e.base+"/admin/login" {
		t.Fatalf("opening the dashboard without a session lands on %s, want the login", at)
	}
	br.do(t, "fill", map[string]any{"selector": "#token", "value": editorToken})
	br.clickNav(t, "button[type=submit]")
	_ = json.Unmarshal(br.do(t, "open", map[string]any{"url": e.base + "/admin/dashboard"}), &at)
	if at != e.base+"/admin/dashboard" {
		t.Fatalf("after logging in, the dashboard is at %s", at)
	}
	br.wait(t, "the dead delivery", `document.querySelectorAll('#dead tbody tr[data-id]').length === 1`)
	if answer := br.evalString(t, "document.querySelector('#dead tbody tr[data-id] .answer').textContent"); !strings.Contains(answer, "STRING_TOO_LONG") {
		t.Errorf("the dead delivery shows %q, want the CRM's answer", answer)
	}
	br.wait(t, "crm's counts", `document.querySelector('#targets tr[data-target="crm"] td.dead').textContent === '1'`)
	br.screenshot(t, "dashboard-dead")

	br.do(t, "fill", map[string]any{"selector": "#q", "value": "+1 415-555-0142"})
	br.do(t, "click", map[string]any{"selector": "#search button"})
	br.wait(t, "the trace", `document.getElementById('trace').dataset.state === 'done'`)
	if h := br.evalString(t, "document.querySelector('#trace article h3').textContent"); !strings.Contains(h, "DASH-BROWSER-1") {
		t.Errorf("the trace is of %q, want DASH-BROWSER-1", h)
	}
	if st := br.evalString(t, "document.querySelector('#trace .delivery').dataset.state"); st != "dead" {
		t.Errorf("the traced delivery is %q, want dead", st)
	}
	br.screenshot(t, "dashboard-trace")

	// The admin fixes the cause at the CRM; the next tries are accepted.
	e.crm.Respond(func(connectortest.Request) connectortest.Response { return connectortest.Response{} })
	br.do(t, "click", map[string]any{"selector": "#dead tbody tr[data-id] button.retry"})
	e.crm.WaitAccepted(t, 10e9, key)
	br.wait(t, "the delivery to show as delivered", `document.querySelector('#targets tr[data-target="crm"] td.delivered').textContent === '1' &&
		document.querySelector('#targets tr[data-target="crm"] td.dead').textContent === '0'`)

	e.post(t, "DASH-BROWSER-2")
	br.wait(t, "the new call to be counted", `document.querySelector('#targets tr[data-target="crm"] td.delivered').textContent === '2'`)
	br.screenshot(t, "dashboard-after")

	var logs []string
	_ = json.Unmarshal(br.do(t, "logs", nil), &logs)
	for _, l := range logs {
		if strings.HasPrefix(l, "pageerror") {
			t.Errorf("the page logged %s", l)
		}
	}
}
