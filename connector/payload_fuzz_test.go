package connector_test

import (
	"encoding/json"
	"errors"
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
		var r connector.Reader
		for _, name := range o.Names() {
			r.Obj(o, name)
		}
	})
}
