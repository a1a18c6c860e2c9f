// Package cometd is a minimal CometD (Bayeux 1.0) long-polling client, the
// transport of Genesys Web Services notifications.
//
// A Client handshakes, subscribes to its channels, keeps exactly one
// /meta/connect outstanding and hands every data message to its Handler,
// one at a time, in the order the server sent them. It obeys the server's
// advice (reconnect "retry", "handshake" or "none"; interval; timeout),
// handshakes again and re-subscribes every channel when the server has
// forgotten the session (402::session_unknown, a server restart), and backs
// off exponentially, with jitter, on transport errors. Close sends
// /meta/disconnect.
//
// Delivery: plain Bayeux long-polling has no acknowledgement (the optional
// ack extension is not offered by GWS), so a message the Handler could not
// take cannot be fetched again. The Client therefore retries a failing
// Handler a bounded number of times, in memory, before it reads on; the
// retries are kept well under CometD's default maxInterval (10 s) so that
// the server keeps the session, and its queued messages, meanwhile. A
// message still refused after that is dropped, logged and counted in
// Status.Dropped. Messages published while the client has no session (the
// server was down, or restarted before the client re-subscribed) are never
// delivered to it: that is Bayeux, not this client.
package cometd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Handler receives one data message. It returns an error when it could not
// take the message; the Client then retries it (see the package doc).
type Handler func(ctx context.Context, channel string, data json.RawMessage) error

// Config configures a Client. Zero durations and counts take the defaults
// given for each field.
type Config struct {
	// URL is the CometD endpoint, such as https://gws.example.com/genesys/cometd.
	URL string
	// Username and Password, when Username is set, go as HTTP Basic auth
	// with every request. The password is never logged.
	Username, Password string
	// Channels are subscribed after every handshake.
	Channels []string
	// Handler receives the data messages of every channel.
	Handler Handler
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// RequestTimeout bounds a request; a /meta/connect gets the server's
	// advice.timeout on top, since the server holds it that long.
	// Default 15s.
	RequestTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait after a failed exchange: it
	// doubles from BackoffMin up to BackoffMax, and a random part (up to
	// half) is taken off. Defaults 500ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// HandlerAttempts is how many times a message is given to a failing
	// Handler before it is dropped. Default 5.
	HandlerAttempts int
	// HandlerBackoff is the wait before the first retry of a message; it
	// doubles after each. Default 200ms: with the default attempts, a
	// message is retried for 3 s in all.
	HandlerBackoff time.Duration
	// Transport carries the requests. Default: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
}

// Status is a Client's health.
type Status struct {
	// State is "connecting" (handshaking or subscribing), "connected"
	// (long-polling), "retrying" (the last exchange failed; waiting to try
	// again) or "stopped" (closed, or told "reconnect: none" by the server).
	State     string `json:"state"`
	Connected bool   `json:"connected"`
	// LastConnect is when a /meta/connect last succeeded.
	LastConnect time.Time `json:"lastConnect,omitzero"`
	// LastError is the last failure, kept after recovery; LastErrorAt says
	// when it happened.
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// Handshakes counts successful handshakes: more than one means the
	// session was lost and set up again.
	Handshakes int64 `json:"handshakes"`
	// Received counts data messages; Dropped those the Handler never took.
	Received int64 `json:"received"`
	Dropped  int64 `json:"dropped"`
}

// Client is a CometD long-polling client. Create it with New, start it with
// Open and stop it with Close.
type Client struct {
	cfg  Config
	log  *slog.Logger
	http *http.Client

	// Owned by the run goroutine.
	clientID string
	advice   advice
	nextID   int
	// rehandshook is set when a lost session was answered by an immediate
	// handshake, and cleared by the next successful connect.
	rehandshook  bool
	firstConnect bool // the next connect is the session's first

	stopping chan struct{} // closed by Close: finish gracefully
	stopOnce sync.Once
	cancel   context.CancelFunc // hard stop: aborts requests and retries
	done     chan struct{}

	mu     sync.Mutex
	status Status
}

