package mapping_test

import (
	"errors"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/mapping"
)

const eachRules = `
[[rule]]
name   = "salesforce-calls"
target = "salesforce"
object = "Task"
[rule.fields]
Subject = '"Call " + id'

[[rule]]
name   = "hubspot-calls"
target = "hubspot"
object = "calls"
[rule.fields]
hs_timestamp = { expr = 'string(start.UnixMilli())', required = true }

[[rule]]
name   = "bad-when"
target = "hubspot"
object = "calls"
when   = 'attached.flag.on'
[rule.fields]
x = 'id'

[[rule]]
name   = "chats"
target = "zendesk"
object = "ticket"
when   = 'channel == "chat"'
[rule.fields]
subject = 'id'

[[rule]]
name   = "zendesk-calls"
target = "zendesk"
object = "call"
[rule.fields]
agent = 'agent.id'
`

// TestApplyEach: one rule that cannot map the interaction (HubSpot's
// timestamp of a call with no start) does not keep the other rules'
// records back; Apply, all or nothing, still fails as a whole.
func TestApplyEach(t *testing.T) {
	s, err := mapping.Load([]mapping.File{{Name: "m.toml", Data: []byte(eachRules)}},
		mapping.Options{Targets: []string{"salesforce", "hubspot", "zendesk"}})
	if err != nil {
		t.Fatal(err)
	}
	in := &connector.Interaction{Platform: "five9", ID: "i1", Leg: "1001", Channel: "voice", Agent: connector.Agent{ID: "1001"}}

	if acts, err := s.Apply(in); acts != nil || err == nil {
		t.Errorf("Apply = %v, %v; want all or nothing", acts, err)
	}

	outs, err := s.ApplyEach(in)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		rule, target, key string
		failed            bool
	}
	want := []got{
		{"salesforce-calls", "salesforce", "five9:i1:1001:salesforce-calls", false},
		{"hubspot-calls", "hubspot", "", true},
		{"bad-when", "hubspot", "", true},
		{"zendesk-calls", "zendesk", "five9:i1:1001:zendesk-calls", false},
	}
	if len(outs) != len(want) {
		t.Fatalf("%d outcomes, want %d (the chat rule does not match): %+v", len(outs), len(want), outs)
	}
	for i, w := range want {
		o := outs[i]
		g := got{o.Rule, o.Target, o.Activity.Key, o.Err != nil}
		if g != w {
			t.Errorf("outcome %d = %+v, want %+v", i, g, w)
		}
		var re *mapping.RuleError
		if w.failed && (!errors.As(o.Err, &re) || re.Rule != w.rule) {
			t.Errorf("outcome %d: error %v, want a *RuleError of %s", i, o.Err, w.rule)
		}
	}
	if outs[0].Activity.Fields["Subject"] != "Call i1" {
		t.Errorf("salesforce activity = %+v", outs[0].Activity)
	}

	// A remap of the failed rules runs those only.
	again, err := s.ApplyEach(in, "hubspot-calls", "renamed-since")
	if err != nil || len(again) != 1 || again[0].Rule != "hubspot-calls" || again[0].Err == nil {
		t.Errorf("ApplyEach(hubspot-calls) = %+v, %v", again, err)
	}
	if _, err := s.ApplyEach(nil); err == nil {
		t.Error("ApplyEach(nil) did not fail")
	}
}

// TestDefaultKey_Legs: the agents' legs of one transferred call share its
// id, and get records of their own; an interaction without a leg keeps the
// key it always had.
func TestDefaultKey_Legs(t *testing.T) {
	a := &connector.Interaction{Platform: "genesys", ID: "CU1", Leg: "ann"}
	b := &connector.Interaction{Platform: "genesys", ID: "CU1", Leg: "bob"}
	none := &connector.Interaction{Platform: "genesys", ID: "CU1"}
	if ka, kb := mapping.DefaultKey(a, "r"), mapping.DefaultKey(b, "r"); ka == kb || ka != "genesys:CU1:ann:r" {
		t.Errorf("keys %q and %q, want genesys:CU1:ann:r and genesys:CU1:bob:r", ka, kb)
	}
	if k := mapping.DefaultKey(none, "r"); k != "genesys:CU1:r" {
		t.Errorf("key %q, want genesys:CU1:r", k)
	}
}
