package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/httpjson"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/ingest"
	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// The mapping editor is a web page on the admin listener: an admin lists
// the mapping files, edits one while it is checked as they type, previews
// the edit against a pasted or a recently received event, and saves it
// (checked, written atomically, reloaded: mapping.Store.Save).
//
// A browser cannot send the bearer token on a navigation, so it signs in
// once: GET /admin/login shows a form for the token, and POST /admin/login
// (same origin only) checks it in constant time and sets a session cookie.
// A session is 32 random bytes that the daemon keeps in memory, by their
// SHA-256, with an expiry and a CSRF token of its own. Logging out, the
// expiry or a restart ends it; an HMAC of the token would survive restarts
// but could not be revoked. The cookie is HttpOnly and SameSite=Strict, and
// every state-changing request made with it must also carry the session's
// CSRF token in X-CSRF-Token and the page's own Origin. Requests with the
// bearer token need neither: no browser adds that header by itself.

// CSRFHeader carries an editor session's CSRF token with every
// state-changing request.
const CSRFHeader = "X-CSRF-Token"

//go:embed editor
var editorAssets embed.FS

var editorPages = template.Must(template.ParseFS(editorAssets, "editor/*.html"))

const (
	editorSessionTTL  = 8 * time.Hour
	editorMaxSessions = 64      // the oldest goes when a login would exceed it
	editorMaxBody     = 2 << 20 // a mapping file or a sample event
)

// editorSessions are the editor's browser sessions. The zero value is not
// usable; see newEditorSessions.
type editorSessions struct {
	tokenSum [sha256.Size]byte // the admin token's SHA-256
	cookie   string            // the cookie's name, with the port: one per daemon
	logger   *slog.Logger

	mu       sync.Mutex
	sessions map[[sha256.Size]byte]editorSession // by the SHA-256 of the cookie's value
	// failed counts wrong tokens since the last warning, at warned.
	failed int
	warned time.Time
}

type editorSession struct {
	csrf    string
	created time.Time
}

func newEditorSessions(tokenSum [sha256.Size]byte, addr net.Addr, logger *slog.Logger) *editorSessions {
	name := "ctibridge_admin"
	if tcp, ok := addr.(*net.TCPAddr); ok {
		name += "_" + strconv.Itoa(tcp.Port)
	}
	return &editorSessions{tokenSum: tokenSum, cookie: name, logger: logger.With("component", "editor"),
		sessions: map[[sha256.Size]byte]editorSession{}}
}

// lookup returns the live session r's cookie names.
func (s *editorSessions) lookup(r *http.Request) (editorSession, bool) {
	c, err := r.Cookie(s.cookie)
	if err != nil || c.Value == "" {
		return editorSession{}, false
	}
	// Looking the hash up, not the value, keeps the map's timing from
	// telling anything about valid session ids.
	key := sha256.Sum256([]byte(c.Value))
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[key]
	if ok && time.Since(sess.created) > editorSessionTTL {
		delete(s.sessions, key)
		return editorSession{}, false
	}
	return sess, ok
}

// check reports whether r is authenticated by a session; the guard asks
// for the bearer token otherwise. A request that changes something must
// also carry the session's CSRF token, which only the editor's page knows,
// and an Origin (the guard has refused a foreign one already): the browser
// sends the cookie whichever page makes the request.
func (s *editorSessions) check(r *http.Request) (bool, error) {
	if r.Header.Get("Authorization") != "" {
		return false, nil // the bearer token decides
	}
	sess, ok := s.lookup(r)
	if !ok {
		return false, nil
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true, nil
	}
	if r.Header.Get("Origin") == "" {
		return false, errors.New("refused: a browser request that changes something must carry its Origin")
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(sess.csrf)) != 1 {
		return false, errors.New("refused: missing or wrong CSRF token (" + CSRFHeader + "); reload the editor page")
	}
	return true, nil
}

