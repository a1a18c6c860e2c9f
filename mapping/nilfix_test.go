package mapping_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/mapping"
)

// reFix is the fix a run-time error suggests.
var reFix = regexp.MustCompile(`write (.+?)(?: to allow| \(mappings| \(m\.toml|$)`)

// TestRuntimeError_FixWorks: the message about a missing value suggests a
// fix, and the fix, written in place of what failed, works on the same
// interaction. ?. does not guard a method call, so for start?.UnixMilli()
// suggesting ?. again would be no help.
func TestRuntimeError_FixWorks(t *testing.T) {
	in := &connector.Interaction{Platform: "p", ID: "i", Attached: map[string]any{"a": map[string]any{}}}
	tests := []struct{ expr, failing, want string }{
		{`string((start ?? end)?.UnixMilli())`, `(start ?? end)?.UnixMilli()`, "(start ?? end) is missing in this interaction (nil), so UnixMilli() cannot be called on it, and ?. does not guard a method call"},
		{`start.UnixMilli()`, `start.UnixMilli()`, "start is missing in this interaction (nil)"},
		{`start?.Unix()`, `start?.Unix()`, "start is missing"},
		{`who.id`, `who.id`, "who is missing in this interaction, so it has no id"},
		{`attached.missing.deeper`, `attached.missing.deeper`, "attached.missing is missing in this interaction (nil), so it has no deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			err := apply1(t, tt.expr, in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to say %q", err, tt.want)
			}
			m := reFix.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("error %q suggests no fix", err)
			}
			fixed := strings.Replace(tt.expr, tt.failing, m[1], 1)
			if err := apply1(t, fixed, in); err != nil {
				t.Errorf("the suggested fix %q fails too: %v", fixed, err)
			}
		})
	}
}

func apply1(t *testing.T, expr string, in *connector.Interaction) error {
	t.Helper()
	s, err := mapping.Load([]mapping.File{{Name: "m.toml", Data: []byte("[[rule]]\nname = \"r\"\ntarget = \"t\"\nobject = \"o\"\n[rule.fields]\nf = '" + expr + "'\n")}},
		mapping.Options{Targets: []string{"t"}})
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	_, err = s.Apply(in)
	return err
}
