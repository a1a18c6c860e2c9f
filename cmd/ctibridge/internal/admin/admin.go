// Package admin is the operators' HTTP listener: the outbox API (list,
// show, retry, purge, stats, events, remap) and the mapping editor, behind
// the admin token or an editor session. It listens on its own address
// (loopback by default), so that the ingest port can face agents' browsers
// while the outbox stays reachable only by operators.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/httpjson"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/ingest"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/metrics"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// Every request needs the admin bearer token (or the mapping editor's
// session, editor.go), and a browser request from another origin is
// refused, as caddy's admin endpoint does.

// Server is the admin listener. Set its fields, then Open it.
type Server struct {
	// Token is the admin bearer token; when empty, the token kept in
	// TokenFile is used, generated there on the first start.
	Token     string
	TokenFile string
	DB        *outbox.DB
	// Notify wakes a target's deliveries (outbox.Dispatcher.Notify);
	// Targets are the targets' names.
	Notify   func(target string)
	Targets  []string
	Mappings *mapping.Store
	// Decoders read pasted events for the editor's preview.
	Decoders map[string]ingest.Decoder
	// OnReload, when set, is told "ok" after the editor saved a file and
	// the mappings were reloaded.
	OnReload func(result string)
	// Breakers returns each target's breaker (outbox.Dispatcher.Status) and
	// Activity the last hour's events and attempts, for the dashboard.
	Breakers func() map[string]outbox.TargetStatus
	Activity func(now time.Time) metrics.Activity
	// DefaultRegion reads a phone number typed in the dashboard's search
	// without a country code (mapping.default_region).
	DefaultRegion string
	Logger        *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time

	ln  net.Listener
	srv *http.Server
}

// Open starts the admin listener on addr. It listens synchronously, so a
// port already taken is an error of Open.
func (s *Server) Open(addr string) error {
	if s.Now == nil {
		s.Now = time.Now
	}
	token, tokenFile, err := s.token()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	srv := &http.Server{
		Handler:           s.handler(token, ln.Addr()),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	s.ln, s.srv = ln, srv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("admin server stopped", "err", err)
		}
	}()
	if tokenFile != "" {
		// The file's name, never the token itself.
		s.Logger.Info("admin API listening; its bearer token is in the token file",
			"admin_addr", ln.Addr().String(), "token_file", tokenFile)
	} else {
		s.Logger.Info("admin API listening", "admin_addr", ln.Addr().String())
	}
	return nil
}

// Addr is the address the admin listener listens on, "" before Open.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops the listener and waits for requests in flight until ctx
// ends.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

// token returns the admin bearer token: the configured one, or else the
// one kept in TokenFile, generated (32 random bytes, in hex) into a new
// file of mode 0600 on the first start. tokenFile is that file, or empty
// for a configured token.
func (s *Server) token() (token, tokenFile string, err error) {
	if s.Token != "" {
		return s.Token, "", nil
	}
	path := s.TokenFile
	b, err := os.ReadFile(path)
	switch {
	case err == nil && strings.TrimSpace(string(b)) != "":
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			s.Logger.Warn("admin token file is readable by other users; chmod 600 it", "token_file", path)
		}
		return strings.TrimSpace(string(b)), path, nil
	case err == nil: // empty: a crash interrupted its creation
		if err := os.Remove(path); err != nil {
			return "", "", fmt.Errorf("admin token: %w", err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return "", "", fmt.Errorf("admin token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("admin token: %w", err)
	}
	token = hex.EncodeToString(raw)
	// A new file only (O_EXCL), readable by its owner only. A crash halfway
	// leaves an empty file, which the next start replaces, or a shorter
	// token, which still works: nothing needs a rename here.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", fmt.Errorf("admin token: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", "", fmt.Errorf("admin token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", "", fmt.Errorf("admin token: %w", err)
	}
	return token, path, nil
}

// handler is the admin API: every route, behind the origin and token
// checks.
func (s *Server) handler(token string, addr net.Addr) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/api/deliveries", s.handleAdminList)
	mux.HandleFunc("GET /admin/api/deliveries/{id}", s.handleAdminShow)
	mux.HandleFunc("POST /admin/api/deliveries/{id}/retry", s.handleAdminRetry)
	mux.HandleFunc("POST /admin/api/deliveries/retry-dead", s.handleAdminRetryDead)
	mux.HandleFunc("POST /admin/api/purge", s.handleAdminPurge)
	mux.HandleFunc("GET /admin/api/stats", s.handleAdminStats)
	mux.HandleFunc("GET /admin/api/events", s.handleAdminEvents)
	mux.HandleFunc("POST /admin/api/events/remap", s.handleAdminRemap)
	// The mapping editor (editor.go): its API, and its pages below.
	mux.HandleFunc("GET /admin/api/mappings", s.handleMappings)
	mux.HandleFunc("POST /admin/api/mappings/check", s.handleMappingCheck)
	mux.HandleFunc("POST /admin/api/mappings/preview", s.handleMappingPreview)
	mux.HandleFunc("PUT /admin/api/mappings/{name}", s.handleMappingSave)
	mux.HandleFunc("GET /admin/api/events/recent", s.handleRecentEvents)
	// The dashboard (dashboard.go): its API; its page is public below.
	mux.HandleFunc("GET /admin/api/overview", s.handleOverview)
	mux.HandleFunc("GET /admin/api/trace", s.handleTrace)
	sum := sha256.Sum256([]byte(token))
	sessions := newEditorSessions(sum, addr, s.Logger)
	mux.HandleFunc("POST /admin/logout", sessions.handleLogout)
	return &adminGuard{mux: mux, public: sessions.editorPublic(), tokenSum: sum, origins: ownOrigins(addr), sessions: sessions}
}

