package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/admin"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// The mapping editor (editor.go), through the admin listener of a daemon
// running in process: its login and CSRF checks, its API, and the page
// itself in headless Chromium. What a save does is checked on the daemon:
// the file on disk, the store's status, and what the fake CRM receives.

const editorToken = "editor-test-token"

// The example call's subject with testMapping, and with the edit the tests
// make to it.
const (
	subjectBefore = "Call from +14155550142"
	subjectAfter  = "Edited Call from +14155550142"
)

// editedMapping is testMapping with the subject edited.
var editedMapping = strings.Replace(testMapping, `Subject     = '"Call "`, `Subject     = '"Edited Call "`, 1)

// brokenMapping has an unknown name on line 9, column 16.
var brokenMapping = strings.Replace(testMapping, `Subject     = '`, `Subject     = 'nosuchfield + `, 1)

// editorEnv is a daemon with a fake CRM and its mapping files in dir.
type editorEnv struct {
	m      *Main
	crm    *connectortest.FakeCRM
	dir    string // the mapping directory
	base   string // the admin listener's URL
	origin string // its own Origin
}

func newEditorEnv(t *testing.T) *editorEnv {
	t.Helper()
	crm := connectortest.NewFakeCRM(t)
	dir := t.TempDir()
	m := MustRunMain(t, writeAdminConfig(t, dir, crm.URL, editorToken))
	base := "http://" + m.AdminAddr()
	return &editorEnv{m: m, crm: crm, dir: filepath.Join(dir, "mappings"), base: base, origin: base}
}

// editorLogin is a browser's session: its cookie and CSRF token.
type editorLogin struct {
	cookie *http.Cookie
	csrf   string
}

