package salesforce

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/connectortest"
)

func TestCheck(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	fake.SetExternalID("Call_Log__c", "LogKey__c")
	cases := []struct {
		name    string
		edit    func(*Config)
		want    []bool   // OK of each finding
		text    []string // in the finding that is not OK, or the last
		objects []string // the rules' objects; none: Config.Object
	}{
		{"good", func(*Config) {}, []bool{true, true, true, true}, []string{"API requests: 1 of 100000"}, nil},
		{"no such field", func(c *Config) { c.ExternalIDField = "Other__c" }, []bool{true, true, false, true}, []string{"external_id_field Other__c: Task has no such field"}, nil},
		{"not an external id", func(c *Config) { c.ExternalIDField = "CallObject" }, []bool{true, true, false, true}, []string{"not flagged External ID"}, nil},
		{"no such object", func(c *Config) { c.Object = "Call__c" }, []bool{true, false, true}, []string{"object Call__c", "NOT_FOUND"}, nil},
		{"refused", func(c *Config) { c.ClientSecret = "wrong" }, []bool{false}, []string{"invalid_client"}, nil},
		{"custom object", func(c *Config) { c.Object, c.ExternalIDField = "Call_Log__c", "LogKey__c" }, []bool{true, true, true, true}, []string{"API requests"}, nil},
		{"the rules' objects", func(c *Config) { c.ExternalIDField = "LogKey__c" }, []bool{true, true, false, true, true, true},
			[]string{"external_id_field LogKey__c: Task has no such field"}, []string{"Task", "Call_Log__c"}},
	}
	for _, c := range cases {
		cfg := config(fake)
		c.edit(&cfg)
		got := newTarget(t, cfg, 5*time.Second).Check(t.Context(), c.objects...)
		if len(got) != len(c.want) {
			t.Errorf("%s: %d findings %v, want %d", c.name, len(got), got, len(c.want))
			continue
		}
		var bad Finding
		for i, f := range got {
			if f.OK != c.want[i] {
				t.Errorf("%s: finding %d = %+v, want OK %t", c.name, i, f, c.want[i])
			}
			if !f.OK {
				bad = f
			}
		}
		if bad.Text == "" {
			bad = got[len(got)-1]
		}
		for _, s := range c.text {
			if !strings.Contains(bad.Text, s) {
				t.Errorf("%s: finding %q does not say %q", c.name, bad.Text, s)
			}
		}
		fake.SetUsage(0, 100000)
	}
	for _, r := range fake.Requests() {
		if r.Method != http.MethodGet {
			t.Errorf("Check sent %s %s: it must write nothing", r.Method, r.Path)
		}
	}
}

func TestDescribe(t *testing.T) {
	fake := connectortest.NewSalesforce(t)
	raw, err := newTarget(t, config(fake), 5*time.Second).Describe(t.Context(), "Task")
	if err != nil || !strings.Contains(string(raw), `{"name":"CallDurationInSeconds","type":"int"`) {
		t.Errorf("Describe = %.300s, %v", raw, err)
	}
	if _, err := newTarget(t, config(fake), 5*time.Second).Describe(t.Context(), "Nope__c"); !permanent(err) {
		t.Errorf("Describe of an unknown object = %v, want dead", err)
	}
}
