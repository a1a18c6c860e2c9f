package connector_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ctibridge/ctibridge/connector"
)

// FuzzParseObject: whatever is posted, ParseObject either accepts one JSON
// object of valid UTF-8, whose members all read back, or refuses it as a bad
// payload with a message that is itself valid UTF-8 (it goes back in the
// 400 answer).
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{
		`{"event":"x","data":{"a":[1,{"b":null}]}}`,
		`{"event":"x","event":"y"}`,
		`{"a":{"b":1,"b":2}}`,
		"{\"a\":\"caf\xe9\"}",
		"{\"\xff\":1}",
		`{"a":"\ud800"}`,
		`[]`, `{}`, `{"a":[[[]]]}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := connector.ParseObject(body)
		if err != nil {
			if !errors.Is(err, connector.ErrBadPayload) {
				t.Fatalf("error %v is not a bad payload", err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error %q is not valid UTF-8", err)
			}
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted %q, which is not valid UTF-8", body)
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil || len(m) != len(o.Names()) {
			t.Fatalf("accepted %q but its members do not read back", body)
		}
		if dup := duplicateName(body); dup != "" {
			t.Fatalf("accepted %q, which has the member %q twice", body, dup)
		}
		var r connector.Reader
		for _, name := range o.Names() {
			r.Obj(o, name)
		}
	})
}

// FuzzCheckObject: CheckObject, which checks a body in one pass of its own,
// refuses exactly what ParseObject refuses, with the same message.
func FuzzCheckObject(f *testing.F) {
	for _, s := range []string{
		`{"event":"x","data":{"a":[1,{"b":null}],"c":-0.5e+3,"d":[true,false,"\u00e9\n"]}}`,
		`{"event":"x","event":"y"}`,
		`{"a":{"b":1,"b":2}}`,
		`{"data":{"id":"1","\u0069d":"2"}}`,
		"{\"a\":\"caf\xe9\"}",
		"{\"\xff\":1}",
		"{\"a\":\"x\ty\"}",
		`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":tru}`, `{"a":"\x"}`, `{"a":"\u12g4"}`,
		`{"a":1,}`, `{"a" 1}`, `{,}`, `{"a":[1,]}`, `{} {}`, " {}\n",
		`[]`, `{}`, `{"a":[[[]]]}`, ``, `null`, `"x"`,
		`{"a":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := connector.CheckObject(body)
		_, want := connector.ParseObject(body)
		if (err == nil) != (want == nil) || err != nil && err.Error() != want.Error() {
			t.Fatalf("CheckObject(%q) = %v, ParseObject's error %v", body, err, want)
		}
	})
}

// duplicateName is the fuzz test's oracle, by another method than
// ParseObject's: the first member name found twice in one object of doc,
// a valid JSON document, walking encoding/json's tokens.
func duplicateName(doc []byte) string {
	dec := json.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		names  map[string]bool // nil for an array
		inName bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok && top != nil && top.names != nil && top.inName {
			if top.names[s] {
				return s
			}
			top.names[s], top.inName = true, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{names: map[string]bool{}, inName: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].names != nil {
			stack[len(stack)-1].inName = true
		}
	}
}

// BenchmarkParseObject parses a Genesys-sized event (about 8 KiB), whose
// every member the strict check walks.
func BenchmarkParseObject(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"event":"interaction","data":{"eventType":"ESTABLISHED","interaction":{"callUuid":"CU1","userData":{`)
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"key%03d":"value %d with some text, café"`, i, i)
	}
	sb.WriteString(`},"parties":[{"name":"a"},{"name":"b"}]}},"receivedAt":"2026-11-21T14:00:00Z"}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := connector.ParseObject(body); err != nil {
			b.Fatal(err)
		}
	}
}