// editorReq is a request to the admin listener.
type editorReq struct {
	method, path string
	body         any // JSON-encoded, or sent as is when a string
	bearer       bool
	login        *editorLogin // its cookie is sent
	csrf         string       // X-CSRF-Token, when not empty
	origin       string       // Origin, when not empty
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// send sends req and returns the response, with its body read.
func (e *editorEnv) send(t *testing.T, req editorReq) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	switch b := req.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	r, err := http.NewRequest(cmpOr(req.method, "GET"), e.base+req.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if req.bearer {
		r.Header.Set("Authorization", "Bearer "+editorToken)
	}
	if req.login != nil {
		r.AddCookie(req.login.cookie)
	}
	if req.csrf != "" {
		r.Header.Set(admin.CSRFHeader, req.csrf)
	}
	if req.origin != "" {
		r.Header.Set("Origin", req.origin)
	}
	if _, ok := req.body.(string); ok && r.Method == http.MethodPost && strings.Contains(req.path, "login") {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := noRedirects.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// do sends req and returns the status and the JSON body.
func (e *editorEnv) do(t *testing.T, req editorReq) (int, map[string]any) {
	t.Helper()
	resp, b := e.send(t, req)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s = %d, body %q is not a JSON object", cmpOr(req.method, "GET"), req.path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// as sends req as the page of login would: with the cookie, the CSRF
// token and the admin's own Origin.
func (e *editorEnv) as(l *editorLogin, req editorReq) editorReq {
	req.login, req.csrf, req.origin = l, l.csrf, e.origin
	return req
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// login logs in as the login form does and reads the CSRF token from the
// editor's page.
func (e *editorEnv) login(t *testing.T) *editorLogin {
	t.Helper()
	resp, b := e.send(t, editorReq{method: "POST", path: "/admin/login", origin: e.origin,
		body: url.Values{"token": {editorToken}}.Encode()})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/" {
		t.Fatalf("POST /admin/login = %d (Location %q) %s, want 303 to /admin/", resp.StatusCode, resp.Header.Get("Location"), b)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login set cookies %v, want one", cookies)
	}
	l := &editorLogin{cookie: cookies[0]}
	resp, b = e.send(t, editorReq{path: "/admin/", login: l})
	match := csrfMeta.FindSubmatch(b)
	if resp.StatusCode != 200 || match == nil {
		t.Fatalf("GET /admin/ with the session = %d, without a CSRF token:\n%s", resp.StatusCode, b)
	}
	l.csrf = string(match[1])
	return l
}

// post posts the example call with interaction id id, or as it is for
// "", and returns its activity's key.
func (e *editorEnv) post(t *testing.T, id string) string {
	t.Helper()
	body := readExample(t)
	const exampleID = "7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D"
	if id != "" {
		body = bytes.ReplaceAll(body, []byte(exampleID), []byte(id))
	} else {
		id = exampleID
	}
	if status, resp := post(t, e.m.Addr(), "brightpattern", body); status != http.StatusAccepted {
		t.Fatalf("POST event = %d %v, want 202", status, resp)
	}
	return callKey(id)
}

// subject waits for the activity key at the CRM and returns its Subject.
func (e *editorEnv) subject(t *testing.T, key string) string {
	t.Helper()
	e.crm.WaitAccepted(t, 10*time.Second, key)
	var act struct {
		Fields map[string]any `json:"fields"`
	}
	if err := json.Unmarshal(e.crm.Accepted()[key], &act); err != nil {
		t.Fatal(err)
	}
	s, _ := act.Fields["Subject"].(string)
	return s
}

func (e *editorEnv) onDisk(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEditor_Login(t *testing.T) {
	e := newEditorEnv(t)
	for _, tt := range []struct{ path, location string }{{"/admin/", "/admin/login"}, {"/admin", "/admin/"}} {
		if resp, _ := e.send(t, editorReq{path: tt.path}); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tt.location {
			t.Errorf("GET %s without a session = %d to %q, want 303 to %s", tt.path, resp.StatusCode, resp.Header.Get("Location"), tt.location)
		}
	}
	resp, b := e.send(t, editorReq{path: "/admin/login"})
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`name="token"`)) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("GET /admin/login = %d %v\n%s\nwant the login form with a CSP", resp.StatusCode, resp.Header, b)
	}

	form := url.Values{"token": {editorToken}}.Encode()
	for _, tt := range []struct {
		name   string
		req    editorReq
		status int
		msg    string
	}{
		{"NoOrigin", editorReq{method: "POST", path: "/admin/login", body: form}, 403, "Origin"},
		{"ForeignOrigin", editorReq{method: "POST", path: "/admin/login", body: form, origin: "http://evil.example"}, 403, "not allowed"},
		{"WrongToken", editorReq{method: "POST", path: "/admin/login", body: "token=nope", origin: e.origin}, 401, "Wrong admin token"},
	} {
		resp, b := e.send(t, tt.req)
		if resp.StatusCode != tt.status || !bytes.Contains(b, []byte(tt.msg)) || len(resp.Cookies()) != 0 {
			t.Errorf("%s: POST /admin/login = %d %s (cookies %v), want %d with %q and no cookie", tt.name, resp.StatusCode, b, resp.Cookies(), tt.status, tt.msg)
		}
	}

	l := e.login(t)
	c := l.cookie
	if c.Name != "ctibridge_admin_"+portOf(e.m.AdminAddr()) || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/admin" ||
		len(c.Value) < 40 || strings.Contains(c.Value, editorToken) {
		t.Errorf("session cookie = %+v, want a random HttpOnly, SameSite=Strict cookie for /admin named after the port", c)
	}
	if resp, _ := e.send(t, editorReq{path: "/admin/", login: l}); resp.Header.Get("X-Frame-Options") != "DENY" ||
		resp.Header.Get("Referrer-Policy") != "same-origin" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the editor page's headers = %v", resp.Header)
	}
	if resp, _ := e.send(t, editorReq{path: "/admin/login", login: l}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /admin/login with a session = %d, want 303 to the editor", resp.StatusCode)
	}
	for _, tt := range []struct {
		path   string
		status int
		ctype  string
	}{{"/admin/static/editor.js", 200, "text/javascript"}, {"/admin/static/editor.css", 200, "text/css"}, {"/admin/static/index.html", 404, ""}} {
		resp, _ := e.send(t, editorReq{path: tt.path})
		if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) {
			t.Errorf("GET %s = %d %q, want %d %q", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, tt.ctype)
		}
	}

	// Logging out needs the CSRF token too, and ends the session.
	if status, body := e.do(t, editorReq{method: "POST", path: "/admin/logout", login: l, origin: e.origin}); status != 403 {
		t.Errorf("POST /admin/logout without the CSRF token = %d %v, want 403", status, body)
	}
	if status, body := e.do(t, e.as(l, editorReq{method: "POST", path: "/admin/logout"})); status != 200 || body["loggedOut"] != true {
		t.Fatalf("POST /admin/logout = %d %v, want 200", status, body)
	}
	if status, body := e.do(t, editorReq{path: "/admin/api/mappings", login: l}); status != 401 {
		t.Errorf("GET mappings with the ended session = %d %v, want 401", status, body)
	}
	if resp, _ := e.send(t, editorReq{path: "/admin/", login: l}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /admin/ with the ended session = %d, want 303 to the login", resp.StatusCode)
	}
}