// start makes a new session and sets its cookie on w.
func (s *editorSessions) start(w http.ResponseWriter) error {
	id, csrf := make([]byte, 32), make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	if _, err := rand.Read(csrf); err != nil {
		return err
	}
	value := base64.RawURLEncoding.EncodeToString(id)
	now := time.Now()
	s.mu.Lock()
	for k, sess := range s.sessions {
		if now.Sub(sess.created) > editorSessionTTL {
			delete(s.sessions, k)
		}
	}
	for len(s.sessions) >= editorMaxSessions {
		var oldest [sha256.Size]byte
		var at time.Time
		for k, sess := range s.sessions {
			if at.IsZero() || sess.created.Before(at) {
				oldest, at = k, sess.created
			}
		}
		delete(s.sessions, oldest)
	}
	s.sessions[sha256.Sum256([]byte(value))] = editorSession{csrf: base64.RawURLEncoding.EncodeToString(csrf), created: now}
	s.mu.Unlock()
	// Not Secure: the admin listener speaks plain HTTP on loopback.
	http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: value, Path: "/admin", MaxAge: int(editorSessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return nil
}

// pageHeaders are the headers of the editor's HTML pages: nothing inline
// runs, nothing is framed, nothing is cached, and the page's requests keep
// their Origin (a no-referrer policy would make it "null").
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "+
		"img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// editorPublic serves what a browser needs before it has a session: the
// login, the static files, and the editor's page, which sends a browser
// without a session to the login.
func (s *editorSessions) editorPublic() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /admin/{$}", s.handlePage)
	mux.HandleFunc("GET /admin/dashboard", s.handleDashboard)
	mux.HandleFunc("GET /admin/login", s.handleLoginPage)
	mux.HandleFunc("POST /admin/login", s.handleLogin)
	static, _ := fs.Sub(editorAssets, "editor")
	files := http.StripPrefix("/admin/static/", http.FileServerFS(static))
	mux.HandleFunc("GET /admin/static/{file}", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.PathValue("file"), ".html") {
			http.NotFound(w, r) // the templates are served rendered only
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
	return mux
}

func (s *editorSessions) handlePage(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.lookup(r)
	if !ok {
		http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
		return
	}
	pageHeaders(w)
	_ = editorPages.ExecuteTemplate(w, "index.html", map[string]string{"CSRF": sess.csrf})
}

func (s *editorSessions) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.lookup(r); ok {
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
		return
	}
	s.loginPage(w, http.StatusOK, "")
}

func (s *editorSessions) loginPage(w http.ResponseWriter, status int, msg string) {
	pageHeaders(w)
	w.WriteHeader(status)
	_ = editorPages.ExecuteTemplate(w, "login.html", map[string]string{"Error": msg})
}

// handleLogin checks the token posted by the login form and starts a
// session. Only the login page may post it: a request without an Origin is
// refused here, one with a foreign Origin by the guard.
func (s *editorSessions) handleLogin(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") == "" {
		s.loginPage(w, http.StatusForbidden, "Log in from this page: the request did not say where it came from (Origin).")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		s.loginPage(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(r.PostForm.Get("token"))))
	if subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) != 1 {
		s.loginFailed(r)
		s.loginPage(w, http.StatusUnauthorized, "Wrong admin token.")
		return
	}
	if err := s.start(w); err != nil {
		s.logger.Error("editor login: no session", "err", err)
		s.loginPage(w, http.StatusInternalServerError, "Could not start a session.")
		return
	}
	s.logger.Info("editor login", "remote_addr", r.RemoteAddr)
	http.Redirect(w, r, "/admin/", http.StatusSeeOther)
}

// loginFailed warns of wrong tokens, at most once a minute, with how many
// there were since the previous warning.
func (s *editorSessions) loginFailed(r *http.Request) {
	s.mu.Lock()
	s.failed++
	n := s.failed
	if time.Since(s.warned) < time.Minute {
		s.mu.Unlock()
		return
	}
	s.failed, s.warned = 0, time.Now()
	s.mu.Unlock()
	s.logger.Warn("editor login with a wrong admin token", "failures", n, "remote_addr", r.RemoteAddr)
}

