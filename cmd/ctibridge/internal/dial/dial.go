// Package dial is click-to-dial: a CRM page's link (GET /dial) or a JSON
// call (POST /v1/dial) becomes one call placed by one of the agent's
// desktop tabs.
//
// A dial is checked (the number normalized to E.164, the agent's rate
// limit), stored in SQLite, and sent over Server-Sent Events to one of the
// agent's bridges: the bridge of the agent's sending tab keeps GET
// /v1/agents/{agent}/commands open. The bridge takes the dial (POST
// /v1/dial/{id}/ack) before it calls the SDK's dial, and the daemon lets
// only one tab take it, so a dial is never made twice: not by two tabs, not
// after the stream reconnects (Last-Event-ID), not after a daemon restart.
// A dial no tab takes within AckTimeout is offered to the agent's next
// tab; one nobody takes within ExpireAfter is given up. The bridge then
// reports the SDK's answer (POST /v1/dial/{id}/outcome), which GET
// /v1/dial/{id}, the /dial page and `ctibridge dial` show.
//
// Who may dial: the JSON endpoints take any configured source token
// (sources.*.token) as "Authorization: Bearer"; the stream takes it as
// ?token= too, because EventSource cannot set headers. A browser's Origin
// must be in some source's allowed_origins. GET /dial, a plain link, takes
// ?token= or the signed cookie the bridge sets in the agent's browser. With
// no source token configured, all of them are open, as the event endpoints
// are. A token in a URL can end up in proxy logs: serve the daemon over TLS
// and keep query strings out of access logs.
package dial

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/access"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/httpjson"
)

// commandHeartbeat is how often an idle stream gets a comment line, so that
// proxies and load balancers do not close it.
const commandHeartbeat = 20 * time.Second

// commandBuffer bounds the commands waiting for one slow stream; a command
// that does not fit goes to another of the agent's streams.
const commandBuffer = 8

// maxDialBody bounds the JSON bodies of the dial endpoints.
const maxDialBody = 16 << 10

// Relay places the dials of CRM pages through the agents' bridges. Set its
// fields, then Open it.
type Relay struct {
	// Access says who may dial and stream commands: any source's token,
	// from an origin some source allows.
	Access access.Sources
	// Numbers normalizes the numbers to dial.
	Numbers Numbers
	// PerMinute dials a minute are allowed each agent (0: no limit); past
	// it, the agent's dials are refused for Quarantine.
	PerMinute  int
	Quarantine time.Duration
	// AckTimeout is how long a tab has to take a dial before it is offered
	// to the agent's next tab; ExpireAfter, how long a dial waits for any
	// tab before it is given up.
	AckTimeout  time.Duration
	ExpireAfter time.Duration
	// LinkWindow is how long after a dial a call of that agent to that
	// number is linked to the record clicked from (see Link); 0 never.
	LinkWindow time.Duration
	// Users maps CRM user ids (GET /dial?user=…) to agent ids.
	Users map[string]string
	// StorePath is the SQLite file the dials are kept in (the outbox's),
	// BusyTimeout how long a write waits for its lock.
	StorePath   string
	BusyTimeout time.Duration
	// KeyFile holds the key that signs the agent cookie; generated on the
	// first start.
	KeyFile string
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger

	heartbeat time.Duration
	store     *store
	key       []byte
	limit     *limiter

	mu      sync.Mutex
	clients map[string][]*client // by agent, in the order they connected
	pending map[string]*pending  // queued dials, by id
	done    chan struct{}        // closed when the streams end
	closed  bool
}

// client is one open commands stream.
type client struct {
	agent string
	ch    chan []byte // SSE frames
}

// pending is a queued dial and where it has been offered.
type pending struct {
	cmd    Command
	at     *client // the stream whose tab has to take it now, if any
	tried  map[*client]bool
	ack    *time.Timer
	expiry *time.Timer
}