// New returns a Client for cfg. It does nothing until Open.
func New(cfg Config) *Client {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	setDefault(&cfg.RequestTimeout, 15*time.Second)
	setDefault(&cfg.BackoffMin, 500*time.Millisecond)
	setDefault(&cfg.BackoffMax, 30*time.Second)
	setDefault(&cfg.HandlerAttempts, 5)
	setDefault(&cfg.HandlerBackoff, 200*time.Millisecond)
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &Client{cfg: cfg, log: cfg.Logger, status: Status{State: "stopped"}}
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Open checks the configuration and starts the client in the background.
// It does not wait for the server: a server that is down is retried, and
// Status tells how it goes.
func (c *Client) Open() error {
	u, err := url.Parse(c.cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("cometd: want an http or https URL, got %q", redact(c.cfg.URL))
	}
	if len(c.cfg.Channels) == 0 {
		return errors.New("cometd: no channels to subscribe to")
	}
	if c.cfg.Handler == nil {
		return errors.New("cometd: no handler")
	}
	if c.done != nil {
		return errors.New("cometd: already open")
	}
	jar, _ := cookiejar.New(nil) // never fails without options
	c.http = &http.Client{Transport: c.cfg.Transport, Jar: jar}
	c.advice = advice{Reconnect: "retry"}
	c.stopping = make(chan struct{})
	c.done = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.setState("connecting", "")
	go c.run(ctx)
	return nil
}

// Close stops the client: it sends /meta/disconnect, which also ends the
// outstanding /meta/connect, hands the messages that come with it to the
// Handler, and returns. When ctx ends first, requests and Handler retries
// in progress are abandoned.
func (c *Client) Close(ctx context.Context) error {
	if c.done == nil {
		return nil
	}
	c.stopOnce.Do(func() { close(c.stopping) })
	var err error
	select {
	case <-c.done:
	case <-ctx.Done():
		c.cancel()
		<-c.done
		err = fmt.Errorf("cometd: stopped before a clean disconnect: %w", ctx.Err())
	}
	c.cancel()
	c.http.CloseIdleConnections()
	return err
}

// Status returns the client's health.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// advice is the server's reconnect advice; times are in milliseconds.
type advice struct {
	Reconnect string `json:"reconnect,omitempty"`
	Interval  *int64 `json:"interval,omitempty"`
	Timeout   *int64 `json:"timeout,omitempty"`
}

func (a advice) interval() time.Duration { return ms(a.Interval) }
func (a advice) timeout() time.Duration  { return ms(a.Timeout) }

func ms(p *int64) time.Duration {
	if p == nil || *p < 0 {
		return 0
	}
	return time.Duration(*p) * time.Millisecond
}

// message is a Bayeux message, sent or received.
type message struct {
	Channel                  string          `json:"channel"`
	ID                       string          `json:"id,omitempty"`
	ClientID                 string          `json:"clientId,omitempty"`
	Version                  string          `json:"version,omitempty"`
	MinimumVersion           string          `json:"minimumVersion,omitempty"`
	SupportedConnectionTypes []string        `json:"supportedConnectionTypes,omitempty"`
	ConnectionType           string          `json:"connectionType,omitempty"`
	Subscription             json.RawMessage `json:"subscription,omitempty"`
	Advice                   *advice         `json:"advice,omitempty"`
	Data                     json.RawMessage `json:"data,omitempty"`
	Successful               *bool           `json:"successful,omitempty"`
	Error                    string          `json:"error,omitempty"`
}

func (m message) ok() bool { return m.Successful != nil && *m.Successful }

// newMessage returns a message on channel with the next id and the
// session's clientId.
func (c *Client) newMessage(channel string) message {
	c.nextID++
	return message{Channel: channel, ID: strconv.Itoa(c.nextID), ClientID: c.clientID}
}

// exchange posts msgs and returns the server's answer. Data messages in it
// are handed to the Handler before exchange returns (they may come with any
// reply); the meta replies are returned. extra lengthens the request
// timeout, for a /meta/connect the server holds.
func (c *Client) exchange(ctx context.Context, extra time.Duration, msgs ...message) ([]message, error) {
	replies, data, err := c.post(ctx, extra, msgs)
	c.handle(ctx, data)
	return replies, err
}

// post sends msgs and splits the answer into meta replies and data
// messages.
func (c *Client) post(ctx context.Context, extra time.Duration, msgs []message) (replies, data []message, err error) {
	body, err := json.Marshal(msgs)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout+extra)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	if c.cfg.Username != "" {
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err // net/http strips any password from the URL in the error
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s reply: %w", msgs[0].Channel, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s: HTTP %s", msgs[0].Channel, resp.Status)
	}
	var all []message
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, nil, fmt.Errorf("%s: reply is not a Bayeux message array: %w", msgs[0].Channel, err)
	}
	for _, m := range all {
		if strings.HasPrefix(m.Channel, "/meta/") {
			replies = append(replies, m)
		} else if m.Data != nil {
			data = append(data, m)
		}
	}
	return replies, data, nil
}