// handleLogout ends the request's session; it needs the CSRF token, as
// every state-changing request does.
func (s *editorSessions) handleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(s.cookie); err == nil {
		s.mu.Lock()
		delete(s.sessions, sha256.Sum256([]byte(c.Value)))
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: "", Path: "/admin", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	s.logger.Info("editor logout", "remote_addr", r.RemoteAddr)
	httpjson.Write(w, http.StatusOK, map[string]bool{"loggedOut": true})
}

// editorFile is a mapping file as the editor shows it.
type editorFile struct {
	Name    string `json:"name"`
	Content string `json:"content"`
	// Sum is the SHA-256 of the content, in hex: what a save says it
	// started from, so that it does not overwrite a change made meanwhile.
	Sum string `json:"sum"`
	// ReadOnly says why the file cannot be edited here, if it cannot.
	ReadOnly string `json:"readOnly,omitempty"`
}

// ContentSum identifies a mapping file's content: the editor sends it back
// as the base of a save, which is refused when the file changed meanwhile.
func ContentSum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// handleMappings lists the mapping files with their contents, the store's
// status, and whether the files can be edited here.
func (s *Server) handleMappings(w http.ResponseWriter, r *http.Request) {
	ms := s.Mappings
	files, err := ms.Files()
	if err != nil && (ms.Dir == "" || !strings.Contains(err.Error(), "no mapping files")) {
		s.adminError(w, r, err)
		return
	}
	res := struct {
		Editable  bool           `json:"editable"`
		Dir       string         `json:"dir,omitempty"`
		Message   string         `json:"message,omitempty"`
		Files     []editorFile   `json:"files"`
		Status    mapping.Status `json:"status"`
		Platforms []string       `json:"platforms"`
	}{Editable: ms.Dir != "", Dir: ms.Dir, Files: []editorFile{}, Status: ms.Status()}
	if !res.Editable {
		res.Message = "These are the mappings built into ctibridge; they cannot be edited here. " +
			"To edit mappings, copy them into a directory of *.toml files and set mapping.dir to it in the config."
	}
	for _, f := range files {
		ef := editorFile{Name: filepath.Base(f.Name), Content: string(f.Data), Sum: ContentSum(f.Data)}
		switch {
		case !res.Editable:
			ef.ReadOnly = "built in"
		case !utf8.Valid(f.Data):
			ef.ReadOnly = "this file is not UTF-8 text; edit it with a text editor"
		}
		res.Files = append(res.Files, ef)
	}
	for name := range s.Decoders {
		res.Platforms = append(res.Platforms, name)
	}
	sort.Strings(res.Platforms)
	w.Header().Set("Cache-Control", "no-store")
	httpjson.Write(w, http.StatusOK, res)
}

// editorEdit is the body of the editor's check, preview and save requests.
type editorEdit struct {
	Name    string `json:"name"`
	Content string `json:"content"`
	// Base is the Sum of the file the edit started from, "" for a new
	// file; a save whose Base is not the file's on disk is refused. Without
	// it, a save overwrites whatever is there.
	Base *string `json:"base,omitempty"`
	// Event is a sample event, as a platform posts it (one JSON document,
	// or one per line for a sequence); Platform is its platform, guessed
	// when empty. EventID names a stored event instead.
	Event    string `json:"event,omitempty"`
	Platform string `json:"platform,omitempty"`
	EventID  int64  `json:"eventId,omitempty"`
}

// maxMappingFileName keeps a name well within every file system's limit
// (255 bytes on most), so that a long name is refused, not an I/O error.
const maxMappingFileName = 128

