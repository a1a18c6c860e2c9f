package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/dial"
	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/outbox"
)

// The browser bridge (connector/bridge) tested for real: headless Chromium
// loads a page with a stand-in vendor SDK and the bridge's script tag, from
// a second loopback server so that CORS applies, and the in-process daemon
// takes the events. Every assertion is on the daemon's outbox and on a fake
// CRM, not on what the page says.

// bridgeMapping logs every interaction of every platform to the fake CRM.
const bridgeMapping = `
[[rule]]
name   = "log"
target = "crm"
object = "Task"

[rule.fields]
Channel     = 'channel'
Direction   = 'direction'
WhoId       = 'who?.id'
Disposition = 'disposition?.name'
Agent       = 'agent.id'
`

// bridgeTokens are the sources' tokens in the browser tests.
var bridgeTokens = map[string]string{
	"five9":         "bridge-token-five9",
	"genesys":       "bridge-token-genesys",
	"brightpattern": "bridge-token-brightpattern",
}

// bridgePlatform is what a scenario needs to know of a platform.
type bridgePlatform struct {
	name  string
	agent string // data-agent, and the agent POST /v1/dial names
	// leg is the agent's id as the platform's SDK gives it, which keys the
	// agent's leg of a call.
	leg string
	// events is how many events one stand-in call stores.
	events int
	// disposition and who are what the stand-in call's activity carries.
	// A WWE call knows its CRM record only from click-to-dial userData.
	disposition string
	who         any
	// first is the stand-in call's first event.
	first string
}

var bridgePlatforms = []bridgePlatform{
	{name: "five9", agent: "138592", leg: "138592", events: 5, disposition: "Sale Closed", who: "0035g00000XyZ12AAB", first: "callStarted"},
	{name: "genesys", agent: "jdoe", leg: "1001", events: 6, disposition: "Sale", who: nil, first: "ADDED"},
	{name: "brightpattern", agent: "jane.doe", leg: "jane.doe", events: 2, disposition: "Sale Closed", who: "0035g00000XyZ12AAB", first: "ON_INTERACTION_END"},
}

// TestBridge_Browser runs every scenario for every platform in one
// headless Chromium, a fresh browser context (own localStorage, own Web
// Locks) and a fresh daemon per scenario.
func TestBridge_Browser(t *testing.T) {
	br := startBrowser(t)
	pages := newPageServer(t)
	for _, p := range bridgePlatforms {
		for _, sc := range []struct {
			name string
			run  func(*testing.T, *bridgeEnv)
		}{
			{"CallBecomesOneActivity", testBridgeCall},
			{"DaemonDownThenUp", testBridgeDaemonDown},
			{"ReloadWhileDaemonDown", testBridgeReload},
			{"TwoTabsOneActivity", testBridgeTwoTabs},
			{"SendingTabClosedWhileDaemonDown", testBridgeTabClosed},
			{"ClickToDial", testBridgeDial},
			{"DialRefusals", testBridgeDialRefusals},
			{"DialAcrossRestart", testBridgeDialRestart},
			{"FullQueueKeepsOldest", testBridgeQueueBound},
		} {
			t.Run(p.name+"/"+sc.name, func(t *testing.T) {
				t.Parallel()
				sc.run(t, newBridgeEnv(t, br, pages, p))
			})
		}
	}
}

// testBridgeCall: a call's events reach the daemon and become exactly one
// activity.
func testBridgeCall(t *testing.T, e *bridgeEnv) {
	page := e.open(t, "")
	e.waitSender(t)
	id := e.id("CALL")
	e.br.eval(t, page, "fake.call("+strconv.Quote(id)+")")
	e.assertOneActivity(t, id)
	e.waitQueueEmpty(t, page)
}

// testBridgeDaemonDown: events of a call made while the daemon is down are
// kept in the browser and arrive, once each, when it is back.
func testBridgeDaemonDown(t *testing.T, e *bridgeEnv) {
	page := e.open(t, "")
	e.waitSender(t)
	e.d.stop(t)
	id := e.id("DOWN")
	e.br.eval(t, page, "fake.call("+strconv.Quote(id)+")")
	e.waitQueued(t, page, e.p.events)
	time.Sleep(800 * time.Millisecond) // attempts fail meanwhile
	if n := len(e.crm.Requests()); n != 0 {
		t.Fatalf("the CRM got %d requests while the daemon was down", n)
	}
	e.d.start(t)
	e.assertOneActivity(t, id)
	e.waitQueueEmpty(t, page)
}

// testBridgeReload: the agent reloads the page while the daemon is down;
// the reloaded page sends what the previous one queued.
func testBridgeReload(t *testing.T, e *bridgeEnv) {
	page := e.open(t, "")
	e.waitSender(t)
	e.d.stop(t)
	id := e.id("RELOAD")
	e.br.eval(t, page, "fake.call("+strconv.Quote(id)+")")
	e.waitQueued(t, page, e.p.events)
	e.br.do(t, map[string]any{"op": "reload", "page": page})
	e.br.wait(t, page, "window.fake && fake.ready()")
	e.waitQueued(t, page, e.p.events) // still there after the reload
	e.d.start(t)
	e.assertOneActivity(t, id)
	e.waitQueueEmpty(t, page)
}

