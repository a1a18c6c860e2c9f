package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/dial"
)

// runDial runs `ctibridge dial`: it asks the running daemon (the config's
// server.listen) to dial, as a CRM page would, and follows the dial until
// the agent's desktop says it is dialing or why not.
func runDial(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	fs := newFlagSet("dial")
	configPath := fs.String("config", "", "TOML config `file` of the running daemon (default: embedded defaults)")
	agent := fs.String("agent", "", "the `agent` whose desktop dials")
	to := fs.String("to", "", "the `number` to dial")
	object := fs.String("object", "", "the CRM record to log the call against, `Type:ID`")
	name := fs.String("name", "", "the record's `name`")
	wait := fs.Duration("wait", 15*time.Second, "how long to follow the dial")
	if _, err := parseFlags(fs, args, "--agent A --to N [--object Type:ID] [--name NAME] [--config FILE]", stdout); err != nil {
		return err
	}
	if *agent == "" || *to == "" {
		return errors.New("dial: --agent and --to are required")
	}
	req := dial.Request{Agent: *agent, To: *to}
	if *object != "" {
		typ, id, ok := strings.Cut(*object, ":")
		if !ok || typ == "" || id == "" {
			return fmt.Errorf("dial: --object: want Type:ID, got %q", *object)
		}
		req.Object = &dial.CRMObject{Type: typ, ID: id, Name: *name, IsWhat: dial.IsWhat(typ)}
	}
	cfg, err := config.Load(*configPath, environ)
	if err != nil {
		return err
	}
	base := "http://" + dialAddr(cfg.Server.Listen)
	token := ""
	for _, a := range cfg.SourceAuths() {
		if a.Token != "" {
			token = a.Token
			break
		}
	}
	body, _ := json.Marshal(req)
	var placed struct {
		ID    string `json:"id"`
		To    string `json:"to"`
		Error string `json:"error"`
	}
	status, err := dialRequest(ctx, http.MethodPost, base+"/v1/dial", token, body, &placed)
	if err != nil {
		return fmt.Errorf("dial: is the daemon running on %s? %w", base, err)
	}
	if status != http.StatusAccepted {
		return fmt.Errorf("dial: refused (%d): %s", status, placed.Error)
	}
	fmt.Fprintf(stdout, "dial %s: %s sent to %s's desktop\n", placed.ID, placed.To, *agent)
	deadline := time.Now().Add(*wait)
	last := ""
	for {
		var c dial.Command
		if _, err := dialRequest(ctx, http.MethodGet, base+"/v1/dial/"+placed.ID, "", nil, &c); err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		if c.State != last {
			last = c.State
			switch c.State {
			case dial.StateAccepted:
				fmt.Fprintln(stdout, "accepted: a desktop tab took it")
			case dial.StateDialing:
				fmt.Fprintf(stdout, "dialing: %s\n", c.To)
				return nil
			case dial.StateFailed, dial.StateExpired:
				return fmt.Errorf("dial: %s: %s", c.State, c.Reason)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dial: still %s after %s", c.State, *wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dialAddr is where a client reaches a daemon listening on listen: a
// wildcard host is reached on loopback.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// dialRequest sends one request to the daemon and decodes its JSON answer
// into out.
func dialRequest(ctx context.Context, method, url, token string, body []byte, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %d, not JSON: %w", method, url, resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}