// adminGuard checks every admin request before the mux sees it.
type adminGuard struct {
	mux *http.ServeMux
	// public is what a browser needs before it logs in to the editor: the
	// login, the static files, and the editor's page, which sends a browser
	// without a session to the login (editor.go).
	public *http.ServeMux
	// tokenSum is the token's SHA-256: comparing fixed-size digests in
	// constant time leaks neither the token nor its length.
	tokenSum [sha256.Size]byte
	// origins are the host:port of the listener's own origins; nil for a
	// listener on every address, whose own origin is the request's Host.
	origins map[string]bool
	// sessions are the editor's browser sessions, which stand for the
	// token, with a CSRF token for every state-changing request.
	sessions *editorSessions
}

func (g *adminGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A web page of another origin must not drive the admin API from the
	// operator's browser (CSRF, DNS rebinding); browsers say where a
	// request comes from in Origin. Tools such as curl send none.
	if origin := r.Header.Get("Origin"); origin != "" && !g.ownOrigin(origin, r.Host) {
		httpjson.Error(w, http.StatusForbidden, fmt.Sprintf("origin %q not allowed", origin))
		return
	}
	if _, pattern := g.public.Handler(r); pattern != "" {
		g.public.ServeHTTP(w, r)
		return
	}
	session, err := g.sessions.check(r)
	if err != nil {
		httpjson.Error(w, http.StatusForbidden, err.Error())
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	gotSum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	if !session && (!ok || subtle.ConstantTimeCompare(gotSum[:], g.tokenSum[:]) != 1) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ctibridge admin"`)
		httpjson.Error(w, http.StatusUnauthorized, "missing or wrong admin token (Authorization: Bearer <token>)")
		return
	}
	if h, pattern := g.mux.Handler(r); pattern == "" {
		h.ServeHTTP(&jsonErrorWriter{ResponseWriter: w, r: r}, r) // the mux's 404 or 405, as JSON
		return
	}
	g.mux.ServeHTTP(w, r)
}

// ownOrigin reports whether origin is the admin listener's own.
func (g *adminGuard) ownOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" {
		return false
	}
	if g.origins == nil {
		return u.Host == host
	}
	return g.origins[u.Host]
}

// ownOrigins returns the host:port a browser shows in Origin for pages of
// the listener at addr: the address itself, and localhost for a loopback
// one. It returns nil for a listener on every address (0.0.0.0, ::).
func ownOrigins(addr net.Addr) map[string]bool {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		return nil
	}
	origins := map[string]bool{tcp.String(): true}
	if tcp.IP.IsLoopback() {
		origins[net.JoinHostPort("localhost", strconv.Itoa(tcp.Port))] = true
	}
	return origins
}

// jsonErrorWriter turns a plain-text error response into the API's
// {"error": …}.
type jsonErrorWriter struct {
	http.ResponseWriter
	r       *http.Request
	written bool
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if code < 400 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.written = true
	msg := fmt.Sprintf("no admin endpoint %s %s", w.r.Method, w.r.URL.Path)
	if code == http.StatusMethodNotAllowed {
		msg = fmt.Sprintf("method %s not allowed for %s (allowed: %s)", w.r.Method, w.r.URL.Path,
			w.Header().Get("Allow"))
	}
	w.Header().Del("X-Content-Type-Options")
	httpjson.Error(w.ResponseWriter, code, msg)
}