// testBridgeTwoTabs: the agent has the desktop open in two tabs, which
// both see the call; the CRM gets one activity, and only one tab listens
// for commands.
func testBridgeTwoTabs(t *testing.T, e *bridgeEnv) {
	first := e.open(t, "")
	follower := ""
	if e.p.name == "genesys" {
		follower = "FOLLOWING" // WWE elected the first tab
	}
	second := e.open(t, follower)
	e.waitSender(t)
	id := e.id("TABS")
	// Both tabs get the SDK's events at the same time.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, page := range []string{first, second} {
		wg.Go(func() {
			_, errs[i] = e.br.send(map[string]any{"op": "eval", "page": page, "js": "fake.call(" + strconv.Quote(id) + ")"}, 30*time.Second)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	e.assertOneActivity(t, id)
	e.waitQueueEmpty(t, first)
	e.waitQueueEmpty(t, second)
	if n := e.d.m.Dial.Connected(e.p.agent); n != 1 {
		t.Errorf("%d commands streams for the agent, want 1: only the sending tab listens", n)
	}
	time.Sleep(300 * time.Millisecond) // a late duplicate would be delivered by now
	if n := e.requestsFor(e.key(id)); n != 1 {
		t.Errorf("the CRM got %d requests for %s, want 1", n, e.key(id))
	}
}

// testBridgeTabClosed: the agent closes the sending tab while the daemon
// is down and events wait in the queue; the other tab takes over (the Web
// Lock passes to it, or WWE elects it) and sends them.
func testBridgeTabClosed(t *testing.T, e *bridgeEnv) {
	first := e.open(t, "")
	follower := ""
	if e.p.name == "genesys" {
		follower = "FOLLOWING"
	}
	second := e.open(t, follower)
	e.waitSender(t)
	e.d.stop(t)
	id := e.id("CLOSED")
	for _, page := range []string{first, second} {
		e.br.eval(t, page, "fake.call("+strconv.Quote(id)+")")
	}
	e.waitQueued(t, second, e.p.events)
	e.br.do(t, map[string]any{"op": "close", "page": first})
	if e.p.name == "genesys" {
		e.br.eval(t, second, "fake.elect('LEADING')")
	}
	e.d.start(t)
	e.assertOneActivity(t, id)
	e.waitQueueEmpty(t, second)
	waitFor(t, "the new sending tab's commands stream", func() bool { return e.d.m.Dial.Connected(e.p.agent) == 1 })
}

// testBridgeQueueBound: with the daemon down and the queue full
// (data-queue-size=1 here), later events are dropped and the oldest kept.
func testBridgeQueueBound(t *testing.T, e *bridgeEnv) {
	e.queueSize = 1
	page := e.open(t, "")
	e.waitSender(t)
	e.d.stop(t)
	id := e.id("FULL")
	e.br.eval(t, page, "fake.call("+strconv.Quote(id)+")")
	e.waitQueued(t, page, 1)
	e.d.start(t)
	e.waitQueueEmpty(t, page)
	var types []string
	waitFor(t, "the kept event", func() bool {
		evs, err := e.d.m.DB.Events(context.Background(), outbox.EventFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		types = types[:0]
		for _, ev := range evs {
			if strings.Contains(ev.Key, id) {
				types = append(types, ev.Type)
			}
		}
		return len(types) > 0
	})
	time.Sleep(300 * time.Millisecond)
	if len(types) != 1 || types[0] != e.p.first {
		t.Errorf("stored events %v, want only the oldest, %s", types, e.p.first)
	}
	if n := len(e.crm.Requests()); n != 0 {
		t.Errorf("the CRM got %d requests, want none: the completing event was dropped", n)
	}
	var lines []string
	_ = json.Unmarshal(e.br.do(t, map[string]any{"op": "logs", "page": page}), &lines)
	if !strings.Contains(strings.Join(lines, "\n"), "queue full") {
		t.Errorf("no console warning about the full queue")
	}
}

// testBridgeDial: the agent has the desktop open in two tabs and clicks a
// dial link on a CRM record page. The daemon's /dial page says the desktop
// is dialing, one tab called the SDK's dial once with the number and the
// record, the call that follows is logged against that record, and the
// page links back to the record. `ctibridge dial` dials too, and an SDK
// that refuses a dial has its reason shown.
func testBridgeDial(t *testing.T, e *bridgeEnv) {
	first := e.open(t, "")
	follower := ""
	if e.p.name == "genesys" {
		follower = "FOLLOWING"
	}
	second := e.open(t, follower)
	e.waitSender(t)
	e.waitSignedIn(t)
	// The link names no agent: the cookie the bridge set says who.
	crm := e.openCRM(t, "to=%28415%29%20555-0100&object=Contact:003DIAL0000000001&name=Dial%20Target")
	e.br.do(t, map[string]any{"op": "clickNav", "page": crm, "selector": "#dial"})
	e.br.wait(t, crm, "document.getElementById('dial').dataset.state === 'dialing'")
	if text := e.text(t, crm); !strings.Contains(text, "Your desktop is calling +14155550100") {
		t.Errorf("the /dial page says %q", text)
	}
	dialer := e.waitDials(t, []string{first, second}, 1)
	if dialer != first {
		t.Errorf("the second tab dialed, not the sending one")
	}
	got := e.br.eval(t, dialer, "fake.dials[0]")
	var want string
	switch e.p.name {
	case "five9":
		want = `{"click2DialData":{"clickToDialNumber":"+14155550100","crmObject":{"id":"003DIAL0000000001","label":"Contact","name":"Dial Target","isWho":true,"isWhat":false}}}`
	case "genesys":
		want = `{"destination":"+14155550100","userData":{"ctibridge_who_type":"Contact","ctibridge_who_id":"003DIAL0000000001","ctibridge_who_name":"Dial Target"}}`
	case "brightpattern":
		want = `{"number":"+14155550100"}`
	}
	if string(got) != want {
		t.Errorf("the SDK's dial got\n%s\nwant\n%s", got, want)
	}
	var id string
	_ = json.Unmarshal(e.br.eval(t, crm, "document.getElementById('dial').dataset.id"), &id)
	if c, ok, err := e.d.m.Dial.Status(context.Background(), id); err != nil || !ok || c.State != dial.StateDialing || c.Object == nil || c.Object.ID != "003DIAL0000000001" {
		t.Errorf("GET /v1/dial/%s = %+v %v %v, want dialing, with the record", id, c, ok, err)
	}
	// The outbound call the dial started is logged against the record,
	// exactly once.
	e.waitActivity(t, "003DIAL0000000001")
	// Back to the record.
	url := e.br.do(t, map[string]any{"op": "clickNav", "page": crm, "selector": "#back"})
	if !strings.Contains(string(url), "/crm?") {
		t.Errorf("the back link went to %s, not the record page", url)
	}

	// From a terminal.
	var out bytes.Buffer
	env := append([]string{"CTIBRIDGE_SERVER__LISTEN=" + e.d.addr}, testEnviron...)
	if code := run(context.Background(), []string{"dial", "--config", e.config, "--agent", e.p.agent, "--to", "+1 415 555 0101",
		"--object", "Case:500DIAL", "--name", "Broken"}, &out, &out, env); code != 0 || !strings.Contains(out.String(), "dialing: +14155550101") {
		t.Errorf("ctibridge dial = %d:\n%s", code, out.String())
	}
	e.waitDials(t, []string{first, second}, 2)

	// The SDK refuses the next dial: the page says why.
	e.br.eval(t, dialer, "fake.failNext = 'no free line'")
	e.br.do(t, map[string]any{"op": "clickNav", "page": crm, "selector": "#dial"})
	e.br.wait(t, crm, "document.getElementById('dial').dataset.state === 'failed'")
	if text := e.text(t, crm); !strings.Contains(text, "no free line") {
		t.Errorf("the /dial page of a refused dial says %q, want the SDK's reason", text)
	}
}

// testBridgeDialRefusals: the /dial page refuses an invalid number, an
// agent without a desktop, and an agent past the rate limit (4 a minute,
// then 30 s of quarantine), saying why; nothing is dialed.
func testBridgeDialRefusals(t *testing.T, e *bridgeEnv) {
	desk := e.open(t, "")
	e.waitSender(t)
	e.waitSignedIn(t)
	e.br.eval(t, desk, "fake.quiet = true")
	for _, tt := range []struct{ query, text string }{
		{"to=abc&object=Contact:003X", "is not a phone number"},
		{"to=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "is not a phone number"},
		{"to=%2B1234567890123456789012", "too long"},
		{"to=%2B14155550100&agent=nobody", `agent "nobody" has no desktop connected`},
	} {
		crm := e.openCRM(t, tt.query)
		e.br.do(t, map[string]any{"op": "clickNav", "page": crm, "selector": "#dial"})
		if text := e.text(t, crm); !strings.Contains(text, tt.text) {
			t.Errorf("/dial?%s says %q, want %q", tt.query, text, tt.text)
		}
	}
	for i := range 4 {
		if status, resp := e.dial(t, `{"agent":"`+e.p.agent+`","to":"+14155550100"}`); status != http.StatusAccepted {
			t.Fatalf("dial %d = %d %v", i+1, status, resp)
		}
	}
	crm := e.openCRM(t, "to=%2B14155550100")
	e.br.do(t, map[string]any{"op": "clickNav", "page": crm, "selector": "#dial"})
	if text := e.text(t, crm); !strings.Contains(text, "reached the limit of 4 dials a minute; dials are refused for 30 s") {
		t.Errorf("the fifth dial's page says %q", text)
	}
	// Still in quarantine: 429 with the seconds left.
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.d.addr+"/v1/dial", strings.NewReader(`{"agent":"`+e.p.agent+`","to":"+14155550100"}`))
	req.Header.Set("Authorization", "Bearer "+bridgeTokens[e.p.name])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusTooManyRequests || ra < 1 || ra > 30 {
		t.Errorf("a dial in quarantine = %d, Retry-After %q; want 429 within 30 s", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	e.waitDials(t, []string{desk}, 4)
}

// testBridgeDialRestart: a dial is made; a second one goes to a stream
// that never takes it (a frozen tab), and the daemon restarts before any
// tab took it. The bridge reconnects (Last-Event-ID) and dials the second
// once, and never the first again.
func testBridgeDialRestart(t *testing.T, e *bridgeEnv) {
	desk := e.open(t, "")
	e.waitSender(t)
	e.br.eval(t, desk, "fake.quiet = true")
	if status, resp := e.dial(t, `{"agent":"`+e.p.agent+`","to":"+14155550100"}`); status != http.StatusAccepted {
		t.Fatalf("first dial = %d %v", status, resp)
	}
	e.waitDials(t, []string{desk}, 1)
	frozen := openStream(t, "http://"+e.d.addr+"/v1/agents/"+e.p.agent+"/commands?token="+bridgeTokens[e.p.name], nil)
	frozen.next(t, 5*time.Second)
	waitFor(t, "the frozen stream", func() bool { return e.d.m.Dial.Connected(e.p.agent) == 2 })
	status, resp := e.dial(t, `{"agent":"`+e.p.agent+`","to":"+14155550101"}`)
	if status != http.StatusAccepted {
		t.Fatalf("second dial = %d %v", status, resp)
	}
	id := resp["id"].(string)
	for {
		lines, ok := frozen.next(t, 5*time.Second)
		if !ok {
			t.Fatal("the frozen stream ended without the dial")
		}
		if len(lines) == 3 && strings.Contains(lines[2], id) {
			break
		}
	}
	e.d.stop(t)
	e.d.start(t)
	e.waitDials(t, []string{desk}, 2)
	if got := string(e.br.eval(t, desk, "JSON.stringify(fake.dials[1])")); !strings.Contains(got, "4155550101") {
		t.Errorf("the second dial after the restart was %s", got)
	}
	time.Sleep(2500 * time.Millisecond) // past the ack timeout: a repeat would be here
	e.waitDials(t, []string{desk}, 2)
	waitFor(t, "the second dial's outcome", func() bool {
		c, _, _ := e.d.m.Dial.Status(context.Background(), id)
		return c.State == dial.StateDialing
	})
}

// waitDials waits until the tabs' SDKs were asked to dial n times in all,
// fails if more, and returns the tab that dialed last.
func (e *bridgeEnv) waitDials(t testing.TB, tabs []string, n int) string {
	t.Helper()
	var last string
	waitFor(t, fmt.Sprintf("%d dials", n), func() bool {
		total := 0
		for _, tab := range tabs {
			var k int
			_ = json.Unmarshal(e.br.eval(t, tab, "fake.dialTimes.length"), &k)
			if k > 0 {
				last = tab
			}
			total += k
		}
		if total > n {
			t.Fatalf("%d dials, want %d", total, n)
		}
		return total == n
	})
	return last
}

// waitSignedIn waits for the cookie the bridge has the daemon set.
func (e *bridgeEnv) waitSignedIn(t testing.TB) {
	t.Helper()
	waitFor(t, "the agent cookie", func() bool {
		var cookies []struct{ Name string }
		_ = json.Unmarshal(e.br.do(t, map[string]any{"op": "cookies", "ctx": e.ctx}), &cookies)
		for _, c := range cookies {
			if c.Name == "ctibridge_agent" {
				return true
			}
		}
		return false
	})
}

// openCRM opens a CRM record page whose #dial link is the daemon's /dial
// with query.
func (e *bridgeEnv) openCRM(t testing.TB, query string) string {
	t.Helper()
	daemon := "http://" + e.d.addr
	u := e.pages.URL + "/crm?daemon=" + neturl.QueryEscape(daemon) + "&link=" + neturl.QueryEscape(daemon+"/dial?"+query)
	page := e.ctx + "/crm"
	e.br.do(t, map[string]any{"op": "open", "ctx": e.ctx, "page": page, "url": u})
	return page
}

func (e *bridgeEnv) text(t testing.TB, page string) string {
	t.Helper()
	var s string
	_ = json.Unmarshal(e.br.eval(t, page, "document.body.innerText"), &s)
	return s
}

// waitActivity waits for one outbound call's activity with WhoId who.
func (e *bridgeEnv) waitActivity(t testing.TB, who string) {
	t.Helper()
	n := 0
	waitFor(t, "the dialed call's activity", func() bool {
		n = 0
		for _, b := range e.crm.Accepted() {
			if bytes.Contains(b, []byte(`"WhoId":"`+who+`"`)) && bytes.Contains(b, []byte(`"Direction":"outbound"`)) {
				n++
			}
		}
		return n > 0
	})
	time.Sleep(300 * time.Millisecond) // a duplicate would be delivered by now
	if n != 1 {
		t.Errorf("%d activities with WhoId %s, want 1", n, who)
	}
}

// bridgeEnv is one scenario's world: a daemon, a fake CRM, a browser
// context.
type bridgeEnv struct {
	br    *browser
	pages *pageServer
	p     bridgePlatform
	crm   *connectortest.FakeCRM
	d     *restartable
	// config is the daemon's config file.
	config string
	ctx    string
	n      int // pages opened
	name   string
	// queueSize, when set, is the pages' data-queue-size.
	queueSize int
}

// newBridgeEnv starts the scenario's daemon, with extra appended to its
// config file.
func newBridgeEnv(t testing.TB, br *browser, pages *pageServer, p bridgePlatform, extra ...string) *bridgeEnv {
	crm := connectortest.NewFakeCRM(t)
	var sources strings.Builder
	for name, token := range bridgeTokens {
		fmt.Fprintf(&sources, "\n[sources.%s]\ntoken = %q\nallowed_origins = [%q]\n", name, token, pages.URL)
	}
	path := writeConfigWith(t, t.TempDir(), bridgeMapping, `
[targets.crm]
type = "webhook"
url = "`+crm.URL+`"
secret = "${CRM_SECRET}"
timeout = "2s"
`+sources.String()+strings.Join(extra, "\n"))
	// Numbers written without a country code are American.
	cfg, err := config.Load(path, append([]string{"CTIBRIDGE_MAPPING__DEFAULT_REGION=US"}, testEnviron...))
	if err != nil {
		t.Fatal(err)
	}
	e := &bridgeEnv{br: br, pages: pages, p: p, crm: crm, d: &restartable{cfg: cfg}, config: path,
		name: strings.ReplaceAll(t.Name(), "/", "-")}
	e.d.start(t)
	t.Cleanup(func() { e.d.stop(t) })
	if _, ok := e.d.m.Pipeline.Decoders[p.name]; !ok {
		t.Skipf("the daemon has no %s decoder yet (it is not registered in serve.go), so its bridge cannot be tested", p.name)
	}
	e.ctx = e.name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) // a benchmark runs its function more than once
	br.do(t, map[string]any{"op": "context", "ctx": e.ctx})
	t.Cleanup(func() {
		if t.Failed() {
			for i := 1; i <= e.n; i++ {
				page := e.ctx + "/" + strconv.Itoa(i)
				var lines []string
				_ = json.Unmarshal(br.tryDo(map[string]any{"op": "logs", "page": page}), &lines)
				t.Logf("console of %s:\n\t%s", page, strings.Join(lines, "\n\t"))
			}
		}
		br.tryDo(map[string]any{"op": "closeContext", "ctx": e.ctx})
	})
	return e
}

// open opens the platform's test page in the scenario's context; frame is
// the WWE stand-in's frameState ("" leads).
func (e *bridgeEnv) open(t testing.TB, frame string) string {
	t.Helper()
	e.n++
	page := e.ctx + "/" + strconv.Itoa(e.n)
	u := fmt.Sprintf("%s/page/%s?daemon=%s&token=%s&agent=%s", e.pages.URL, e.p.name,
		"http://"+e.d.addr, bridgeTokens[e.p.name], e.p.agent)
	if frame != "" {
		u += "&frame=" + frame
	}
	if e.queueSize > 0 {
		u += "&queue=" + strconv.Itoa(e.queueSize)
	}
	e.br.do(t, map[string]any{"op": "open", "ctx": e.ctx, "page": page, "url": u})
	e.br.wait(t, page, "window.fake && fake.ready()")
	return page
}

// waitSender waits until a tab sends. The commands stream is opened by the
// sending tab only, so the daemon sees it.
func (e *bridgeEnv) waitSender(t testing.TB) {
	t.Helper()
	waitFor(t, "the bridge's commands stream", func() bool { return e.d.m.Dial.Connected(e.p.agent) == 1 })
}

// id returns an interaction id unique to this scenario.
func (e *bridgeEnv) id(what string) string {
	return strings.ToUpper(e.p.name) + "-" + what + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// key is the idempotency key of the activity of interaction id.
func (e *bridgeEnv) key(id string) string { return e.p.name + ":" + id + ":" + e.p.leg + ":log" }

func (e *bridgeEnv) requestsFor(key string) int {
	n := 0
	for _, r := range e.crm.Requests() {
		if r.Header.Get("Idempotency-Key") == key {
			n++
		}
	}
	return n
}

// assertOneActivity waits for interaction id's activity and checks that
// the daemon stored each of the call's events once and delivered one
// activity, with the CRM object and disposition of the call.
func (e *bridgeEnv) assertOneActivity(t testing.TB, id string) {
	t.Helper()
	key := e.key(id)
	e.crm.WaitAccepted(t, 30*time.Second, key)
	var ds []outbox.Delivery
	waitFor(t, "the delivery to be recorded", func() bool {
		ds, _ = e.d.m.DB.List(context.Background(), outbox.Filter{})
		return len(ds) > 0 && ds[0].State == outbox.StateDelivered
	})
	n := 0
	for _, d := range ds {
		if d.Key == key {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d deliveries for %s, want 1: %+v", n, key, ds)
	}
	// Events after the one that completes the interaction (WWE's REMOVED)
	// may still be on their way.
	var types []string
	waitFor(t, "every event of the call", func() bool {
		evs, err := e.d.m.DB.Events(context.Background(), outbox.EventFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		types = types[:0]
		for _, ev := range evs {
			if strings.Contains(ev.Key, id) {
				types = append(types, ev.Type)
			}
		}
		return len(types) >= e.p.events
	})
	if len(types) != e.p.events {
		t.Errorf("stored %d events of %s (%v), want %d", len(types), id, types, e.p.events)
	}
	var act struct {
		Fields map[string]any `json:"fields"`
	}
	if err := json.Unmarshal(e.crm.Accepted()[key], &act); err != nil {
		t.Fatal(err)
	}
	if act.Fields["WhoId"] != e.p.who || act.Fields["Disposition"] != e.p.disposition || act.Fields["Agent"] == nil {
		t.Errorf("activity fields = %v, want WhoId %v, Disposition %q and an agent", act.Fields, e.p.who, e.p.disposition)
	}
	if n := e.requestsFor(key); n != 1 {
		t.Errorf("the CRM got %d requests for %s, want 1", n, key)
	}
}

const queueLenJS = "Object.keys(localStorage).filter((k) => k.startsWith('ctibridge:')).length"

func (e *bridgeEnv) waitQueued(t testing.TB, page string, n int) {
	t.Helper()
	e.br.wait(t, page, fmt.Sprintf("%s >= %d", queueLenJS, n))
}

func (e *bridgeEnv) waitQueueEmpty(t testing.TB, page string) {
	t.Helper()
	e.br.wait(t, page, queueLenJS+" === 0")
}

// dial posts body to /v1/dial as a CRM page would.
func (e *bridgeEnv) dial(t testing.TB, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+e.d.addr+"/v1/dial", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bridgeTokens[e.p.name])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST /v1/dial: body is not JSON: %v", err)
	}
	return resp.StatusCode, out
}

// restartable is a daemon that a test stops and starts again on the same
// address and store, as an admin restarting it would.
type restartable struct {
	cfg  config.Config
	m    *Main
	addr string
}

func (d *restartable) start(t testing.TB) {
	t.Helper()
	if d.m != nil {
		t.Fatal("daemon already running")
	}
	cfg := d.cfg
	if d.addr != "" {
		cfg.Server.Listen = d.addr
	}
	m := NewMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := m.Open(); err != nil {
		m.Close(context.Background())
		t.Fatal(err)
	}
	d.m, d.addr = m, m.Addr()
}

func (d *restartable) stop(t testing.TB) {
	t.Helper()
	if d.m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := d.m.Close(ctx); err != nil {
		t.Errorf("closing the daemon: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("closing the daemon took %v: a commands stream held it up", took)
	}
	d.m = nil
}

// pageServer serves the test pages: a stand-in SDK and the bridge's script
// tag, from an origin other than the daemon's.
type pageServer struct {
	*httptest.Server
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>agent desktop ({{.Platform}})</title>
<script src="/fakes/{{.Platform}}.js"></script>
<script src="{{.Daemon}}/bridge/{{.Platform}}.js" data-token="{{.Token}}" data-agent="{{.Agent}}" data-max-backoff="1"{{with .Queue}} data-queue-size="{{.}}"{{end}} data-debug></script>
</head><body>agent desktop</body></html>
`))

// crmTemplate is a CRM record page: a formula-field link to the daemon's
// /dial (link), and a tel: link that examples/dial/tel-links.js turns into
// a dial. window.clicks records when each click happened, for the
// benchmark.
var crmTemplate = template.Must(template.New("crm").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Contact: Dial Target</title>
<script>window.clicks = []; document.addEventListener('click', function () { clicks.push(performance.timeOrigin + performance.now()); }, true);</script>
<script src="/examples/tel-links.js" data-daemon="{{.Daemon}}" data-object="Contact:003DIAL0000000001" data-name="Dial Target"></script>
</head><body><h1>Dial Target</h1>
<p><a id="dial" href="{{.Link}}">Call</a> <a id="tel" href="tel:+1%20415%20555%200100">+1 415 555 0100</a></p>
</body></html>
`))

func newPageServer(t testing.TB) *pageServer {
	mux := http.NewServeMux()
	mux.Handle("GET /fakes/", http.StripPrefix("/fakes/", http.FileServer(http.Dir("../../connector/bridge/testdata/fakes"))))
	mux.Handle("GET /examples/", http.StripPrefix("/examples/", http.FileServer(http.Dir("../../examples/dial"))))
	mux.HandleFunc("GET /crm", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := crmTemplate.Execute(w, map[string]string{"Daemon": q.Get("daemon"), "Link": q.Get("link")}); err != nil {
			t.Errorf("crm template: %v", err)
		}
	})
	mux.HandleFunc("GET /page/{platform}", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		err := pageTemplate.Execute(w, map[string]string{"Platform": r.PathValue("platform"),
			"Daemon": q.Get("daemon"), "Token": q.Get("token"), "Agent": q.Get("agent"), "Queue": q.Get("queue")})
		if err != nil {
			t.Errorf("page template: %v", err)
		}
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return &pageServer{s}
}

// browser is one headless Chromium behind the Node driver
// (connector/bridge/testdata/driver.mjs).
type browser struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *syncBuffer
	tmp    string

	mu      sync.Mutex
	next    int
	waiting map[int]chan driverReply
	exited  chan struct{}
}

type driverReply struct {
	ID     int             `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

// browserTimeLimit bounds the whole browser run; the driver stops itself
// at the same limit.
const browserTimeLimit = 300 * time.Second

// startBrowser starts the driver and its Chromium, or skips the test when
// either is missing (fails in CI, where that is a broken setup).
func startBrowser(t testing.TB) *browser {
	t.Helper()
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		skipOrFail(t, "Debian chromium is not installed (apt-get install chromium): %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node not found on PATH: %v", err)
	}
	modules, err := filepath.Abs("../../.ci/node/node_modules")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(modules, "playwright-core", "package.json")); err != nil {
		skipOrFail(t, "playwright-core is not installed (run npm ci --prefix .ci/node): %v", err)
	}

	// Chromium's profile goes to the test's own directory (playwright makes
	// a fresh --user-data-dir under TMPDIR), so it is removed whatever
	// happens, and the cleanup can find the browser's processes by it.
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeLimit+10*time.Second)
	cmd := exec.CommandContext(ctx, node, "../../connector/bridge/testdata/driver.mjs", modules, chromium,
		strconv.Itoa(int(browserTimeLimit/time.Second)))
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	b := &browser{cmd: cmd, stderr: &syncBuffer{}, tmp: tmp, waiting: map[int]chan driverReply{}, exited: make(chan struct{})}
	cmd.Stderr = b.stderr
	b.stdin, err = cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan driverReply, 1) // the driver's first line
	b.waiting[0] = started
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var r driverReply
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				continue
			}
			b.mu.Lock()
			ch := b.waiting[r.ID]
			delete(b.waiting, r.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- r
			}
		}
		waited <- cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(func() {
		defer cancel()
		b.stdin.Close() // the driver closes the browser and exits
		select {
		case err := <-waited:
			if err != nil && !t.Failed() {
				t.Logf("driver: %v\n%s", err, b.stderr.String())
			}
		case <-time.After(15 * time.Second):
			cancel() // SIGTERM, then SIGKILL after WaitDelay
			<-waited
		}
		killLeftovers(t, tmp)
	})
	select {
	case r := <-started:
		t.Logf("Chromium %s via playwright-core", r.Result)
	case <-b.exited:
		t.Fatalf("the browser driver exited: %s", b.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the browser did not start within 60 s: %s", b.stderr.String())
	}
	return b
}

// do runs one driver op and returns its result, failing t on error.
func (b *browser) do(t testing.TB, op map[string]any) json.RawMessage {
	t.Helper()
	r, err := b.send(op, 30*time.Second)
	if err != nil {
		t.Fatalf("browser %v %v: %v", op["op"], op["page"], err)
	}
	return r
}

// tryDo runs one driver op, ignoring failure: for cleanups.
func (b *browser) tryDo(op map[string]any) json.RawMessage {
	r, _ := b.send(op, 10*time.Second)
	return r
}

func (b *browser) eval(t testing.TB, page, js string) json.RawMessage {
	t.Helper()
	return b.do(t, map[string]any{"op": "eval", "page": page, "js": js})
}

// wait waits until js is true in page, for at most 20 seconds.
func (b *browser) wait(t testing.TB, page, js string) {
	t.Helper()
	b.do(t, map[string]any{"op": "wait", "page": page, "js": js, "timeout": 20000})
}

func (b *browser) send(op map[string]any, timeout time.Duration) (json.RawMessage, error) {
	ch := make(chan driverReply, 1)
	b.mu.Lock()
	b.next++
	id := b.next
	b.waiting[id] = ch
	op["id"] = id
	line, err := json.Marshal(op)
	if err == nil {
		_, err = b.stdin.Write(append(line, '\n'))
	}
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		if !r.OK {
			return nil, errors.New(r.Error)
		}
		return r.Result, nil
	case <-b.exited:
		return nil, fmt.Errorf("the driver exited: %s", b.stderr.String())
	case <-time.After(timeout):
		return nil, fmt.Errorf("no answer within %v", timeout)
	}
}

// killLeftovers kills, by pid, any process still running whose command
// line names dir: a Chromium the driver could not close.
func killLeftovers(t testing.TB, dir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		t.Logf("killing leftover browser process %d", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format+" (CI is set, so this cannot be skipped)", args...)
	}
	t.Skipf(format, args...)
}

// commandsConfig returns a daemon config whose sources have the given
// tokens (none when empty) and allow origin.
func commandsConfig(t testing.TB, origin string, tokens ...string) config.Config {
	t.Helper()
	var sources strings.Builder
	for i, name := range []string{"five9", "genesys", "brightpattern"} {
		fmt.Fprintf(&sources, "\n[sources.%s]\nallowed_origins = [%q]\n", name, origin)
		if i < len(tokens) {
			fmt.Fprintf(&sources, "token = %q\n", tokens[i])
		}
	}
	path := writeConfigWith(t, t.TempDir(), bridgeMapping, `
[targets.crm]
type = "webhook"
url = "http://127.0.0.1:1/"
secret = "${CRM_SECRET}"
`+sources.String())
	cfg, err := config.Load(path, testEnviron)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// sseStream is an open commands stream, read line by line.
type sseStream struct {
	resp  *http.Response
	lines chan string
}

func openStream(t testing.TB, url string, header http.Header) *sseStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	s := &sseStream{resp: resp, lines: make(chan string, 100)}
	t.Cleanup(func() { resp.Body.Close() })
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	return s
}

// next returns the next SSE event (its lines, without the blank line), or
// fails after timeout; ok is false at the end of the stream.
func (s *sseStream) next(t testing.TB, timeout time.Duration) (lines []string, ok bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, open := <-s.lines:
			if !open {
				return lines, false
			}
			if l == "" {
				return lines, true
			}
			lines = append(lines, l)
		case <-deadline:
			t.Fatalf("no SSE event within %v (got %q)", timeout, lines)
		}
	}
}

func TestCommands_StreamAndDial(t *testing.T) {
	const origin = "https://acme.my.salesforce.com"
	d := &restartable{cfg: commandsConfig(t, origin, "tok-five9", "tok-genesys")}
	d.start(t)
	t.Cleanup(func() { d.stop(t) })
	base := "http://" + d.addr

	for _, tt := range []struct {
		name   string
		url    string
		header http.Header
		status int
	}{
		{"NoToken", "/v1/agents/jdoe/commands", nil, http.StatusUnauthorized},
		{"WrongToken", "/v1/agents/jdoe/commands?token=nope", nil, http.StatusUnauthorized},
		{"ForeignOrigin", "/v1/agents/jdoe/commands?token=tok-five9", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
	} {
		req, _ := http.NewRequest(http.MethodGet, base+tt.url, nil)
		if tt.header != nil {
			req.Header = tt.header
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: GET commands = %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
	}

	// Any source's token opens the stream: ?token= as EventSource sends
	// it, or the header.
	s := openStream(t, base+"/v1/agents/jdoe/commands?token=tok-genesys", http.Header{"Origin": {origin}})
	h := s.resp.Header
	if s.resp.StatusCode != 200 || h.Get("Content-Type") != "text/event-stream" || h.Get("Cache-Control") != "no-cache" ||
		h.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("GET commands = %d %v, want 200, an event stream for %s", s.resp.StatusCode, h, origin)
	}
	if lines, _ := s.next(t, 5*time.Second); len(lines) == 0 || lines[0] != "retry: 1000" {
		t.Fatalf("first event = %q, want the retry interval", lines)
	}
	s2 := openStream(t, base+"/v1/agents/jdoe/commands", http.Header{"Authorization": {"Bearer tok-five9"}})
	s2.next(t, 5*time.Second)
	waitFor(t, "two streams", func() bool { return d.m.Dial.Connected("jdoe") == 2 })

	dial := func(body string, header http.Header) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/dial", strings.NewReader(body))
		req.Header = header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	auth := http.Header{"Authorization": {"Bearer tok-five9"}, "Content-Type": {"application/json"}}
	status, out := dial(`{"agent":"jdoe","to":"+14155550100","object":{"type":"Contact","id":"003X","name":"Maria Lopez"}}`, auth)
	if status != http.StatusAccepted || out["to"] != "+14155550100" || out["state"] != "queued" {
		t.Fatalf("POST /v1/dial = %d %v, want 202, queued", status, out)
	}
	// One stream gets it, the newest: one desktop dials.
	want := []string{"event: dial", `data: {"id":"` + out["id"].(string) + `","to":"+14155550100","object":{"type":"Contact","id":"003X","name":"Maria Lopez"}}`}
	if got, _ := s2.next(t, 5*time.Second); len(got) != 3 || !strings.HasPrefix(got[0], "id: ") || strings.Join(got[1:], "\n") != strings.Join(want, "\n") {
		t.Errorf("newest stream got %q, want an id and %q", got, want)
	}
	select {
	case l := <-s.lines:
		t.Errorf("the older stream got %q too", l)
	case <-time.After(200 * time.Millisecond):
	}

	for _, tt := range []struct {
		name   string
		body   string
		header http.Header
		status int
		msg    string
	}{
		{"NoToken", `{"agent":"jdoe","to":"1"}`, nil, http.StatusUnauthorized, "missing or wrong token"},
		{"ForeignOrigin", `{"agent":"jdoe","to":"1"}`, http.Header{"Origin": {"https://evil.example"}, "Authorization": {"Bearer tok-five9"}}, http.StatusForbidden, "allowed_origins"},
		{"Malformed", `{"agent":`, auth, http.StatusBadRequest, "malformed JSON"},
		{"NoNumber", `{"agent":"jdoe"}`, auth, http.StatusBadRequest, "to: required"},
		{"NoAgent", `{"to":"+14155550100"}`, auth, http.StatusBadRequest, "agent: required"},
		{"ObjectWithoutID", `{"agent":"jdoe","to":"1","object":{"type":"Contact"}}`, auth, http.StatusBadRequest, "object: type and id are required"},
		{"NoBridge", `{"agent":"nobody","to":"+14155550100"}`, auth, http.StatusConflict, `agent "nobody" has no desktop connected`},
	} {
		status, out := dial(tt.body, tt.header)
		if msg, _ := out["error"].(string); status != tt.status || !strings.Contains(msg, tt.msg) {
			t.Errorf("%s: POST /v1/dial = %d %v, want %d with %q", tt.name, status, out, tt.status, tt.msg)
		}
	}

	// A CRM page's preflight.
	for _, tt := range []struct {
		origin string
		status int
	}{{origin, http.StatusNoContent}, {"https://evil.example", http.StatusForbidden}} {
		req, _ := http.NewRequest(http.MethodOptions, base+"/v1/dial", nil)
		req.Header.Set("Origin", tt.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("OPTIONS /v1/dial from %s = %d, want %d", tt.origin, resp.StatusCode, tt.status)
		}
		if tt.status == http.StatusNoContent && (resp.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")) {
			t.Errorf("preflight headers = %v", resp.Header)
		}
	}

	// Stopping the daemon ends the streams at once (stop checks the time).
	d.stop(t)
	if _, ok := s.next(t, 5*time.Second); ok {
		t.Error("the stream is still open after the daemon stopped")
	}
}

func TestCommands_OpenWithoutTokens(t *testing.T) {
	d := &restartable{cfg: commandsConfig(t, "https://crm.example")}
	d.start(t)
	t.Cleanup(func() { d.stop(t) })
	s := openStream(t, "http://"+d.addr+"/v1/agents/"+"a%2Fb%20c"+"/commands", nil)
	if s.resp.StatusCode != 200 {
		t.Fatalf("GET commands without any source token = %d, want 200", s.resp.StatusCode)
	}
	s.next(t, 5*time.Second)
	if _, err := d.m.Dial.Place(context.Background(), dial.Request{Agent: "a/b c", To: "+14155550100"}); err != nil {
		t.Fatalf("a dial for an escaped agent id: %v", err)
	}
	if got, _ := s.next(t, 5*time.Second); len(got) != 3 || !strings.Contains(got[2], `"to":"+14155550100"`) {
		t.Errorf("stream got %q", got)
	}
}

// BenchmarkDialClick measures click → SDK dial on loopback, in headless
// Chromium: an agent clicks a tel: link on a CRM page (examples/dial/
// tel-links.js opens the daemon's /dial page), and the time is taken in
// the browser from the click to the stand-in SDK's dial call. It reports
// the median and the 99th percentile (run it with -benchtime 200x).
func BenchmarkDialClick(b *testing.B) {
	br := startBrowser(b)
	pages := newPageServer(b)
	for _, p := range bridgePlatforms {
		b.Run(p.name, func(b *testing.B) {
			e := newBridgeEnv(b, br, pages, p, "\n[dial]\nrate_limit = 0\n")
			desk := e.open(b, "")
			e.waitSender(b)
			e.waitSignedIn(b)
			e.br.eval(b, desk, "fake.quiet = true; performance.setResourceTimingBufferSize(5000)")
			crm := e.openCRM(b, "")
			b.ResetTimer()
			for i := range b.N {
				e.br.do(b, map[string]any{"op": "click", "page": crm, "selector": "#tel"})
				e.br.wait(b, desk, fmt.Sprintf("fake.dialTimes.length >= %d", i+1))
			}
			b.StopTimer()
			var clicks, dials []float64
			_ = json.Unmarshal(e.br.eval(b, crm, "window.clicks"), &clicks)
			_ = json.Unmarshal(e.br.eval(b, desk, "fake.dialTimes"), &dials)
			if len(clicks) != b.N || len(dials) != b.N {
				b.Fatalf("%d clicks and %d dials, want %d of each", len(clicks), len(dials), b.N)
			}
			ms := make([]float64, b.N)
			for i := range ms {
				ms[i] = dials[i] - clicks[i]
			}
			// Where the time goes, from the desktop's resource timings of
			// its acks: click → the dial reaches the desktop (the /dial
			// page, the stored dial, the stream), the ack (a durable claim),
			// ack → the SDK's dial.
			var acks [][2]float64
			_ = json.Unmarshal(e.br.eval(b, desk, "performance.getEntriesByType('resource').filter((r) => r.name.endsWith('/ack'))"+
				".map((r) => [performance.timeOrigin + r.startTime, performance.timeOrigin + r.responseEnd])"), &acks)
			if len(acks) == b.N {
				parts := [3][]float64{}
				for i, a := range acks {
					parts[0] = append(parts[0], a[0]-clicks[i])
					parts[1] = append(parts[1], a[1]-a[0])
					parts[2] = append(parts[2], dials[i]-a[1])
				}
				for i, name := range []string{"click → desktop", "ack", "ack → SDK dial"} {
					x := parts[i]
					sort.Float64s(x)
					b.Logf("%s: median %.1f ms, p90 %.1f ms, p99 %.1f ms", name, x[len(x)/2], x[len(x)*9/10], x[min(len(x)-1, len(x)*99/100)])
				}
			}
			sort.Float64s(ms)
			b.ReportMetric(ms[len(ms)/2], "ms-median")
			b.ReportMetric(ms[min(len(ms)-1, len(ms)*99/100)], "ms-p99")
			b.ReportMetric(ms[len(ms)-1], "ms-max")
		})
	}
}