// reply finds the reply to sent among replies.
func reply(replies []message, sent message) (message, error) {
	for _, r := range replies {
		if r.Channel == sent.Channel && (r.ID == sent.ID || r.ID == "") {
			return r, nil
		}
	}
	return message{}, fmt.Errorf("%s: no reply from the server", sent.Channel)
}

// handle gives each data message to the Handler, retrying a failing one
// (see the package doc). Only a hard stop cuts the retries short.
func (c *Client) handle(ctx context.Context, data []message) {
	for _, m := range data {
		c.update(func(s *Status) { s.Received++ })
		wait := c.cfg.HandlerBackoff
		for attempt := 1; ; attempt++ {
			err := c.cfg.Handler(ctx, m.Channel, m.Data)
			if err == nil {
				break
			}
			if attempt >= c.cfg.HandlerAttempts || ctx.Err() != nil {
				c.log.Error("message dropped: the handler refused it every time", "channel", m.Channel,
					"bytes", len(m.Data), "attempts", attempt, "err", err)
				c.update(func(s *Status) { s.Dropped++ })
				break
			}
			c.log.Warn("handler failed; retrying the message", "channel", m.Channel, "attempt", attempt,
				"retry_in", wait, "err", err)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
			wait *= 2
		}
	}
}

// errStop is a server's "reconnect: none": the client stops.
var errStop = errors.New("the server advised not to reconnect")

// errUnknownSession is a reply telling that the server does not know the
// session (402::session_unknown, or advice "handshake").
var errUnknownSession = errors.New("session unknown to the server")

// step is what the run loop does next.
type step int

const (
	stepHandshake step = iota
	stepConnect
	stepStop
)

// run drives the session until Close, or until the server says
// "reconnect: none".
func (c *Client) run(ctx context.Context) {
	defer close(c.done)
	next, failures := stepHandshake, 0
	for next != stepStop && !c.isStopping() {
		var err error
		did := next
		if did == stepHandshake {
			next, err = c.handshake(ctx)
		} else {
			next, err = c.connect(ctx)
		}
		var wait time.Duration
		switch {
		case err == nil:
			wait = c.advice.interval()
			if did == stepConnect {
				failures, c.rehandshook = 0, false
			}
		case errors.Is(err, errStop):
			c.log.Error("cometd stopped", "url", redact(c.cfg.URL), "err", err)
			c.setState("stopped", err.Error())
			next = stepStop
		case errors.Is(err, errUnknownSession) && !c.rehandshook:
			// The normal way back after a server restart: handshake again
			// at once (the advice interval is 0). Only once in a row: a
			// server that keeps forgetting the session gets the backoff.
			c.rehandshook = true
			c.log.Info("cometd session lost; handshaking again", "url", redact(c.cfg.URL), "err", err)
			c.setState("connecting", err.Error())
			wait = c.advice.interval()
		default:
			failures++
			wait = max(c.advice.interval(), backoff(c.cfg.BackoffMin, c.cfg.BackoffMax, failures, rand.Float64()))
			c.log.Warn("cometd exchange failed; retrying", "url", redact(c.cfg.URL), "retry_in", wait, "err", err)
			c.setState("retrying", err.Error())
		}
		if next != stepStop && !c.sleep(ctx, wait) {
			break
		}
	}
	c.disconnect(ctx)
	c.setState("stopped", "")
}

