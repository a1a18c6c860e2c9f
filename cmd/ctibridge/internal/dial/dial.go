// Package dial is the click-to-dial relay: the bridge of each agent's
// sending tab keeps GET /v1/agents/{agent}/commands open, a Server-Sent
// Events stream, and POST /v1/dial pushes a "dial" command down it.
package dial

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/access"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/httpjson"
)

// Both endpoints belong to no platform, so they take the platform-independent
// rule: the credential is any configured source token (sources.*.token), and
// when no source has a token they are open, as the event endpoints are. A
// browser's Origin must be in some source's allowed_origins. POST /v1/dial
// takes the token as "Authorization: Bearer"; the stream takes it as
// ?token=, because EventSource cannot set headers, or as the header from
// other clients. A token in a URL can end up in proxy logs: serve the daemon
// over TLS and keep query strings out of access logs.
//
// Commands are not stored: a dial for an agent whose bridge is not
// connected is refused with 409, never replayed later. Phone number
// normalization (E.164) and rate limiting of dials are not done here yet.

// commandHeartbeat is how often an idle stream gets a comment line, so that
// proxies and load balancers do not close it.
const commandHeartbeat = 20 * time.Second

// commandBuffer bounds the commands waiting for one slow stream; beyond it
// a command is dropped for that stream (and not counted as received).
const commandBuffer = 8

// maxDialBody bounds a POST /v1/dial body.
const maxDialBody = 16 << 10

// Relay relays dial commands from CRM pages to the agents' bridges.
type Relay struct {
	// Access says who may dial and stream commands: any source's token,
	// from an origin some source allows.
	Access access.Sources
	Logger *slog.Logger

	hub *commandHub
}

// NewRelay returns a relay with no bridge connected.
func NewRelay(sources access.Sources, logger *slog.Logger) *Relay {
	return &Relay{Access: sources, Logger: logger, hub: newCommandHub()}
}

// Connected returns how many bridges are connected for agent.
func (rl *Relay) Connected(agent string) int { return rl.hub.Connected(agent) }

// Publish sends the event with data to every bridge connected for agent,
// and returns how many took it.
func (rl *Relay) Publish(agent, event string, data []byte) int {
	return rl.hub.Publish(agent, event, data)
}

// Close ends every command stream and refuses new ones: an HTTP server's
// Shutdown waits for open streams otherwise.
func (rl *Relay) Close() { rl.hub.close() }

// commandHub fans commands out to the connected bridges, by agent.
type commandHub struct {
	mu        sync.Mutex
	heartbeat time.Duration
	clients   map[string]map[*commandClient]struct{}
	done      chan struct{} // closed when the server shuts down
	closed    bool
}

type commandClient struct {
	ch        chan command
	heartbeat time.Duration
}

// command is one SSE event.
type command struct {
	event string
	data  []byte
}

func newCommandHub() *commandHub {
	return &commandHub{
		heartbeat: commandHeartbeat,
		clients:   map[string]map[*commandClient]struct{}{},
		done:      make(chan struct{}),
	}
}

// Publish sends the event with data to every bridge connected for agent,
// and returns how many took it.
func (h *commandHub) Publish(agent, event string, data []byte) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for c := range h.clients[agent] {
		select {
		case c.ch <- command{event: event, data: data}:
			n++
		default: // that stream is stuck; it will be dropped by its writer's error
		}
	}
	return n
}

// Connected returns how many bridges are connected for agent.
func (h *commandHub) Connected(agent string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients[agent])
}

// subscribe adds a stream for agent; cancel removes it. It returns nil once
// the hub is closed.
func (h *commandHub) subscribe(agent string) (c *commandClient, cancel func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, func() {}
	}
	c = &commandClient{ch: make(chan command, commandBuffer), heartbeat: h.heartbeat}
	if h.clients[agent] == nil {
		h.clients[agent] = map[*commandClient]struct{}{}
	}
	h.clients[agent][c] = struct{}{}
	return c, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.clients[agent], c)
		if len(h.clients[agent]) == 0 {
			delete(h.clients, agent)
		}
	}
}