// Open opens the dials' store, loads the key, and takes up the dials that
// were queued when the daemon stopped.
func (rl *Relay) Open() error {
	if rl.Now == nil {
		rl.Now = time.Now
	}
	if rl.Logger == nil {
		rl.Logger = slog.New(slog.DiscardHandler)
	}
	rl.heartbeat = cmp.Or(rl.heartbeat, commandHeartbeat)
	rl.AckTimeout = cmp.Or(rl.AckTimeout, 2*time.Second)
	rl.ExpireAfter = cmp.Or(rl.ExpireAfter, time.Minute)
	rl.limit = newLimiter(rl.PerMinute, rl.Quarantine)
	rl.clients = map[string][]*client{}
	rl.pending = map[string]*pending{}
	rl.done = make(chan struct{})
	var err error
	if rl.key, err = loadKey(rl.KeyFile); err != nil {
		return err
	}
	if rl.store, err = openStore(rl.StorePath, cmp.Or(rl.BusyTimeout, 5*time.Second)); err != nil {
		return err
	}
	queued, err := rl.store.queued(context.Background())
	if err != nil {
		rl.store.close()
		return fmt.Errorf("dials queued before the restart: %w", err)
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	for _, c := range queued {
		rl.queue(c)
	}
	return nil
}

// Close ends the streams, stops the timers and closes the store.
func (rl *Relay) Close() error {
	rl.EndStreams()
	rl.mu.Lock()
	for _, p := range rl.pending {
		p.stop()
	}
	rl.pending = map[string]*pending{}
	rl.mu.Unlock()
	if rl.store == nil {
		return nil
	}
	return rl.store.close()
}

// EndStreams ends every command stream and refuses new ones: an HTTP
// server's Shutdown waits for open streams otherwise.
func (rl *Relay) EndStreams() {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if !rl.closed {
		rl.closed = true
		close(rl.done)
	}
}

// Register adds the click-to-dial routes to mux.
func (rl *Relay) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /dial", rl.handlePage)
	mux.HandleFunc("GET /dial/status.js", handleScript)
	mux.HandleFunc("POST /v1/dial", rl.handleDial)
	mux.HandleFunc("GET /v1/dial/{id}", rl.handleStatus)
	mux.HandleFunc("POST /v1/dial/{id}/ack", rl.handleAck)
	mux.HandleFunc("POST /v1/dial/{id}/outcome", rl.handleOutcome)
	mux.HandleFunc("OPTIONS /v1/dial", rl.handlePreflight)
	mux.HandleFunc("OPTIONS /v1/dial/{id}/{verb}", rl.handlePreflight)
	mux.HandleFunc("GET /v1/agents/{agent}/commands", rl.handleCommands)
	mux.HandleFunc("POST /v1/agents/{agent}/session", rl.handleSession)
	mux.HandleFunc("OPTIONS /v1/agents/{agent}/session", rl.handleSessionPreflight)
}

// Connected returns how many bridges are connected for agent.
func (rl *Relay) Connected(agent string) int {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return len(rl.clients[agent])
}

// Request is a dial asked for by a CRM page, POST /v1/dial's body.
type Request struct {
	Agent  string     `json:"agent"`
	To     string     `json:"to"`
	Object *CRMObject `json:"object,omitempty"`
}

// Refusal is why a dial was not placed, with the HTTP status that says so.
type Refusal struct {
	Status int
	Msg    string
	// RetryAfter, on a 429, is when the agent may dial again.
	RetryAfter time.Duration
}

func (r *Refusal) Error() string { return r.Msg }