// isStopping reports whether Close was called.
func (c *Client) isStopping() bool {
	select {
	case <-c.stopping:
		return true
	default:
		return false
	}
}

// sleep waits d, and reports false when the client is stopping instead.
func (c *Client) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return !c.isStopping()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stopping:
		return false
	case <-ctx.Done():
		return false
	}
}

// backoff is the wait after the nth failure in a row: lo doubled n-1
// times, capped at hi, less a random part of up to half (r in [0,1)).
func backoff(lo, hi time.Duration, n int, r float64) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d - time.Duration(r*float64(d/2))
}

// handshake starts a session and subscribes the channels.
func (c *Client) handshake(ctx context.Context) (step, error) {
	c.clientID = ""
	c.setState("connecting", "")
	hs := c.newMessage("/meta/handshake")
	hs.Version, hs.MinimumVersion = "1.0", "1.0"
	hs.SupportedConnectionTypes = []string{"long-polling"}
	replies, err := c.exchange(ctx, 0, hs)
	if err != nil {
		return stepHandshake, err
	}
	r, err := reply(replies, hs)
	if err != nil {
		return stepHandshake, err
	}
	c.takeAdvice(r)
	if !r.ok() || r.ClientID == "" {
		err := fmt.Errorf("handshake refused: %s", cmpOr(r.Error, "no reason given"))
		if c.advice.Reconnect == "none" {
			return stepStop, fmt.Errorf("%w: %w", errStop, err)
		}
		return stepHandshake, err
	}
	if !supportsLongPolling(r.SupportedConnectionTypes) {
		return stepHandshake, fmt.Errorf("handshake: the server does not offer long-polling (offers %v)", r.SupportedConnectionTypes)
	}
	c.clientID, c.firstConnect = r.ClientID, true
	c.update(func(s *Status) { s.Handshakes++ })

	subs := make([]message, len(c.cfg.Channels))
	for i, ch := range c.cfg.Channels {
		subs[i] = c.newMessage("/meta/subscribe")
		subs[i].Subscription, _ = json.Marshal(ch)
	}
	replies, err = c.exchange(ctx, 0, subs...)
	if err != nil {
		return stepHandshake, fmt.Errorf("subscribe: %w", err)
	}
	for i, sub := range subs {
		r, err := reply(replies, sub)
		if err != nil {
			return stepHandshake, err
		}
		if !r.ok() {
			if strings.HasPrefix(r.Error, "402") {
				return stepHandshake, fmt.Errorf("subscribe %s: %w: %s", c.cfg.Channels[i], errUnknownSession, r.Error)
			}
			return stepHandshake, fmt.Errorf("subscribe %s refused: %s", c.cfg.Channels[i], cmpOr(r.Error, "no reason given"))
		}
	}
	c.log.Info("cometd subscribed", "url", redact(c.cfg.URL), "channels", c.cfg.Channels)
	return stepConnect, nil
}