// TestEditor_AuthAndCSRF: the API takes the bearer token or a session;
// a session's state-changing requests need its CSRF token and the admin's
// own Origin, on the editor's routes and on every other admin route.
func TestEditor_AuthAndCSRF(t *testing.T) {
	e := newEditorEnv(t)
	l, other := e.login(t), e.login(t)
	check := map[string]string{"name": "crm.toml", "content": testMapping}
	forged := &editorLogin{cookie: &http.Cookie{Name: l.cookie.Name, Value: "forged"}}
	for _, tt := range []struct {
		name   string
		req    editorReq
		status int
		msg    string
	}{
		{"ListNothing", editorReq{path: "/admin/api/mappings"}, 401, "admin token"},
		{"ListBearer", editorReq{path: "/admin/api/mappings", bearer: true}, 200, ""},
		{"ListSession", editorReq{path: "/admin/api/mappings", login: l}, 200, ""},
		{"ListForgedSession", editorReq{path: "/admin/api/mappings", login: forged}, 401, "admin token"},
		{"CheckBearer", editorReq{method: "POST", path: "/admin/api/mappings/check", body: check, bearer: true}, 200, ""},
		{"CheckBearerForeignOrigin", editorReq{method: "POST", path: "/admin/api/mappings/check", body: check, bearer: true, origin: "http://evil.example"}, 403, "not allowed"},
		{"CheckSession", e.as(l, editorReq{method: "POST", path: "/admin/api/mappings/check", body: check}), 200, ""},
		{"CheckSessionNoCSRF", editorReq{method: "POST", path: "/admin/api/mappings/check", body: check, login: l, origin: e.origin}, 403, "CSRF token"},
		{"CheckSessionWrongCSRF", editorReq{method: "POST", path: "/admin/api/mappings/check", body: check, login: l, origin: e.origin, csrf: "x" + l.csrf}, 403, "CSRF token"},
		{"CheckSessionOtherSessionsCSRF", editorReq{method: "POST", path: "/admin/api/mappings/check", body: check, login: l, origin: e.origin, csrf: other.csrf}, 403, "CSRF token"},
		{"CheckSessionNoOrigin", editorReq{method: "POST", path: "/admin/api/mappings/check", body: check, login: l, csrf: l.csrf}, 403, "Origin"},
		{"CheckSessionForeignOrigin", editorReq{method: "POST", path: "/admin/api/mappings/check", body: check, login: l, csrf: l.csrf, origin: "http://evil.example"}, 403, `origin "http://evil.example" not allowed`},
		{"CheckSessionLocalhostOrigin", editorReq{method: "POST", path: "/admin/api/mappings/check", body: check, login: l, csrf: l.csrf, origin: "http://localhost:" + portOf(e.m.AdminAddr())}, 200, ""},
		{"SaveSessionNoCSRF", editorReq{method: "PUT", path: "/admin/api/mappings/crm.toml", body: map[string]string{"content": editedMapping}, login: l, origin: e.origin}, 403, "CSRF token"},
		{"PurgeSessionNoCSRF", editorReq{method: "POST", path: "/admin/api/purge?older_than=720h", login: l, origin: e.origin}, 403, "CSRF token"},
		{"PurgeSession", e.as(l, editorReq{method: "POST", path: "/admin/api/purge?older_than=720h"}), 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.do(t, tt.req)
			msg, _ := body["error"].(string)
			if status != tt.status || !strings.Contains(msg, tt.msg) {
				t.Errorf("%s %s = %d %v, want %d with %q", cmpOr(tt.req.method, "GET"), tt.req.path, status, body, tt.status, tt.msg)
			}
		})
	}
	if got := e.onDisk(t, "crm.toml"); got != testMapping {
		t.Errorf("crm.toml changed by refused requests:\n%s", got)
	}
}

func TestEditor_ListsFiles(t *testing.T) {
	e := newEditorEnv(t)
	status, body := e.do(t, editorReq{path: "/admin/api/mappings", bearer: true})
	files, _ := body["files"].([]any)
	if status != 200 || body["editable"] != true || len(files) != 1 {
		t.Fatalf("GET mappings = %d %v, want one editable file", status, body)
	}
	f := files[0].(map[string]any)
	if f["name"] != "crm.toml" || f["content"] != testMapping || f["sum"] != admin.ContentSum([]byte(testMapping)) || f["readOnly"] != nil {
		t.Errorf("file = %v, want crm.toml with its content and sum", f)
	}
	st, _ := body["status"].(map[string]any)
	if st["rules"] != float64(1) || st["reloads"] != float64(1) {
		t.Errorf("status = %v, want 1 rule, 1 reload", st)
	}
	if p := fmt.Sprint(body["platforms"]); p != "[brightpattern five9 genesys]" {
		t.Errorf("platforms = %s", p)
	}
}