// Place checks req, stores it and sends it to one of the agent's bridges.
func (rl *Relay) Place(ctx context.Context, req Request) (Command, error) {
	if msg := req.problem(); msg != "" {
		return Command{}, &Refusal{Status: http.StatusBadRequest, Msg: msg}
	}
	to, err := rl.Numbers.Normalize(req.To)
	if err != nil {
		return Command{}, &Refusal{Status: http.StatusBadRequest, Msg: "to: " + err.Error()}
	}
	if rl.Connected(req.Agent) == 0 {
		return Command{}, &Refusal{Status: http.StatusConflict, Msg: fmt.Sprintf("agent %q has no desktop connected: "+
			"their contact-center desktop must be open with the ctibridge bridge (data-agent=%q)", req.Agent, req.Agent)}
	}
	now := rl.Now()
	if ok, wait := rl.limit.allow(req.Agent, now); !ok {
		return Command{}, &Refusal{Status: http.StatusTooManyRequests, RetryAfter: wait, Msg: fmt.Sprintf(
			"agent %q reached the limit of %d dials a minute; dials are refused for %s", req.Agent, rl.PerMinute, seconds(wait))}
	}
	c := Command{ID: newID(), Agent: req.Agent, To: to, Object: req.Object, State: StateQueued, Created: now}
	if err := rl.store.insert(ctx, &c); err != nil {
		return Command{}, err
	}
	rl.mu.Lock()
	rl.queue(c)
	rl.mu.Unlock()
	rl.Logger.Info("dial queued", "dial", c.ID, "agent", c.Agent)
	return c, nil
}

// problem says what is wrong with the request, or "".
func (req Request) problem() string {
	switch {
	case strings.TrimSpace(req.Agent) == "":
		return "agent: required"
	case len(req.Agent) > 200 || !utf8.ValidString(req.Agent):
		return "agent: must be at most 200 bytes of UTF-8"
	case strings.TrimSpace(req.To) == "":
		return "to: required"
	case req.Object != nil && (req.Object.ID == "" || req.Object.Type == ""):
		return "object: type and id are required"
	case req.Object != nil && len(req.Object.Type)+len(req.Object.ID)+len(req.Object.Name) > 1000:
		return "object: longer than 1000 bytes"
	}
	return ""
}

// seconds writes d in whole seconds, rounded up.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10) + " s"
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// queue takes up a queued dial: it is offered to a bridge now, and given
// up at its expiry. rl.mu is held.
func (rl *Relay) queue(c Command) {
	left := c.Created.Add(rl.ExpireAfter).Sub(rl.Now())
	p := &pending{cmd: c, tried: map[*client]bool{}}
	rl.pending[c.ID] = p
	p.expiry = time.AfterFunc(max(left, 0), func() { rl.giveUp(c.ID) })
	rl.offer(p)
}

// offer sends p to the agent's newest stream not tried yet; with none, p
// waits for a stream to connect. rl.mu is held.
func (rl *Relay) offer(p *pending) {
	if p.ack != nil {
		p.ack.Stop()
	}
	p.at = nil
	clients := rl.clients[p.cmd.Agent]
	for i := len(clients) - 1; i >= 0; i-- {
		c := clients[i]
		if p.tried[c] {
			continue
		}
		p.tried[c] = true
		select {
		case c.ch <- frame(p.cmd):
			rl.await(p, c)
			return
		default: // that stream is stuck: try the next
		}
	}
}

// await waits AckTimeout for c's tab to take p, then offers it elsewhere.
// rl.mu is held.
func (rl *Relay) await(p *pending, c *client) {
	p.at = c
	id := p.cmd.ID
	p.ack = time.AfterFunc(rl.AckTimeout, func() {
		rl.mu.Lock()
		defer rl.mu.Unlock()
		if q := rl.pending[id]; q == p && p.at == c {
			rl.Logger.Warn("no desktop tab took the dial in time; offering it to another", "dial", id, "agent", p.cmd.Agent)
			rl.offer(p)
		}
	})
}

