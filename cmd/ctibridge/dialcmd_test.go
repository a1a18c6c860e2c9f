package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestDialCommand_Refusals: `ctibridge dial` says what is wrong with its
// flags, and what the daemon refused. (Its success, a desktop dialing, is
// in the browser tests: testBridgeDial.)
func TestDialCommand_Refusals(t *testing.T) {
	cfg := commandsConfig(t, "https://crm.example", "tok-five9")
	d := &restartable{cfg: cfg}
	d.start(t)
	t.Cleanup(func() { d.stop(t) })
	path := writeConfigWith(t, t.TempDir(), bridgeMapping, `
[targets.crm]
type = "webhook"
url = "http://127.0.0.1:1/"
secret = "${CRM_SECRET}"

[sources.five9]
token = "tok-five9"
`)
	env := append([]string{"CTIBRIDGE_SERVER__LISTEN=" + d.addr}, testEnviron...)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"NoAgent", []string{"--to", "+14155550100"}, "--agent and --to are required"},
		{"BadObject", []string{"--agent", "jdoe", "--to", "+14155550100", "--object", "003X"}, "--object: want Type:ID"},
		{"BadNumber", []string{"--agent", "jdoe", "--to", "abc"}, `refused (400): to: "abc" is not a phone number`},
		{"NotConnected", []string{"--agent", "jdoe", "--to", "+14155550100"}, `refused (409): agent "jdoe" has no desktop connected`},
	} {
		var out bytes.Buffer
		code := run(context.Background(), append([]string{"dial", "--config", path}, tt.args...), &out, &out, env)
		if code != 1 || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%s: ctibridge dial = %d %q, want 1 with %q", tt.name, code, out.String(), tt.want)
		}
	}
}