func TestEditor_CheckReportsProblems(t *testing.T) {
	e := newEditorEnv(t)
	l := e.login(t)
	status, body := e.do(t, e.as(l, editorReq{method: "POST", path: "/admin/api/mappings/check",
		body: map[string]string{"name": "crm.toml", "content": brokenMapping}}))
	ps, _ := body["problems"].([]any)
	if status != 200 || body["ok"] != false || len(ps) != 1 {
		t.Fatalf("check of a broken file = %d %v, want 200, ok false, one problem", status, body)
	}
	p := ps[0].(map[string]any)
	if p["file"] != "crm.toml" || p["line"] != float64(9) || p["col"] != float64(16) ||
		!strings.Contains(p["msg"].(string), "unknown name nosuchfield") || !strings.HasPrefix(p["text"].(string), "Subject     = 'nosuchfield") {
		t.Errorf("problem = %v, want crm.toml:9:16 unknown name nosuchfield, with the line", p)
	}
	status, body = e.do(t, e.as(l, editorReq{method: "POST", path: "/admin/api/mappings/check",
		body: map[string]string{"name": "crm.toml", "content": "[[rule]\n"}}))
	if ps, _ := body["problems"].([]any); status != 200 || len(ps) != 1 || ps[0].(map[string]any)["line"] != float64(1) {
		t.Errorf("check of bad TOML = %d %v, want a problem on line 1", status, body)
	}
	status, body = e.do(t, e.as(l, editorReq{method: "POST", path: "/admin/api/mappings/check",
		body: map[string]string{"name": "crm.toml", "content": editedMapping}}))
	if status != 200 || body["ok"] != true || fmt.Sprint(body["rules"]) != "[calls]" || len(body["problems"].([]any)) != 0 {
		t.Errorf("check of a good file = %d %v, want ok with rule calls", status, body)
	}
	// A new file is checked with the others: a rule name used twice.
	status, body = e.do(t, e.as(l, editorReq{method: "POST", path: "/admin/api/mappings/check",
		body: map[string]string{"name": "more.toml", "content": testMapping}}))
	if ps, _ := body["problems"].([]any); status != 200 || len(ps) == 0 || !strings.Contains(fmt.Sprint(ps), `rule name "calls" is already used`) {
		t.Errorf("check of a second file with the same rule = %d %v, want the duplicate name", status, body)
	}
	for _, name := range []string{"../crm.toml", "crm.txt", ".hidden.toml", ""} {
		status, body := e.do(t, e.as(l, editorReq{method: "POST", path: "/admin/api/mappings/check",
			body: map[string]string{"name": name, "content": testMapping}}))
		if status != 400 || !strings.Contains(body["error"].(string), "name") {
			t.Errorf("check of %q = %d %v, want 400 about the name", name, status, body)
		}
	}
	if status, body := e.do(t, e.as(l, editorReq{method: "POST", path: "/admin/api/mappings/check", body: `{"name":`})); status != 400 {
		t.Errorf("check with malformed JSON = %d %v, want 400", status, body)
	}
}

// TestEditor_SaveOfABrokenFileChangesNothing: 422 with the problems, and
// the file, the mappings in use and what the CRM gets stay as they were.
func TestEditor_SaveOfABrokenFileChangesNothing(t *testing.T) {
	e := newEditorEnv(t)
	set, before := e.m.Mappings.Current(), e.m.Mappings.Status()
	status, body := e.do(t, editorReq{method: "PUT", path: "/admin/api/mappings/crm.toml", bearer: true,
		body: map[string]string{"content": brokenMapping}})
	ps, _ := body["problems"].([]any)
	if status != http.StatusUnprocessableEntity || body["ok"] != false || len(ps) != 1 || ps[0].(map[string]any)["line"] != float64(9) {
		t.Fatalf("PUT a broken file = %d %v, want 422 with the problem on line 9", status, body)
	}
	if got := e.onDisk(t, "crm.toml"); got != testMapping {
		t.Errorf("crm.toml after a refused save:\n%s", got)
	}
	if after := e.m.Mappings.Status(); e.m.Mappings.Current() != set || after.Reloads != before.Reloads || after.LastError != "" {
		t.Errorf("status after a refused save = %+v, want the set of %+v unchanged", after, before)
	}
	if names, _ := filepath.Glob(filepath.Join(e.dir, "*")); len(names) != 1 {
		t.Errorf("files in the mapping directory = %v, want crm.toml only", names)
	}
	if got := e.subject(t, e.post(t, "")); got != subjectBefore {
		t.Errorf("after a refused save, the CRM got Subject %q, want %q", got, subjectBefore)
	}
}

// TestEditor_SaveWithALongNameIsRefused: a name longer than a file
// system takes is a 400 that names the limit, not an I/O error's 500.
func TestEditor_SaveWithALongNameIsRefused(t *testing.T) {
	e := newEditorEnv(t)
	name := strings.Repeat("a", 300) + ".toml"
	status, body := e.do(t, editorReq{method: "PUT", path: "/admin/api/mappings/" + name, bearer: true,
		body: map[string]string{"content": testMapping}})
	if msg, _ := body["error"].(string); status != http.StatusBadRequest || !strings.Contains(msg, "at most 128 bytes") {
		t.Fatalf("PUT %d-byte name = %d %v, want 400 naming the limit", len(name), status, body)
	}
	if names, _ := filepath.Glob(filepath.Join(e.dir, "*")); len(names) != 1 {
		t.Errorf("files in the mapping directory = %v, want crm.toml only", names)
	}
}