// giveUp expires a dial that no tab took.
func (rl *Relay) giveUp(id string) {
	rl.mu.Lock()
	p := rl.pending[id]
	delete(rl.pending, id)
	rl.mu.Unlock()
	if p == nil {
		return
	}
	p.stop()
	reason := fmt.Sprintf("no desktop of agent %q took the dial within %s", p.cmd.Agent, rl.ExpireAfter)
	if err := rl.store.expire(context.Background(), id, reason, rl.Now()); err != nil {
		rl.Logger.Error("expiring a dial failed", "dial", id, "err", err)
		return
	}
	rl.Logger.Warn("dial expired", "dial", id, "agent", p.cmd.Agent)
}

func (p *pending) stop() {
	if p.ack != nil {
		p.ack.Stop()
	}
	p.expiry.Stop()
}

// taken forgets a dial that a tab took.
func (rl *Relay) taken(id string) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if p := rl.pending[id]; p != nil {
		p.stop()
		delete(rl.pending, id)
	}
}

// frame is c as a "dial" event whose id is its sequence number: a bridge
// that reconnects says, in Last-Event-ID, the last one it received.
func frame(c Command) []byte {
	data, _ := json.Marshal(struct {
		ID     string     `json:"id"`
		To     string     `json:"to"`
		Object *CRMObject `json:"object,omitempty"`
	}{c.ID, c.To, c.Object})
	return fmt.Appendf(nil, "id: %d\nevent: dial\ndata: %s\n\n", c.Seq, data)
}

// connect adds a stream for agent, whose bridge last received the dial
// numbered lastSeen, and offers it the agent's queued dials that wait for a
// stream. It returns nil once the streams have ended.
func (rl *Relay) connect(agent string, lastSeen int64) *client {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.closed {
		return nil
	}
	c := &client{agent: agent, ch: make(chan []byte, commandBuffer)}
	rl.clients[agent] = append(rl.clients[agent], c)
	var waiting []*pending
	for _, p := range rl.pending {
		if p.cmd.Agent == agent && p.at == nil {
			waiting = append(waiting, p)
		}
	}
	slices.SortFunc(waiting, func(a, b *pending) int { return cmp.Compare(a.cmd.Seq, b.cmd.Seq) })
	for _, p := range waiting {
		if p.cmd.Seq <= lastSeen {
			// This tab has it already (it reconnected): it takes it
			// without a second copy.
			p.tried[c] = true
			rl.await(p, c)
			continue
		}
		rl.offer(p)
	}
	return c
}

// disconnect removes c, and offers the dials its tab had not taken yet to
// the agent's other streams.
func (rl *Relay) disconnect(c *client) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.clients[c.agent] = slices.DeleteFunc(rl.clients[c.agent], func(x *client) bool { return x == c })
	if len(rl.clients[c.agent]) == 0 {
		delete(rl.clients, c.agent)
	}
	for _, p := range rl.pending {
		delete(p.tried, c)
		if p.at == c {
			rl.offer(p)
		}
	}
}

// handleCommands streams an agent's dials as Server-Sent Events until the
// bridge goes away or the daemon shuts down.
func (rl *Relay) handleCommands(w http.ResponseWriter, r *http.Request) {
	agent := r.PathValue("agent")
	if agent == "" || len(agent) > 200 || !utf8.ValidString(agent) {
		httpjson.Error(w, http.StatusBadRequest, "the agent id in the path must be 1 to 200 bytes of UTF-8")
		return
	}
	if !rl.Access.AuthorizeAny(w, r, bearer(r, r.URL.Query().Get("token"))) {
		return
	}
	lastSeen, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)

	// A stream outlives the server's read and write timeouts.
	rc := http.NewResponseController(w)
	for _, set := range []func(time.Time) error{rc.SetReadDeadline, rc.SetWriteDeadline} {
		if err := set(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
			rl.Logger.Warn("commands stream: clearing deadline failed", "err", err)
		}
	}
	c := rl.connect(agent, lastSeen)
	if c == nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	defer rl.disconnect(c)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// retry: a bridge reconnects 1 s after the stream ends.
	if _, err := io.WriteString(w, "retry: 1000\n: connected\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	rl.Logger.Debug("bridge connected for commands", "agent", agent, "last_seen", lastSeen)
	tick := time.NewTicker(rl.heartbeat)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-rl.done:
			return
		case f := <-c.ch:
			_, err = w.Write(f)
		case <-tick.C:
			_, err = io.WriteString(w, ": ping\n\n")
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// bearer is the request's bearer token, or else fallback.
func bearer(r *http.Request, fallback string) string {
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return t
	}
	return fallback
}

