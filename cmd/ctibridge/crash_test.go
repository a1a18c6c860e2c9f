package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// child is the daemon running as a separate process.
type child struct {
	cmd    *exec.Cmd
	addr   string
	log    *bytes.Buffer // read it only after exited is closed
	exited chan struct{}
}

var addrLine = regexp.MustCompile(`msg="ctibridge serving" addr=(\S+)`)

// startChild runs `ctibridge serve --config path` in a child process and
// waits until it listens.
func startChild(tb testing.TB, path string, environ ...string) *child {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TEST_CTIBRIDGE_CHILD=1", "TEST_CTIBRIDGE_ARGS=serve --config "+path)
	cmd.Env = append(append(cmd.Env, testEnviron...), environ...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &child{cmd: cmd, log: new(bytes.Buffer), exited: make(chan struct{})}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		defer close(c.exited)
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			c.log.WriteString(s.Text() + "\n")
			if m := addrLine.FindStringSubmatch(s.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case c.addr = <-found:
		return c
	case <-c.exited:
		tb.Fatalf("child daemon exited before listening:\n%s", c.log)
	case <-time.After(20 * time.Second):
		tb.Fatalf("child daemon did not start listening")
	}
	return nil
}

// TestServe_AcknowledgedEventsSurviveKill posts events to a child daemon
// while a slow CRM takes them, kills the daemon with SIGKILL mid-stream
// several times, restarts it, and checks that every event acknowledged with
// 202 reaches the CRM, and that no idempotency key reached it as two
// different records.
func TestServe_AcknowledgedEventsSurviveKill(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	// Slow enough that a backlog builds up and deliveries are in flight
	// at each kill.
	crm.Respond(func(connectortest.Request) connectortest.Response {
		return connectortest.Response{Delay: 5 * time.Millisecond}
	})
	path := writeConfig(t, t.TempDir(), crm.URL)
	acked := postThroughKills(t, path, readExample(t), callKey)

	c := startChild(t, path)
	crm.WaitAccepted(t, 30*time.Second, acked...)
	stopChild(t, c)
	if conflicts := crm.Conflicts(); len(conflicts) > 0 {
		t.Errorf("keys delivered as two different records: %v", conflicts)
	}
	t.Logf("%d events acknowledged across the kills; CRM received %d requests for %d records",
		len(acked), len(crm.Requests()), len(crm.Accepted()))
}

// TestServe_CRMRecordsSurviveKill is the crash suite against the fake of
// each CRM, with the shipped example mappings: every event acknowledged
// before a SIGKILL ends as exactly one record in the CRM.
//
// Zendesk's Talk calls are left out: Zendesk does not document that POST
// /api/v2/calls honours Idempotency-Key, so a call whose answer was lost in
// a crash may be logged twice there (the README says so); its ticket
// comments are found again by their key.
func TestServe_CRMRecordsSurviveKill(t *testing.T) {
	rules := map[string]string{"salesforce": "salesforce-calls", "hubspot": "hubspot-calls",
		"dynamics": "dynamics-phonecalls", "servicenow": "servicenow-incident-notes", "zendesk": "zendesk-talk-calls"}
	for _, c := range crmCases {
		if c.name == "zendesk" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			cs := c.start(t)
			path := writeCRMConfig(t, c.name, cs.toml)
			// An agent id that needs no escaping in Salesforce's external
			// id, so that the fake finds each record by its key.
			template := bytes.ReplaceAll(readExample(t), []byte("jane.doe"), []byte("jane_doe"))
			template = bytes.Replace(template, []byte(`[
      {"id": "0035g00000XyZ12AAB", "type": "contact", "displayName": "Maria Lopez", "displayType": "Contact", "customFields": []}
    ]`), []byte(cs.objects), 1)
			rule := rules[c.name]
			key := func(id string) string { return "brightpattern:" + id + ":jane_doe:" + rule }
			acked := postThroughKills(t, path, template, key, cs.environ...)

			ch := startChild(t, path, cs.environ...)
			waitFor(t, "a record for every acknowledged event", func() bool {
				for _, k := range acked {
					if len(cs.records(k)) == 0 {
						return false
					}
				}
				return true
			})
			stopChild(t, ch)
			for _, k := range acked {
				if n := len(cs.records(k)); n != 1 {
					t.Errorf("%s: %d records in %s, want exactly 1", k, n, c.name)
				}
			}
			t.Logf("%d events acknowledged across the kills, each one record in %s", len(acked), c.name)
		})
	}
}

// postThroughKills posts copies of template, each with its own interaction
// id, from several clients to a child daemon of the config at path, kills
// the daemon with SIGKILL mid-stream three times, and returns the keys
// (key of the interaction id) of the events it acknowledged with 202.
func postThroughKills(t *testing.T, path string, template []byte, key func(id string) string, environ ...string) []string {
	t.Helper()
	var mu sync.Mutex
	acked := map[string]bool{}
	const rounds, clients, perClient = 3, 8, 25
	for round := range rounds {
		c := startChild(t, path, environ...)
		var wg sync.WaitGroup
		for cl := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perClient {
					id := fmt.Sprintf("R%d-C%d-%03d", round, cl, i)
					body := bytes.Replace(template, []byte("7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D"), []byte(id), 1)
					resp, err := http.Post("http://"+c.addr+"/v1/events/brightpattern", "application/json", bytes.NewReader(body))
					if err != nil {
						return // the daemon was killed
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusAccepted {
						mu.Lock()
						acked[key(id)] = true
						mu.Unlock()
					}
				}
			}()
		}
		// Kill mid-stream: after a while, and once this round has had
		// some events acknowledged, however slow the machine is.
		time.Sleep(time.Duration(100+100*round) * time.Millisecond)
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= (round+1)*10 {
				break
			}
		}
		c.cmd.Process.Signal(syscall.SIGKILL)
		wg.Wait()
		c.cmd.Wait()
	}
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged before the kills")
	}
	keys := make([]string, 0, len(acked))
	for k := range acked {
		keys = append(keys, k)
	}
	return keys
}

// stopChild stops c with SIGTERM and checks that it exits cleanly.
func stopChild(t *testing.T, c *child) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	<-c.exited
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("daemon exited with %v after SIGTERM\n%s", err, c.log)
	}
}