// TestEditor_SaveChangesWhatIsMapped: a save is written, reloaded, and the
// next event is mapped with it.
func TestEditor_SaveChangesWhatIsMapped(t *testing.T) {
	e := newEditorEnv(t)
	if got := e.subject(t, e.post(t, "")); got != subjectBefore {
		t.Fatalf("before the save, the CRM got Subject %q, want %q", got, subjectBefore)
	}
	l := e.login(t)
	base := admin.ContentSum([]byte(testMapping))
	status, body := e.do(t, e.as(l, editorReq{method: "PUT", path: "/admin/api/mappings/crm.toml",
		body: map[string]any{"content": editedMapping, "base": base}}))
	if status != 200 || body["ok"] != true || body["sum"] != admin.ContentSum([]byte(editedMapping)) {
		t.Fatalf("PUT crm.toml = %d %v, want 200", status, body)
	}
	if got := e.onDisk(t, "crm.toml"); got != editedMapping {
		t.Errorf("crm.toml on disk:\n%s\nwant\n%s", got, editedMapping)
	}
	if st := e.m.Mappings.Status(); st.Reloads != 2 || st.Rules != 1 || st.LastError != "" {
		t.Errorf("status after the save = %+v, want a second load", st)
	}
	if got := e.subject(t, e.post(t, "EDITOR-SAVE-1")); got != subjectAfter {
		t.Errorf("after the save, the CRM got Subject %q, want %q", got, subjectAfter)
	}

	// A save from an editor opened before that save is refused.
	status, body = e.do(t, e.as(l, editorReq{method: "PUT", path: "/admin/api/mappings/crm.toml",
		body: map[string]any{"content": testMapping, "base": base}}))
	if status != http.StatusConflict || !strings.Contains(body["error"].(string), "changed on disk") {
		t.Errorf("PUT with a stale base = %d %v, want 409", status, body)
	}
	if got := e.onDisk(t, "crm.toml"); got != editedMapping {
		t.Errorf("crm.toml after a conflicting save:\n%s", got)
	}

	// A new file.
	chats := strings.NewReplacer(`"calls"`, `"chats"`, `"voice"`, `"chat"`, `[lookups.dispositions]`, `[lookups.chat_dispositions]`,
		`"dispositions"`, `"chat_dispositions"`).Replace(testMapping)
	status, body = e.do(t, e.as(l, editorReq{method: "PUT", path: "/admin/api/mappings/chats.toml",
		body: map[string]any{"content": chats, "base": ""}}))
	if st, _ := body["status"].(map[string]any); status != 200 || fmt.Sprint(st["files"]) != "[chats.toml crm.toml]" || st["rules"] != float64(2) {
		t.Fatalf("PUT a new file = %d %v, want 200 with two files and two rules", status, body)
	}
	status, body = e.do(t, e.as(l, editorReq{method: "PUT", path: "/admin/api/mappings/chats.toml",
		body: map[string]any{"content": chats, "base": ""}}))
	if status != http.StatusConflict || !strings.Contains(body["error"].(string), "already exists") {
		t.Errorf("PUT a new file that exists = %d %v, want 409", status, body)
	}
}