// readJSON reads a small JSON body into v, or writes the refusal.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDialBody))
	if err != nil {
		httpjson.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than the limit of %d bytes", maxDialBody))
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		httpjson.Error(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
		return false
	}
	return true
}

// writeRefusal answers err: a Refusal with its status, anything else 503.
func (rl *Relay) writeRefusal(w http.ResponseWriter, err error) {
	var ref *Refusal
	if !errors.As(err, &ref) {
		rl.Logger.Error("dial failed", "err", err)
		httpjson.Error(w, http.StatusServiceUnavailable, "the dial could not be stored; try again")
		return
	}
	setRetryAfter(w, ref.RetryAfter)
	httpjson.Error(w, ref.Status, ref.Msg)
}

// setRetryAfter says, when d > 0, in how many seconds (rounded up) to try
// again.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	if d > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
}

// handleDial places a dial: 202 with its id and where to follow it.
func (rl *Relay) handleDial(w http.ResponseWriter, r *http.Request) {
	if !rl.Access.AuthorizeAny(w, r, bearer(r, "")) {
		return
	}
	var req Request
	if !readJSON(w, r, &req) {
		return
	}
	c, err := rl.Place(r.Context(), req)
	if err != nil {
		rl.writeRefusal(w, err)
		return
	}
	httpjson.Write(w, http.StatusAccepted, map[string]any{"id": c.ID, "agent": c.Agent, "to": c.To,
		"state": c.State, "status": "/v1/dial/" + c.ID})
}

// Status returns dial id; ok is false when there is none.
func (rl *Relay) Status(ctx context.Context, id string) (Command, bool, error) {
	return rl.store.get(ctx, id)
}

// handleStatus answers a dial's state. Its id, 128 random bits, is what
// the page that placed it knows; nothing else is needed to read it.
func (rl *Relay) handleStatus(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" && rl.Access.OriginAllowed(origin) {
		access.AllowCORS(w, origin)
	}
	c, ok, err := rl.store.get(r.Context(), r.PathValue("id"))
	switch {
	case err != nil:
		rl.Logger.Error("reading a dial failed", "err", err)
		httpjson.Error(w, http.StatusServiceUnavailable, "the dial could not be read; try again")
	case !ok:
		httpjson.Error(w, http.StatusNotFound, "no such dial")
	default:
		w.Header().Set("Cache-Control", "no-store")
		httpjson.Write(w, http.StatusOK, c)
	}
}

// tabRequest is the body of a bridge's ack and outcome.
type tabRequest struct {
	// Tab identifies the desktop tab, random per page load.
	Tab string `json:"tab"`
	// State and Reason, for an outcome: dialing, or failed with the SDK's
	// reason.
	State  string `json:"state"`
	Reason string `json:"reason"`
}

