package connector

import (
	"strings"
	"testing"
)

// TestScanObject_Sure: the one-pass check is sure of every valid object, so
// that posted bodies never pay for encoding/json's second opinion, and
// never of a body encoding/json refuses.
func TestScanObject_Sure(t *testing.T) {
	for _, body := range []string{
		`{}`, " {\"a\" : [ ] , \"b\":{ }}\r\n",
		`{"a":[1,-0,0.5,-12.25e+3,1E-2,1e999],"b":[true,false,null],"c":"\"\\\/\b\f\n\r\t\u00e9\uD800"}`,
		`{"a":{"b":1,"b":2}}`, "{\"a\":\"caf\xe9\"}",
		`{"a":` + strings.Repeat("[", 400) + strings.Repeat("]", 400) + `}`,
	} {
		if sure, _ := scanObject([]byte(body)); !sure {
			t.Errorf("scanObject(%q) is not sure", body)
		}
	}
	for _, body := range []string{
		``, `[]`, `null`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":+1}`, `{"a":1e}`, `{"a":tru}`,
		`{"a":"\x"}`, `{"a":"\u12g4"}`, "{\"a\":\"x\ty\"}", `{"a":1,}`, `{"a" 1}`, `{,}`,
		`{"a":[1,]}`, `{} {}`, `{"a":"x}`, `{"a":`,
		`{"a":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`,
	} {
		if sure, _ := scanObject([]byte(body)); sure {
			t.Errorf("scanObject(%q) is sure", body)
		}
	}
}
