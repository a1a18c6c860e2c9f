package mapping_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/mapping"
)

const card = "4111 1111 1111 1111"

func maskSet(t *testing.T) *mapping.Set {
	t.Helper()
	s, err := mapping.Load([]mapping.File{{Name: "m.toml", Data: []byte(`
[redact]
patterns = ['SSN (\d{3}-\d{2}-\d{4})']

[[rule]]
name   = "r"
target = "t"
object = "o"
[rule.fields]
Notes = { expr = 'notes', redact = false }
`)}}, mapping.Options{Targets: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMaskJSON: card numbers and the admin's patterns are masked in every
// text value of a posted body before it is stored; names, numbers and
// layout stay as posted.
func TestMaskJSON(t *testing.T) {
	body := `{"event":"callFinished", "params":{"callLogData":{"comments":"paid with ` + card + `, SSN 123-45-6789"}},` +
		`"cavs":[{"name":"Card","value":"4111-1111-1111-1111"},{"4111111111111111":4111111111111111}],"ts":1795271100000,"x":"a\"b\u00e9"}`
	got := string(maskSet(t).MaskJSON([]byte(body)))
	want := `{"event":"callFinished", "params":{"callLogData":{"comments":"paid with **** **** **** 1111, SSN [redacted]"}},` +
		`"cavs":[{"name":"Card","value":"****-****-****-1111"},{"4111111111111111":4111111111111111}],"ts":1795271100000,"x":"a\"b\u00e9"}`
	if got != want {
		t.Errorf("MaskJSON =\n%s\nwant\n%s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Error("the masked body is not JSON")
	}
	clean := []byte(`{"a":"nothing to mask","b":[1,2]}`)
	if out := maskSet(t).MaskJSON(clean); &out[0] != &clean[0] {
		t.Error("a body without card data was copied")
	}
	// Without a mapping, card numbers are masked all the same.
	var none *mapping.Set
	if got := string(none.MaskJSON([]byte(`{"n":"` + card + ` SSN 123-45-6789"}`))); got != `{"n":"**** **** **** 1111 SSN 123-45-6789"}` {
		t.Errorf("nil Set: %s", got)
	}
}

// TestMaskInteraction: what is stored of the interaction holds no card
// number, even for a rule whose field is not redacted; the interaction
// given is left alone.
func TestMaskInteraction(t *testing.T) {
	in := &connector.Interaction{
		Platform: "five9", ID: "i1", ANI: "4155550142",
		Notes:    "card " + card,
		Subject:  "SSN 123-45-6789",
		Attached: map[string]any{"cc": card, "n": 7.0},
		Who:      &connector.CRMObject{Type: "Contact", ID: "003", Name: "Ann " + card},
		Parties:  []connector.Party{{Name: "Bob"}, {Name: card}},
		Raw:      json.RawMessage(`{"comments":"card ` + card + `"}`),
	}
	s := maskSet(t)
	m := s.MaskInteraction(in)
	b, _ := json.Marshal(m)
	if strings.Contains(string(b), "1111 1111") || strings.Contains(string(b), "123-45") {
		t.Errorf("masked interaction still holds card or SSN: %s", b)
	}
	if m.Notes != "card **** **** **** 1111" || m.Subject != "SSN [redacted]" || m.Attached["n"] != 7.0 || m.ANI != "4155550142" || m.Parties[0].Name != "Bob" {
		t.Errorf("masked interaction = %s", b)
	}
	if in.Notes != "card "+card || in.Attached["cc"] != card || in.Who.Name != "Ann "+card || in.Parties[1].Name != card || !strings.Contains(string(in.Raw), card) {
		t.Error("MaskInteraction changed its argument")
	}
	acts, err := s.Apply(m)
	if err != nil || acts[0].Fields["Notes"] != "card **** **** **** 1111" {
		t.Errorf("Apply(masked) = %v, %v", acts, err)
	}
	plain := &connector.Interaction{Platform: "p", ID: "i", Notes: "fine"}
	if s.MaskInteraction(plain) != plain {
		t.Error("an interaction without card data was copied")
	}
}

// FuzzMaskJSON: masking keeps a JSON document JSON, and masking twice
// changes nothing more.
func FuzzMaskJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":"4111 1111 1111 1111","b":["x",{"4111111111111111":"4111-1111-1111-1111"}]}`,
		`{"a":"\"4111111111111111\"\u00e9 <b>","n":4111111111111111}`,
		`"4111111111111111"`, `[]`, `{"a" : "x"}`,
	} {
		f.Add([]byte(s))
	}
	var none *mapping.Set
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !json.Valid(doc) {
			return
		}
		once := none.MaskJSON(doc)
		if !json.Valid(once) {
			t.Fatalf("MaskJSON(%q) = %q, not JSON", doc, once)
		}
		if twice := none.MaskJSON(once); string(twice) != string(once) {
			t.Fatalf("masking %q again changed it: %q", once, twice)
		}
	})
}