var mappingFileName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*\.toml$`)

// decodeEdit reads an editorEdit and checks its file name; it answers the
// request itself when it returns false.
func (s *Server) decodeEdit(w http.ResponseWriter, r *http.Request, needName bool) (editorEdit, bool) {
	var e editorEdit
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, editorMaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("malformed JSON: %v", err))
		return e, false
	}
	if name := r.PathValue("name"); name != "" {
		e.Name = name
	}
	switch {
	case s.Mappings.Dir == "" && needName:
		httpjson.Error(w, http.StatusConflict, "the built-in mappings cannot be edited; set mapping.dir in the config to a directory of mapping files")
		return e, false
	case s.Mappings.Dir != "" && len(e.Name) > maxMappingFileName:
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("name: a mapping file's name is at most %d bytes, this one has %d", maxMappingFileName, len(e.Name)))
		return e, false
	case s.Mappings.Dir != "" && !mappingFileName.MatchString(e.Name):
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("name %q: a mapping file's name is letters, digits, '.', '_' and '-', ending in .toml", e.Name))
		return e, false
	}
	return e, true
}

// checkEdit loads the mappings as they would be with e saved. It returns the
// problems, if the edit has any, with each file's base name.
func (s *Server) checkEdit(e editorEdit) (*mapping.Set, mapping.Problems, error) {
	set, err := s.Mappings.Check(e.Name, []byte(e.Content))
	if ps, ok := s.problems(err); ok {
		return nil, ps, nil
	}
	return set, nil, err
}

// problems returns the problems err lists, if it does, with each file's
// base name.
func (s *Server) problems(err error) (mapping.Problems, bool) {
	var ps mapping.Problems
	if !errors.As(err, &ps) {
		return nil, false
	}
	out := make(mapping.Problems, len(ps))
	for i, p := range ps {
		p.File = s.baseName(p.File)
		out[i] = p
	}
	return out, true
}

// baseName is a mapping file's name as the editor shows it: without the
// directory.
func (s *Server) baseName(name string) string {
	if s.Mappings.Dir != "" && filepath.Dir(name) == filepath.Clean(s.Mappings.Dir) {
		return filepath.Base(name)
	}
	return name
}

// handleMappingCheck checks an edit without saving it: what the editor
// shows as the admin types.
func (s *Server) handleMappingCheck(w http.ResponseWriter, r *http.Request) {
	e, ok := s.decodeEdit(w, r, true)
	if !ok {
		return
	}
	set, ps, err := s.checkEdit(e)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	if ps != nil {
		httpjson.Write(w, http.StatusOK, map[string]any{"ok": false, "problems": ps})
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"ok": true, "problems": mapping.Problems{}, "rules": set.Rules()})
}

// conflictError refuses a save whose base is not the file on disk.
type conflictError string

func (e conflictError) Error() string { return string(e) }

// handleMappingSave saves one file, if the whole mapping loads without
// problems with it, and makes it current: 422 with the problems otherwise,
// the file and the mappings in use unchanged.
func (s *Server) handleMappingSave(w http.ResponseWriter, r *http.Request) {
	e, ok := s.decodeEdit(w, r, true)
	if !ok {
		return
	}
	// The base check runs inside Save, under the store's lock, so that two
	// saves of one file cannot both pass it.
	var check func(old []byte, exists bool) error
	if e.Base != nil {
		check = func(old []byte, exists bool) error {
			switch {
			case !exists && *e.Base != "":
				return conflictError(e.Name + " was deleted since you opened it; copy your edit, then reload the page")
			case exists && *e.Base == "":
				return conflictError(e.Name + " already exists; pick another name")
			case exists && *e.Base != ContentSum(old):
				return conflictError(e.Name + " was changed on disk since you opened it; copy your edit, then reload the page")
			}
			return nil
		}
	}
	err := s.Mappings.Save(e.Name, []byte(e.Content), check)
	var ce conflictError
	if errors.As(err, &ce) {
		httpjson.Error(w, http.StatusConflict, string(ce))
		return
	}
	if ps, ok := s.problems(err); ok {
		httpjson.Write(w, http.StatusUnprocessableEntity, map[string]any{"ok": false, "problems": ps,
			"error": fmt.Sprintf("not saved: %d problems; %s is unchanged", len(ps), e.Name)})
		return
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	st := s.Mappings.Status()
	if s.OnReload != nil {
		s.OnReload("ok")
	}
	s.Logger.Info("mapping file saved through the editor; mappings reloaded", "file", e.Name, "files", st.Files, "rules", st.Rules)
	httpjson.Write(w, http.StatusOK, map[string]any{"ok": true, "status": st, "sum": ContentSum([]byte(e.Content))})
}

// handleMappingPreview says what each rule of the edited, unsaved
// mappings makes of a pasted event or of a stored event's interaction.
// With the built-in mappings, it previews those.
func (s *Server) handleMappingPreview(w http.ResponseWriter, r *http.Request) {
	e, ok := s.decodeEdit(w, r, false)
	if !ok {
		return
	}
	set := s.Mappings.Current()
	if s.Mappings.Dir != "" {
		var ps mapping.Problems
		var err error
		if set, ps, err = s.checkEdit(e); err != nil {
			s.adminError(w, r, err)
			return
		} else if ps != nil {
			httpjson.Write(w, http.StatusUnprocessableEntity, map[string]any{"ok": false, "problems": ps,
				"error": "the mapping has problems; fix them to preview it"})
			return
		}
	}
	var ins []*connector.Interaction
	platform := ""
	switch {
	case e.EventID > 0:
		evs, err := s.DB.Events(r.Context(), outbox.EventFilter{WithInteraction: true, BeforeID: e.EventID + 1, Limit: 1})
		if err != nil {
			s.adminError(w, r, err)
			return
		}
		if len(evs) == 0 || evs[0].ID != e.EventID {
			httpjson.Error(w, http.StatusNotFound, fmt.Sprintf("event %d: not found, or it completed no interaction", e.EventID))
			return
		}
		in := &connector.Interaction{}
		ins, platform = []*connector.Interaction{in}, evs[0].Platform
		if err := json.Unmarshal(evs[0].Interaction, in); err != nil {
			s.adminError(w, r, fmt.Errorf("event %d: stored interaction: %w", e.EventID, err))
			return
		}
	case strings.TrimSpace(e.Event) != "":
		var err error
		// A sequence may complete several interactions (each agent's leg
		// of a transfer): each is previewed, as the daemon would map it.
		if ins, platform, err = ingest.PreviewAll(s.Decoders, e.Platform, []byte(e.Event)); err != nil {
			httpjson.Error(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
	default:
		httpjson.Error(w, http.StatusBadRequest, "want an event to preview against: event (its JSON) or eventId")
		return
	}
	type preview struct {
		Interaction connector.Interaction `json:"interaction"`
		Results     []mapping.RuleResult  `json:"results"`
	}
	previews := make([]preview, 0, len(ins))
	for _, in := range ins {
		in = set.MaskInteraction(in) // as the daemon stores and maps it
		results := set.Explain(in)
		for i := range results {
			results[i].File = s.baseName(results[i].File)
		}
		shown := *in
		shown.Raw = nil
		previews = append(previews, preview{Interaction: shown, Results: results})
	}
	last := previews[len(previews)-1]
	httpjson.Write(w, http.StatusOK, map[string]any{"ok": true, "platform": platform, "previews": previews,
		"interaction": last.Interaction, "results": last.Results})
}

// recentEvent is a stored event as the editor's picker lists it.
type recentEvent struct {
	ID            int64     `json:"id"`
	Platform      string    `json:"platform"`
	Type          string    `json:"type"`
	ReceivedAt    time.Time `json:"receivedAt"`
	State         string    `json:"state"`
	InteractionID string    `json:"interactionId"`
	Channel       string    `json:"channel"`
	Direction     string    `json:"direction"`
}

// handleRecentEvents lists the newest events that completed an
// interaction, to preview an edit against: ?limit= (default 20).
func (s *Server) handleRecentEvents(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 500 {
			httpjson.Error(w, http.StatusBadRequest, "limit: want a number from 1 to 500")
			return
		}
		limit = n
	}
	evs, err := s.DB.Events(r.Context(), outbox.EventFilter{WithInteraction: true, Limit: limit})
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	out := make([]recentEvent, 0, len(evs))
	for _, ev := range evs {
		var in struct{ ID, Channel, Direction string }
		_ = json.Unmarshal(ev.Interaction, &in) // a summary: what does not parse stays empty
		out = append(out, recentEvent{ID: ev.ID, Platform: ev.Platform, Type: ev.Type, ReceivedAt: ev.ReceivedAt,
			State: string(ev.State), InteractionID: in.ID, Channel: in.Channel, Direction: in.Direction})
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"events": out})
}