// handleAck lets a bridge's tab take a dial: 200 when the tab is to dial
// it, 409 when another tab took it, 410 when it expired.
func (rl *Relay) handleAck(w http.ResponseWriter, r *http.Request) {
	if !rl.Access.AuthorizeAny(w, r, bearer(r, "")) {
		return
	}
	var req tabRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Tab == "" || len(req.Tab) > 100 {
		httpjson.Error(w, http.StatusBadRequest, "tab: required, at most 100 bytes")
		return
	}
	id := r.PathValue("id")
	ok, err := rl.store.claim(r.Context(), id, req.Tab, rl.Now())
	if err != nil {
		rl.writeRefusal(w, err)
		return
	}
	if ok {
		rl.taken(id)
		rl.Logger.Info("dial taken by a desktop tab", "dial", id)
		httpjson.Write(w, http.StatusOK, map[string]any{"dial": true})
		return
	}
	c, found, err := rl.store.get(r.Context(), id)
	switch {
	case err != nil:
		rl.writeRefusal(w, err)
	case !found:
		httpjson.Error(w, http.StatusNotFound, "no such dial")
	case c.State == StateExpired:
		httpjson.Error(w, http.StatusGone, "the dial expired: "+c.Reason)
	default:
		httpjson.Error(w, http.StatusConflict, "another desktop tab took the dial")
	}
}

// handleOutcome records what the SDK said of a dial the tab took.
func (rl *Relay) handleOutcome(w http.ResponseWriter, r *http.Request) {
	if !rl.Access.AuthorizeAny(w, r, bearer(r, "")) {
		return
	}
	var req tabRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.State != StateDialing && req.State != StateFailed {
		httpjson.Error(w, http.StatusBadRequest, "state: want dialing or failed")
		return
	}
	id := r.PathValue("id")
	ok, err := rl.store.finish(r.Context(), id, req.Tab, req.State, strings.ToValidUTF8(req.Reason[:min(len(req.Reason), 500)], ""), rl.Now())
	if err != nil {
		rl.writeRefusal(w, err)
		return
	}
	if !ok {
		httpjson.Error(w, http.StatusConflict, "this tab did not take the dial")
		return
	}
	rl.Logger.Info("dial outcome", "dial", id, "state", req.State, "reason", req.Reason)
	w.WriteHeader(http.StatusNoContent)
}

// handlePreflight answers a browser's CORS preflight for the JSON dial
// endpoints, from an origin some source allows.
func (rl *Relay) handlePreflight(w http.ResponseWriter, r *http.Request) {
	rl.Access.PreflightAny(w, r)
}

// handleSession sets the signed cookie that tells GET /dial which agent
// uses this browser. The bridge calls it, with the source token and
// credentials, when its commands stream opens.
func (rl *Relay) handleSession(w http.ResponseWriter, r *http.Request) {
	agent := r.PathValue("agent")
	if agent == "" || len(agent) > 200 || !utf8.ValidString(agent) {
		httpjson.Error(w, http.StatusBadRequest, "the agent id in the path must be 1 to 200 bytes of UTF-8")
		return
	}
	if !rl.Access.AuthorizeAny(w, r, bearer(r, "")) {
		return
	}
	if r.Header.Get("Origin") != "" {
		w.Header().Set("Access-Control-Allow-Credentials", "true")
	}
	cookie := &http.Cookie{Name: cookieName, Value: signAgent(rl.key, agent, rl.Now().Add(cookieLife)),
		Path: "/", MaxAge: int(cookieLife / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		// The desktop's site may differ from the daemon's: only a
		// SameSite=None cookie is kept from its request, and only over TLS.
		cookie.Secure, cookie.SameSite = true, http.SameSiteNoneMode
	}
	http.SetCookie(w, cookie)
	w.WriteHeader(http.StatusNoContent)
}

// handleSessionPreflight answers the preflight of the bridge's credentialed
// session request.
func (rl *Relay) handleSessionPreflight(w http.ResponseWriter, r *http.Request) {
	if rl.Access.OriginAllowed(r.Header.Get("Origin")) {
		w.Header().Set("Access-Control-Allow-Credentials", "true")
	}
	rl.Access.PreflightAny(w, r)
}

// cookieAgent is the agent the request's valid cookie names, or "".
func (rl *Relay) cookieAgent(r *http.Request) string {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	agent, _ := verifyAgent(rl.key, ck.Value, rl.Now())
	return agent
}