// connect sends the one outstanding /meta/connect and waits for the server
// to answer it: with messages, or at the end of advice.timeout. Close
// interrupts the wait by sending /meta/disconnect, which makes the server
// answer the held connect with the messages it has queued.
func (c *Client) connect(ctx context.Context) (step, error) {
	cn := c.newMessage("/meta/connect")
	cn.ConnectionType = "long-polling"
	hold := c.advice.timeout()
	if c.firstConnect {
		// The first connect of a session is answered at once, as the
		// CometD clients do it: the client is connected from then on.
		var zero int64
		cn.Advice, hold, c.firstConnect = &advice{Timeout: &zero}, 0, false
	}
	type result struct {
		replies, data []message
		err           error
	}
	done := make(chan result, 1)
	go func() {
		r, d, err := c.post(ctx, hold, []message{cn})
		done <- result{r, d, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-c.stopping:
		dc := c.disconnectMessage()
		dreplies, ddata, derr := c.post(ctx, 0, []message{dc})
		res = <-done
		c.handle(ctx, res.data)
		c.handle(ctx, ddata)
		c.afterDisconnect(dc, dreplies, derr)
		return stepStop, nil
	}
	c.handle(ctx, res.data)
	if res.err != nil {
		c.update(func(s *Status) { s.Connected = false })
		return stepConnect, res.err
	}
	r, err := reply(res.replies, cn)
	if err != nil {
		return stepConnect, err
	}
	c.takeAdvice(r)
	if !r.ok() {
		err := fmt.Errorf("connect refused: %s", cmpOr(r.Error, "no reason given"))
		switch {
		case c.advice.Reconnect == "none":
			return stepStop, fmt.Errorf("%w: %w", errStop, err)
		case c.advice.Reconnect == "handshake" || strings.HasPrefix(r.Error, "402"):
			return stepHandshake, fmt.Errorf("%w: %w", errUnknownSession, err)
		}
		return stepConnect, err
	}
	now := time.Now()
	c.mu.Lock()
	if !c.status.Connected {
		c.log.Info("cometd connected", "url", redact(c.cfg.URL))
	}
	c.status.State, c.status.Connected, c.status.LastConnect = "connected", true, now
	c.mu.Unlock()
	switch c.advice.Reconnect {
	case "none":
		return stepStop, errStop
	case "handshake":
		return stepHandshake, nil
	}
	return stepConnect, nil
}

func (c *Client) disconnectMessage() message {
	m := c.newMessage("/meta/disconnect")
	c.clientID = ""
	return m
}

// disconnect ends the session, if there is one.
func (c *Client) disconnect(ctx context.Context) {
	if c.clientID == "" {
		return
	}
	dc := c.disconnectMessage()
	replies, err := c.exchange(ctx, 0, dc)
	c.afterDisconnect(dc, replies, err)
}

func (c *Client) afterDisconnect(sent message, replies []message, err error) {
	if err == nil {
		_, err = reply(replies, sent)
	}
	if err != nil {
		c.log.Warn("cometd disconnect failed; the server will expire the session", "url", redact(c.cfg.URL), "err", err)
		return
	}
	c.log.Info("cometd disconnected", "url", redact(c.cfg.URL))
}

// takeAdvice keeps the advice fields r carries.
func (c *Client) takeAdvice(r message) {
	if r.Advice == nil {
		return
	}
	if r.Advice.Reconnect != "" {
		c.advice.Reconnect = r.Advice.Reconnect
	}
	if r.Advice.Interval != nil {
		c.advice.Interval = r.Advice.Interval
	}
	if r.Advice.Timeout != nil {
		c.advice.Timeout = r.Advice.Timeout
	}
}

// setState records the state and, when msg is set, the error that led
// to it.
func (c *Client) setState(state, msg string) {
	c.update(func(s *Status) {
		s.State, s.Connected = state, state == "connected"
		if msg != "" {
			s.LastError, s.LastErrorAt = msg, time.Now()
		}
	})
}

func (c *Client) update(f func(*Status)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.status)
}

func supportsLongPolling(types []string) bool {
	for _, t := range types {
		if t == "long-polling" {
			return true
		}
	}
	return len(types) == 0
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// redact returns u without any password in it.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}