func (w *jsonErrorWriter) Write(b []byte) (int, error) {
	if w.written {
		return len(b), nil // the plain-text body, replaced
	}
	return w.ResponseWriter.Write(b)
}

// handleAdminList lists deliveries, newest first: ?state=&target=&limit=.
func (s *Server) handleAdminList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := outbox.Filter{Target: q.Get("target"), Limit: 100}
	if v := q.Get("state"); v != "" {
		st, err := outbox.ParseState(v)
		if err != nil {
			httpjson.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		f.State = st
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("limit: want a positive number, got %q", v))
			return
		}
		f.Limit = n
	}
	ds, err := s.DB.List(r.Context(), f)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	if ds == nil {
		ds = []outbox.Delivery{}
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"deliveries": ds})
}

// handleAdminShow returns one delivery with its payload and attempts.
func (s *Server) handleAdminShow(w http.ResponseWriter, r *http.Request) {
	id, err := outbox.ParseID(r.PathValue("id"))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := s.DB.Show(r.Context(), id)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

// handleAdminRetry moves one dead delivery back to the queue and wakes its
// target's loop, so that it goes out at once.
func (s *Server) handleAdminRetry(w http.ResponseWriter, r *http.Request) {
	id, err := outbox.ParseID(r.PathValue("id"))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := s.DB.Show(r.Context(), id)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	n, err := s.DB.Retry(r.Context(), []int64{id}, s.Now())
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	target := res.Delivery.Target
	s.Notify(target)
	s.Logger.Info("delivery retried through the admin API", "outbox_id", id, "target", target)
	httpjson.Write(w, http.StatusOK, map[string]any{"retried": n, "id": id, "target": target})
}

// handleAdminRetryDead moves every dead delivery, or those of ?target=,
// back to the queue.
func (s *Server) handleAdminRetryDead(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("target")
	n, err := s.DB.RetryDead(r.Context(), target, s.Now())
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	targets := []string{target}
	if target == "" {
		targets = s.Targets
	}
	for _, t := range targets {
		s.Notify(t)
	}
	s.Logger.Info("dead deliveries retried through the admin API", "count", n, "target", target)
	httpjson.Write(w, http.StatusOK, map[string]any{"retried": n})
}

// handleAdminPurge deletes deliveries delivered longer ago than
// ?older_than= (a Go duration, such as 720h).
func (s *Server) handleAdminPurge(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("older_than")
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("older_than: want a positive duration such as 720h, got %q", v))
		return
	}
	n, err := s.DB.Purge(r.Context(), s.Now().Add(-d), 1000)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.Logger.Info("delivered rows purged through the admin API", "count", n, "older_than", d)
	httpjson.Write(w, http.StatusOK, map[string]any{"purged": n})
}

// handleAdminStats returns the outbox's counts.
func (s *Server) handleAdminStats(w http.ResponseWriter, r *http.Request) {
	st, err := s.DB.Stats(r.Context(), s.Now())
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, st)
}

// handleAdminEvents lists stored events, newest first;
// ?state=mapping_failed for those to fix, each with its failed rules
// (failures: rule, target, error).
func (s *Server) handleAdminEvents(w http.ResponseWriter, r *http.Request) {
	f := outbox.EventFilter{State: outbox.EventState(r.URL.Query().Get("state"))}
	if f.State != "" && f.State != outbox.EventProcessed && f.State != outbox.EventMappingFailed {
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("unknown state %q (want processed or mapping_failed)", f.State))
		return
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			httpjson.Error(w, http.StatusBadRequest, "limit: want a positive number")
			return
		}
		f.Limit = n
	}
	evs, err := s.DB.Events(r.Context(), f)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, append([]outbox.StoredEvent{}, evs...))
}

// handleAdminRemap maps the failed rules of every mapping_failed event
// again with the current mappings (only those rules: the others' records
// were enqueued already), enqueues what now maps and clears those
// failures.
func (s *Server) handleAdminRemap(w http.ResponseWriter, r *http.Request) {
	res, err := ingest.Remap(r.Context(), s.DB, s.Mappings.Current(), s.Now(), s.Notify)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.Logger.Info("failed events remapped", "remapped", res.Remapped, "activities", res.Activities,
		"still_failing", res.StillFailing)
	httpjson.Write(w, http.StatusOK, res)
}

// adminError answers err: the outbox's own errors with their status and
// message, anything else with a 500 whose cause goes to the log.
func (s *Server) adminError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, outbox.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, err.Error())
	case errors.Is(err, outbox.ErrNotDead):
		httpjson.Error(w, http.StatusConflict, err.Error())
	default:
		s.Logger.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "internal error; the daemon's log has the cause")
	}
}
