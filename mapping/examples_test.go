package mapping_test

import (
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/brightpattern"
	"github.com/ctibridge/ctibridge/connector/five9"
	"github.com/ctibridge/ctibridge/connector/genesys"
	"github.com/ctibridge/ctibridge/mapping"
)

// loadExamples loads the shipped example mappings with the targets and
// region of the shipped example configuration.
func loadExamples(t *testing.T) *mapping.Set {
	t.Helper()
	b, err := os.ReadFile("../examples/ctibridge.toml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Targets map[string]any `toml:"targets"`
		Mapping struct {
			DefaultRegion string `toml:"default_region"`
		} `toml:"mapping"`
	}
	if err := toml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for name := range cfg.Targets {
		targets = append(targets, name)
	}
	sort.Strings(targets)
	if len(targets) < 6 {
		t.Fatalf("examples/ctibridge.toml has targets %v", targets)
	}
	s, err := mapping.LoadDir("../examples/mappings", mapping.Options{Targets: targets, DefaultRegion: cfg.Mapping.DefaultRegion})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// smallestCalls are the smallest calls each platform may report, decoded by
// the platforms' own decoders: Bright Pattern with the required members of
// InteractionData only; a Five9 callEnded and callFinished with the
// interaction id only; a Genesys MARKDONE_APPLY with nothing before it.
// None carries a time.
func smallestCalls(t *testing.T) map[string]*connector.Interaction {
	t.Helper()
	clock := func() time.Time { return time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) }
	out := map[string]*connector.Interaction{}

	ev, err := brightpattern.Decoder{Now: clock}.Decode([]byte(`{"event":"ON_SAVE_ACTIVITY_RECORD","data":{"interactionId":"bp1","state":"completed","type":"voice","subject":"","associatedObjects":{},"callParties":[],"callMuted":false,"callRecording":false,"attachedData":{}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	out["brightpattern"] = ev.Interaction

	states := map[string][]byte{}
	for _, body := range []string{
		`{"event":"callEnded","params":{"callData":{"interactionId":"f9"}}}`,
		`{"event":"callFinished","params":{"callData":{"interactionId":"f9"}}}`,
	} {
		ev, err := five9.Decoder{Now: clock}.Decode([]byte(body), func(k string) ([]byte, error) { return states[k], nil })
		if err != nil {
			t.Fatal(err)
		}
		states[ev.StateKey] = ev.State
		out["five9"] = ev.Interaction
	}

	ev, err = genesys.Decoder{Now: clock}.Decode([]byte(`{"event":"interaction","data":{"eventType":"MARKDONE_APPLY","interaction":{"callUuid":"g1","state":"IDLE"}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	out["genesys"] = ev.Interaction
	for p, in := range out {
		if in == nil {
			t.Fatalf("%s: no interaction", p)
		}
	}
	return out
}

// TestExamples_SmallestCalls: the shipped mappings make a record of the
// smallest call of every platform for every CRM that logs a call by
// itself, and no rule fails on one. Zendesk's Talk call needs both numbers
// and its note a ticket, ServiceNow's note an incident or case: a call
// without them gives those rules nothing to write, which is not a failure.
func TestExamples_SmallestCalls(t *testing.T) {
	s := loadExamples(t)
	for platform, in := range smallestCalls(t) {
		outs, err := s.ApplyEach(in)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range outs {
			if o.Err != nil {
				t.Errorf("%s: rule %s fails: %v", platform, o.Rule, o.Err)
				continue
			}
			got = append(got, o.Target)
		}
		for _, target := range []string{"salesforce", "hubspot", "dynamics", "webhook"} {
			if !slices.Contains(got, target) {
				t.Errorf("%s: no record for %s (records for %v)", platform, target, got)
			}
		}
	}
}

// TestExamples_Five9Number: Five9's one number reaches the CRMs that read
// ani or dnis.
func TestExamples_Five9Number(t *testing.T) {
	s := loadExamples(t)
	ev, err := five9.Decoder{}.Decode([]byte(`{"event":"callFinished","params":{"callData":{"interactionId":"f9","callType":"INBOUND","number":"4155550142"}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	outs, err := s.ApplyEach(ev.Interaction)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Target == "hubspot" && o.Activity.Fields["hs_call_from_number"] != "+14155550142" {
			t.Errorf("hubspot: from number %v, want +14155550142", o.Activity.Fields["hs_call_from_number"])
		}
	}
}

// TestExamples_Schemas: the shipped mappings fit the shipped schema
// snapshots of Salesforce's Task and HubSpot's calls, as `ctibridge
// mapping check --config examples/ctibridge.toml` checks them.
func TestExamples_Schemas(t *testing.T) {
	s := loadExamples(t)
	schemas, err := mapping.LoadSchemas("../examples/mappings")
	if err != nil {
		t.Fatal(err)
	}
	if got := schemas.Names(); !slices.Equal(got, []string{"hubspot.calls", "salesforce.Task"}) {
		t.Fatalf("shipped schemas %v, want hubspot.calls and salesforce.Task", got)
	}
	if ps := s.CheckSchemas(schemas); len(ps) > 0 {
		t.Errorf("the example mappings do not fit the shipped schemas:\n%v", ps)
	}
	for _, obj := range [][2]string{{"salesforce", "Task"}, {"hubspot", "calls"}} {
		if objs := s.Objects(obj[0]); !slices.Contains(objs, obj[1]) {
			t.Errorf("no example rule writes %s %s (objects %v): the schema checks nothing", obj[0], obj[1], objs)
		}
	}
}