func TestEditor_PreviewAgainstEvents(t *testing.T) {
	e := newEditorEnv(t)
	e.subject(t, e.post(t, ""))
	e.subject(t, e.post(t, "EDITOR-PREVIEW-2"))
	l := e.login(t)

	status, body := e.do(t, editorReq{path: "/admin/api/events/recent?limit=5", login: l})
	evs, _ := body["events"].([]any)
	if status != 200 || len(evs) != 2 {
		t.Fatalf("GET events/recent = %d %v, want two events", status, body)
	}
	newest := evs[0].(map[string]any)
	if newest["id"] != float64(2) || newest["platform"] != "brightpattern" || newest["interactionId"] != "EDITOR-PREVIEW-2" ||
		newest["channel"] != "voice" || newest["direction"] != "inbound" || newest["receivedAt"] == nil {
		t.Errorf("newest recent event = %v, want event 2 with its interaction's summary", newest)
	}
	if status, _ := e.do(t, editorReq{path: "/admin/api/events/recent?limit=0", login: l}); status != 400 {
		t.Errorf("GET events/recent?limit=0 = %d, want 400", status)
	}

	preview := func(t *testing.T, req map[string]any) (int, map[string]any) {
		t.Helper()
		return e.do(t, e.as(l, editorReq{method: "POST", path: "/admin/api/mappings/preview", body: req}))
	}
	activity := func(t *testing.T, body map[string]any) map[string]any {
		t.Helper()
		rs, _ := body["results"].([]any)
		if len(rs) != 1 {
			t.Fatalf("preview = %v, want one rule's result", body)
		}
		r := rs[0].(map[string]any)
		a, _ := r["activity"].(map[string]any)
		if r["rule"] != "calls" || r["matched"] != true || r["file"] != "crm.toml" || a == nil {
			t.Fatalf("result = %v, want rule calls of crm.toml matched, with an activity", r)
		}
		return a
	}

	// The stored interaction of a real event, with the unsaved edit.
	status, body = preview(t, map[string]any{"name": "crm.toml", "content": editedMapping, "eventId": 1})
	if status != 200 {
		t.Fatalf("preview of event 1 = %d %v", status, body)
	}
	a := activity(t, body)
	if f := a["fields"].(map[string]any); f["Subject"] != subjectAfter || a["key"] != testKey {
		t.Errorf("preview activity = %v, want Subject %q and key %s", a, subjectAfter, testKey)
	}
	if in, _ := body["interaction"].(map[string]any); in["id"] != "7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D" || in["raw"] != nil || body["platform"] != "brightpattern" {
		t.Errorf("preview interaction = %v (platform %v), want the example's, without its raw payload", in, body["platform"])
	}
	if got := e.onDisk(t, "crm.toml"); got != testMapping {
		t.Errorf("a preview changed crm.toml:\n%s", got)
	}

	// A pasted event, its platform guessed.
	status, body = preview(t, map[string]any{"name": "crm.toml", "content": editedMapping, "event": string(readExample(t))})
	if status != 200 || body["platform"] != "brightpattern" || activity(t, body)["fields"].(map[string]any)["Subject"] != subjectAfter {
		t.Errorf("preview of a pasted event = %d %v", status, body)
	}
	// A pasted sequence, one event a line.
	seq, err := os.ReadFile("../../examples/events/five9-call.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	status, body = preview(t, map[string]any{"name": "crm.toml", "content": testMapping, "event": string(seq), "platform": "five9"})
	if status != 200 || body["platform"] != "five9" || activity(t, body)["platform"] != "five9" {
		t.Errorf("preview of a Five9 sequence = %d %v", status, body)
	}
	// A transfer: each agent's leg is its own interaction, each previewed.
	transfer, err := os.ReadFile("../../connector/five9/testdata/transfer.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	status, body = preview(t, map[string]any{"name": "crm.toml", "content": testMapping, "event": string(transfer), "platform": "five9"})
	ps, _ := body["previews"].([]any)
	if status != 200 || len(ps) != 3 { // the transferred call's two legs, then a chat
		t.Fatalf("preview of a Five9 transfer = %d, %d previews; want one per interaction and leg: %v", status, len(ps), body)
	}
	first, second := ps[0].(map[string]any)["interaction"].(map[string]any), ps[1].(map[string]any)["interaction"].(map[string]any)
	if first["id"] != second["id"] || first["leg"] == second["leg"] {
		t.Errorf("transfer previews = %v and %v, want one interaction id with two legs", first, second)
	}
	// A rule that does not match says why.
	chatsOnly := strings.Replace(testMapping, `when   = 'channel == "voice"'`, `when   = 'channel == "chat"'`, 1)
	status, body = preview(t, map[string]any{"name": "crm.toml", "content": chatsOnly, "eventId": 2})
	if rs, _ := body["results"].([]any); status != 200 || len(rs) != 1 || rs[0].(map[string]any)["matched"] != false ||
		!strings.Contains(rs[0].(map[string]any)["reason"].(string), `channel is "voice"`) {
		t.Errorf("preview with a rule for chats = %d %v, want not matched with the reason", status, body)
	}

	for _, tt := range []struct {
		name   string
		req    map[string]any
		status int
		msg    string
	}{
		{"UnknownEvent", map[string]any{"name": "crm.toml", "content": testMapping, "eventId": 99}, 404, "event 99"},
		{"NotAnEvent", map[string]any{"name": "crm.toml", "content": testMapping, "event": `{"hello":"world"}`}, 422, "no platform"},
		{"UnknownPlatform", map[string]any{"name": "crm.toml", "content": testMapping, "event": `{}`, "platform": "avaya"}, 422, "unknown platform"},
		{"NoEvent", map[string]any{"name": "crm.toml", "content": testMapping}, 400, "want an event"},
		{"BrokenMapping", map[string]any{"name": "crm.toml", "content": brokenMapping, "eventId": 1}, 422, "problems"},
	} {
		status, body := preview(t, tt.req)
		if msg, _ := body["error"].(string); status != tt.status || !strings.Contains(msg, tt.msg) {
			t.Errorf("%s: preview = %d %v, want %d with %q", tt.name, status, body, tt.status, tt.msg)
		}
	}
}

// TestEditor_BuiltInMappingsAreReadOnly: without mapping.dir, the editor
// shows the embedded default, says how to edit mappings, and saves nothing.
func TestEditor_BuiltInMappingsAreReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ctibridge.toml")
	cfg := fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"
token = %q

[store]
path = %q

[targets.jsonl]
type = "jsonl"
path = %q
`, editorToken, filepath.Join(dir, "ctibridge.db"), filepath.Join(dir, "activities.jsonl"))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	m := MustRunMain(t, path)
	e := &editorEnv{m: m, base: "http://" + m.AdminAddr(), origin: "http://" + m.AdminAddr()}
	status, body := e.do(t, editorReq{path: "/admin/api/mappings", bearer: true})
	files, _ := body["files"].([]any)
	if status != 200 || body["editable"] != false || !strings.Contains(body["message"].(string), "mapping.dir") || len(files) != 1 {
		t.Fatalf("GET mappings = %d %v, want the built-in file, not editable, with a message about mapping.dir", status, body)
	}
	builtIn, err := os.ReadFile("internal/config/defaults/mapping.toml")
	if err != nil {
		t.Fatal(err)
	}
	if f := files[0].(map[string]any); f["content"] != string(builtIn) || f["readOnly"] == nil {
		t.Errorf("built-in file = %v, want the embedded default, read-only", f)
	}
	l := e.login(t)
	for _, req := range []editorReq{
		{method: "PUT", path: "/admin/api/mappings/default.toml", body: map[string]string{"content": testMapping}},
		{method: "POST", path: "/admin/api/mappings/check", body: map[string]string{"name": "default.toml", "content": testMapping}},
	} {
		status, body := e.do(t, e.as(l, req))
		if msg, _ := body["error"].(string); status != http.StatusConflict || !strings.Contains(msg, "mapping.dir") {
			t.Errorf("%s %s = %d %v, want 409 about mapping.dir", req.method, req.path, status, body)
		}
	}
	// A preview shows what the built-in mappings make of an event.
	status, body = e.do(t, e.as(l, editorReq{method: "POST", path: "/admin/api/mappings/preview",
		body: map[string]string{"event": string(readExample(t))}}))
	if rs, _ := body["results"].([]any); status != 200 || len(rs) == 0 || rs[0].(map[string]any)["target"] != "jsonl" {
		t.Errorf("preview with the built-in mappings = %d %v, want their results", status, body)
	}
}

// editorBrowser is one page of the shared browser driver (startBrowser in
// bridge_test.go): the editor's tests name no contexts or pages.
type editorBrowser struct{ b *browser }

const editorPage = "editor"

// startEditorBrowser starts Chromium with one context and page for the
// editor, or skips the test when either is missing (fails when CI is set).
func startEditorBrowser(t *testing.T) *editorBrowser {
	t.Helper()
	b := startBrowser(t)
	b.do(t, map[string]any{"op": "context", "ctx": editorPage})
	b.do(t, map[string]any{"op": "open", "ctx": editorPage, "page": editorPage, "url": "about:blank"})
	return &editorBrowser{b}
}

// do runs one driver op on the editor's page and returns its result,
// failing t on error.
func (e *editorBrowser) do(t *testing.T, op string, args map[string]any) json.RawMessage {
	t.Helper()
	req := map[string]any{"op": op, "ctx": editorPage, "page": editorPage}
	for k, v := range args {
		req[k] = v
	}
	return e.b.do(t, req)
}

// wait waits until js is true in the page; on failure it shows what the
// page says.
func (e *editorBrowser) wait(t *testing.T, what, js string) {
	t.Helper()
	if _, err := e.b.send(map[string]any{"op": "wait", "page": editorPage, "js": js, "timeout": 15000}, 30*time.Second); err != nil {
		t.Fatalf("waiting for %s: %v\nthe page says: %s", what, err, e.evalString(t, "document.body.innerText"))
	}
}

// clickNav clicks selector, waits for the page it loads, and returns its
// URL.
func (e *editorBrowser) clickNav(t *testing.T, selector string) string {
	t.Helper()
	var u string
	_ = json.Unmarshal(e.do(t, "clickNav", map[string]any{"selector": selector}), &u)
	return u
}

// evalString evaluates js in the page and returns its string value.
func (e *editorBrowser) evalString(t *testing.T, js string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(e.do(t, "eval", map[string]any{"js": js}), &s); err != nil {
		t.Fatalf("eval %s: %v", js, err)
	}
	return s
}

// screenshot saves the page to a file that outlives the test.
func (e *editorBrowser) screenshot(t *testing.T, what string) {
	t.Helper()
	f, err := os.CreateTemp("", "ctibridge-editor-"+what+"-*.png")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	e.do(t, "screenshot", map[string]any{"path": f.Name()})
	t.Logf("screenshot (%s): %s", what, f.Name())
}

// caretAfterJS puts the editor's caret right after the first occurrence of
// the JSON string s, and focuses it.
func caretAfterJS(s string) string {
	q, _ := json.Marshal(s)
	return fmt.Sprintf(`(() => { const c = document.getElementById('code'); const i = c.value.indexOf(%s);
		if (i < 0) return -1; c.focus(); c.setSelectionRange(i + %d, i + %d); return i; })()`, q, len(s), len(s))
}

// TestEditor_Browser follows an admin in headless Chromium: log in with
// the token, open the file, type a mistake and see its line marked, fix
// it, edit the subject, preview the edit against the call that just came
// in, and save. The outcome is checked on the daemon: the file on disk,
// the store's status, and the next call's activity at the CRM.
func TestEditor_Browser(t *testing.T) {
	br := startEditorBrowser(t)
	e := newEditorEnv(t)
	if got := e.subject(t, e.post(t, "")); got != subjectBefore {
		t.Fatalf("before the edit, the CRM got Subject %q, want %q", got, subjectBefore)
	}
	reloads := e.m.Mappings.Status().Reloads

	// The editor sends a browser without a session to the login.
	var at string
	_ = json.Unmarshal(br.do(t, "open", map[string]any{"url": e.base + "/admin/"}), &at)
	if at != e.base+"/admin/login" {
		t.Fatalf("opening the editor without a session lands on %s, want the login", at)
	}
	br.do(t, "fill", map[string]any{"selector": "#token", "value": "wrong"})
	br.do(t, "clickNav", map[string]any{"selector": "button[type=submit]"})
	if msg := br.evalString(t, "document.querySelector('.error').textContent"); !strings.Contains(msg, "Wrong admin token") {
		t.Errorf("after a wrong token, the login says %q", msg)
	}
	br.do(t, "fill", map[string]any{"selector": "#token", "value": editorToken})
	var before []string // the login's 401 is logged as an error
	_ = json.Unmarshal(br.do(t, "logs", nil), &before)
	if at := br.clickNav(t, "button[type=submit]"); at != e.base+"/admin/" {
		t.Fatalf("after logging in, the browser is at %s, want the editor", at)
	}
	br.wait(t, "the editor to load", `document.body.dataset.ready === '1' && document.getElementById('code').value.includes('Subject')`)
	if got := br.evalString(t, "document.getElementById('file-name').textContent"); got != "crm.toml" {
		t.Errorf("the editor opened %q, want crm.toml", got)
	}
	br.wait(t, "the first check", `document.getElementById('check-state').dataset.state === 'ok'`)

	// A mistake, typed: its line is marked, and the problem names it.
	br.do(t, "eval", map[string]any{"js": caretAfterJS(`Subject     = '`)})
	br.do(t, "type", map[string]any{"text": "nosuchfield + "})
	br.wait(t, "line 9 to be marked", `document.querySelector('#gutter div[data-line="9"]').classList.contains('err')`)
	problems := br.evalString(t, "document.getElementById('problems').innerText")
	if !strings.Contains(problems, "crm.toml:9:16") || !strings.Contains(problems, "unknown name nosuchfield") {
		t.Errorf("the problems say %q, want crm.toml:9:16 and the unknown name", problems)
	}
	if marked := br.evalString(t, `[...document.querySelectorAll('#gutter div.err')].map((d) => d.textContent).join(',')`); marked != "9" {
		t.Errorf("marked lines %q, want 9", marked)
	}
	if br.evalString(t, "String(document.getElementById('save').disabled)") != "true" {
		t.Error("Save is enabled with a problem in the file")
	}
	br.screenshot(t, "problem")

	// Fixed: the mark goes.
	br.do(t, "press", map[string]any{"key": "Backspace", "count": len("nosuchfield + ")})
	br.wait(t, "the mark to go", `document.getElementById('check-state').dataset.state === 'ok' && !document.querySelector('#gutter div.err')`)

	// The edit, previewed against the call that came in.
	br.do(t, "eval", map[string]any{"js": caretAfterJS(`Subject     = '"`)})
	br.do(t, "type", map[string]any{"text": "Edited "})
	br.wait(t, "the edit to check", `document.getElementById('check-state').dataset.state === 'ok' && !document.getElementById('save').disabled`)
	br.wait(t, "the recent events", `document.getElementById('event-pick').dataset.count === '1'`)
	if opt := br.evalString(t, "document.querySelector('#event-pick option[value=\"1\"]').textContent"); !strings.Contains(opt, "brightpattern") ||
		!strings.Contains(opt, "7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D") {
		t.Errorf("the recent event is shown as %q, want its platform and interaction", opt)
	}
	br.do(t, "select", map[string]any{"selector": "#event-pick", "value": "1"})
	br.wait(t, "the preview", `document.getElementById('preview-out').dataset.state === 'done'`)
	subject := br.evalString(t, `document.querySelector('#preview-out .rule[data-rule="calls"] tr[data-field="Subject"] td:last-child').textContent`)
	if subject != subjectAfter {
		t.Errorf("the preview shows Subject %q, want %q", subject, subjectAfter)
	}
	if got := e.onDisk(t, "crm.toml"); got != testMapping {
		t.Fatalf("crm.toml changed before the save:\n%s", got)
	}

	br.do(t, "click", map[string]any{"selector": "#save"})
	br.wait(t, "the save", `document.getElementById('save-msg').textContent.startsWith('Saved crm.toml')`)
	if br.evalString(t, "String(document.getElementById('dirty').hidden)") != "true" {
		t.Error("the file is still shown as not saved")
	}
	br.screenshot(t, "saved")

	// On the daemon: the file, the status, the next call.
	if got := e.onDisk(t, "crm.toml"); got != editedMapping {
		t.Errorf("crm.toml on disk after the save:\n%s\nwant\n%s", got, editedMapping)
	}
	if st := e.m.Mappings.Status(); st.Reloads != reloads+1 || st.LastError != "" || st.Rules != 1 {
		t.Errorf("status after the save = %+v, want one more reload (was %d)", st, reloads)
	}
	if got := e.subject(t, e.post(t, "EDITOR-BROWSER-2")); got != subjectAfter {
		t.Errorf("after the save, the CRM got Subject %q, want %q", got, subjectAfter)
	}

	var logs []string
	_ = json.Unmarshal(br.do(t, "logs", nil), &logs)
	for _, l := range logs[len(before):] {
		if strings.HasPrefix(l, "pageerror") || strings.HasPrefix(l, "error") {
			t.Errorf("the page logged %s", l)
		}
	}

	// Logging out ends the session.
	if at := br.clickNav(t, "#logout"); at != e.base+"/admin/login" {
		t.Errorf("after logging out, the browser is at %s, want the login", at)
	}
	_ = json.Unmarshal(br.do(t, "open", map[string]any{"url": e.base + "/admin/"}), &at)
	if at != e.base+"/admin/login" {
		t.Errorf("after logging out, the editor lands on %s, want the login", at)
	}
}
