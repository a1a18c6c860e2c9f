// Package cometdtest runs a real CometD server for tests: the npm package
// cometd-nodejs-server (pinned in .ci/node/package.json) behind the harness
// connector/genesys/cometd/testdata/server.js, on 127.0.0.1.
//
// A test that needs it is skipped when node or the npm modules are missing,
// except when CI is set: there a missing peer is a broken setup and fails.
package cometdtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

// Options configure the server; zero values take the harness defaults.
type Options struct {
	// Timeout is how long the server holds a /meta/connect (advice.timeout).
	Timeout time.Duration
	// MaxInterval is how long a session lives without a /meta/connect.
	MaxInterval time.Duration
	// Auth, as "user:password", makes the server deny handshakes without
	// that Basic auth.
	Auth string
}

// Server is a running cometd-nodejs-server.
type Server struct {
	// URL is the Bayeux endpoint.
	URL string

	tb      testing.TB
	opts    Options
	node    string
	modules string
	script  string
	port    string

	mu   sync.Mutex
	proc *process
}

type process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	output *buffer
	exited chan struct{}
}

// Start runs a server on a free loopback port; it is killed when the test
// ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := &Server{tb: tb, opts: opts}
	s.node, s.modules, s.script = find(tb)
	p, port, err := s.start("0")
	if err != nil {
		tb.Fatal(err)
	}
	s.proc, s.port = p, port
	s.URL = "http://127.0.0.1:" + port + "/cometd"
	tb.Cleanup(s.Kill)
	return s
}

// skipOrFatal skips a test whose peer is missing, except in CI.
func skipOrFatal(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf(format+" (CI is set, so this cannot be skipped)", args...)
	}
	tb.Skipf(format, args...)
}

// find returns node, the node_modules holding cometd-nodejs-server and the
// harness script, found from the module root.
func find(tb testing.TB) (node, modules, script string) {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFatal(tb, "node not found on PATH: %v", err)
	}
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
	modules = filepath.Join(dir, ".ci", "node", "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "cometd-nodejs-server", "package.json")); err != nil {
		skipOrFatal(tb, "cometd-nodejs-server not installed (run npm ci --prefix .ci/node): %v", err)
	}
	return node, modules, filepath.Join(dir, "connector", "genesys", "cometd", "testdata", "server.js")
}

// start runs the harness on port and waits for it to listen.
func (s *Server) start(port string) (*process, string, error) {
	cmd := exec.Command(s.node, s.script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+s.modules, "PORT="+port)
	if s.opts.Timeout > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprint("COMETD_TIMEOUT=", s.opts.Timeout.Milliseconds()))
	}
	if s.opts.MaxInterval > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprint("COMETD_MAX_INTERVAL=", s.opts.MaxInterval.Milliseconds()))
	}
	if s.opts.Auth != "" {
		cmd.Env = append(cmd.Env, "COMETD_AUTH="+s.opts.Auth)
	}
	stdin, err := cmd.StdinPipe() // the harness exits when this closes
	if err != nil {
		return nil, "", err
	}
	p := &process{cmd: cmd, stdin: stdin, output: &buffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start node: %w", err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	deadline := time.After(15 * time.Second)
	for {
		if m := listening.FindStringSubmatch(p.output.String()); m != nil {
			return p, m[1], nil
		}
		select {
		case <-p.exited:
			return nil, "", fmt.Errorf("cometd server exited before listening: %s", p.output.String())
		case <-deadline:
			p.kill()
			return nil, "", fmt.Errorf("cometd server did not listen within 15s: %s", p.output.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// listening is the line the harness prints once it listens.
var listening = regexp.MustCompile(`(?m)^PORT (\d+)$`)

func (p *process) kill() {
	_ = p.stdin.Close()
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Kill stops the server at once, as a crash would. It may be called more
// than once.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.kill()
		if out := s.proc.output.String(); out != "" && s.tb.Failed() {
			s.tb.Logf("cometd server output:\n%s", out)
		}
		s.proc = nil
	}
}

// Restart kills the server, which forgets every session and subscription,
// and starts a new one on the same port after pause.
func (s *Server) Restart(pause time.Duration) {
	s.tb.Helper()
	s.Kill()
	time.Sleep(pause)
	var err error
	for try := 0; try < 20; try++ {
		var p *process
		if p, _, err = s.start(s.port); err == nil {
			s.mu.Lock()
			s.proc = p
			s.mu.Unlock()
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may not be free yet
	}
	s.tb.Fatalf("restart the cometd server on port %s: %v", s.port, err)
}

func (s *Server) base() string { return "http://127.0.0.1:" + s.port }

// Publish publishes data, as JSON, on channel, and returns how many
// sessions were subscribed to it.
func (s *Server) Publish(channel string, data any) int {
	s.tb.Helper()
	n, err := s.TryPublish(channel, data)
	if err != nil {
		s.tb.Fatal(err)
	}
	return n
}

// TryPublish is Publish returning its error, for use while the server may
// be down, and from other goroutines.
func (s *Server) TryPublish(channel string, data any) (int, error) {
	b, ok := data.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(data); err != nil {
			return 0, err
		}
	}
	var out struct{ Subscribers int }
	err := s.try(http.MethodPost, "/publish?channel="+url.QueryEscape(channel), b, &out)
	return out.Subscribers, err
}

// Stats is what the server saw.
type Stats struct {
	// Subscribers is the number of sessions subscribed to the channel asked.
	Subscribers int
	// Meta counts the meta messages received, by channel.
	Meta map[string]int
	// Auth is the Authorization header of every Bayeux request.
	Auth []string
}

// Stats returns what the server saw, with the subscribers of channel.
func (s *Server) Stats(channel string) Stats {
	s.tb.Helper()
	var st Stats
	s.do(http.MethodGet, "/stats?channel="+url.QueryEscape(channel), nil, &st)
	return st
}

// WaitSubscribed waits until some session is subscribed to channel.
func (s *Server) WaitSubscribed(channel string) {
	s.tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.Stats(channel).Subscribers == 0 {
		if time.Now().After(deadline) {
			s.tb.Fatalf("no session subscribed to %s within 20s", channel)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) do(method, path string, body []byte, out any) {
	s.tb.Helper()
	if err := s.try(method, path, body, out); err != nil {
		s.tb.Fatal(err)
	}
}

func (s *Server) try(method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.base()+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w: %s", method, path, err, b)
	}
	return nil
}

// buffer is a bytes.Buffer safe for concurrent use.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