// close ends every stream and refuses new ones.
func (h *commandHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

// HandleCommands streams an agent's commands as Server-Sent Events until
// the bridge goes away or the daemon shuts down.
func (rl *Relay) HandleCommands(w http.ResponseWriter, r *http.Request) {
	agent := r.PathValue("agent")
	if agent == "" || len(agent) > 200 || !utf8.ValidString(agent) {
		httpjson.Error(w, http.StatusBadRequest, "the agent id in the path must be 1 to 200 bytes of UTF-8")
		return
	}
	token := r.URL.Query().Get("token")
	if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		token = h
	}
	if !rl.Access.AuthorizeAny(w, r, token) {
		return
	}
	hub := rl.hub

	// A stream outlives the server's read and write timeouts.
	rc := http.NewResponseController(w)
	for _, set := range []func(time.Time) error{rc.SetReadDeadline, rc.SetWriteDeadline} {
		if err := set(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
			rl.Logger.Warn("commands stream: clearing deadline failed", "err", err)
		}
	}
	c, cancel := hub.subscribe(agent)
	defer cancel()
	if c == nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "shutting down")
		return
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// retry: a bridge reconnects 3 s after the stream ends.
	if _, err := io.WriteString(w, "retry: 3000\n: connected\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	rl.Logger.Debug("bridge connected for commands", "agent", agent)
	tick := time.NewTicker(c.heartbeat)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-hub.done:
			return
		case cmd := <-c.ch:
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", cmd.event, cmd.data)
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

// dialRequest is POST /v1/dial's body.
type dialRequest struct {
	Agent  string     `json:"agent"`
	To     string     `json:"to"`
	Object *crmObject `json:"object,omitempty"`
}

// crmObject is the record the agent clicked from, linked to the call's
// activity: the bridge passes it to the platform's dial (WWE userData,
// Five9 crmObject). IsWhat marks a record that is not a person (a case, an
// account); by default it is the "who".
type crmObject struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	IsWhat bool   `json:"isWhat,omitempty"`
}

// dialCommand is the "dial" event's data.
type dialCommand struct {
	To     string     `json:"to"`
	Object *crmObject `json:"object,omitempty"`
}

// HandleDial pushes a dial command to the agent's bridges: 202 with how
// many received it, or 409 when none is connected.
func (rl *Relay) HandleDial(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !rl.Access.AuthorizeAny(w, r, token) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDialBody))
	if err != nil {
		httpjson.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than the limit of %d bytes", maxDialBody))
		return
	}
	var req dialRequest
	if err := json.Unmarshal(body, &req); err != nil {
		httpjson.Error(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
		return
	}
	if msg := req.problem(); msg != "" {
		httpjson.Error(w, http.StatusBadRequest, msg)
		return
	}
	data, err := json.Marshal(dialCommand{To: req.To, Object: req.Object})
	if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	n := rl.hub.Publish(req.Agent, "dial", data)
	if n == 0 {
		httpjson.Error(w, http.StatusConflict, fmt.Sprintf("agent %q has no browser bridge connected; "+
			"their desktop must be open with the bridge script and data-agent=%q", req.Agent, req.Agent))
		return
	}
	rl.Logger.Info("dial sent to bridge", "agent", req.Agent, "bridges", n)
	httpjson.Write(w, http.StatusAccepted, map[string]any{"agent": req.Agent, "bridges": n})
}

// problem says what is wrong with the request, or "".
func (req dialRequest) problem() string {
	switch {
	case strings.TrimSpace(req.Agent) == "":
		return "agent: required"
	case len(req.Agent) > 200:
		return "agent: longer than 200 bytes"
	case strings.TrimSpace(req.To) == "":
		return "to: required"
	case len(req.To) > 64:
		return "to: longer than 64 bytes"
	case req.Object != nil && (req.Object.ID == "" || req.Object.Type == ""):
		return "object: type and id are required"
	case req.Object != nil && len(req.Object.Type)+len(req.Object.ID)+len(req.Object.Name) > 1000:
		return "object: longer than 1000 bytes"
	}
	return ""
}

// HandlePreflight answers a browser's CORS preflight for POST /v1/dial
// from a CRM page whose origin some source allows.
func (rl *Relay) HandlePreflight(w http.ResponseWriter, r *http.Request) {
	rl.Access.PreflightAny(w, r)
}
