package five9

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ctibridge/ctibridge/connector"
)

// The body is walked member by member over json.RawMessage instead of being
// unmarshalled into structs, for two reasons: a wrong type must come back as
// the dotted path and the JSON type the bridge sent
// (params.callData.ani: want string, got number), not as encoding/json's
// Go-typed message; and the SDK's types are only partly documented, so
// members nobody reads must never be able to fail a post.

// node is one JSON value of the payload and where it sits. raw is nil when
// the member is absent or null: JSON.stringify drops undefined and a bridge
// may send null, and both mean "not set".
type node struct {
	path string
	raw  json.RawMessage
}

// set reports whether the value is present and not null.
func (n node) set() bool { return n.raw != nil }

// jsonType names the JSON type of a valid JSON value from its first byte.
func jsonType(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// fields is a decoded JSON object and its path.
type fields struct {
	path string
	m    map[string]json.RawMessage
}

// get returns member name; a null member counts as absent.
func (f fields) get(name string) node {
	p := name
	if f.path != "" {
		p = f.path + "." + name
	}
	raw := f.m[name]
	if raw != nil && jsonType(raw) == "null" {
		raw = nil
	}
	return node{path: p, raw: raw}
}

// readBody parses the request body, which must be one JSON object.
func readBody(body []byte) (fields, error) {
	var raw json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return fields{}, fmt.Errorf("%w: malformed JSON at byte %d: %v", connector.ErrBadPayload, syn.Offset, err)
		}
		return fields{}, fmt.Errorf("%w: malformed JSON: %v", connector.ErrBadPayload, err)
	}
	if t := jsonType(raw); t != "object" {
		return fields{}, fmt.Errorf("%w: want a JSON object, got %s", connector.ErrBadPayload, t)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fields{}, fmt.Errorf("%w: %v", connector.ErrBadPayload, err)
	}
	return fields{m: m}, nil
}

// walker reads typed values and keeps the first error, so that the code
// reading an event is a list of fields, not a list of error checks. Every
// method is a no-op returning a zero value once an error is kept.
type walker struct{ err error }

func (w *walker) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *walker) wrongType(n node, want string) {
	w.fail(connector.BadPayload(n.path, "want %s, got %s", want, jsonType(n.raw)))
}

// object reads an object; absent is the zero fields with ok false.
func (w *walker) object(n node) (f fields, ok bool) {
	if w.err != nil || !n.set() {
		return fields{path: n.path}, false
	}
	if jsonType(n.raw) != "object" {
		w.wrongType(n, "object")
		return fields{path: n.path}, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(n.raw, &m); err != nil {
		w.fail(connector.BadPayload(n.path, "%v", err))
		return fields{path: n.path}, false
	}
	return fields{path: n.path, m: m}, true
}

// array reads an array's elements, each with its indexed path.
func (w *walker) array(n node) []node {
	if w.err != nil || !n.set() {
		return nil
	}
	var elems []json.RawMessage
	if jsonType(n.raw) != "array" || json.Unmarshal(n.raw, &elems) != nil {
		w.wrongType(n, "array")
		return nil
	}
	out := make([]node, len(elems))
	for i, e := range elems {
		if jsonType(e) == "null" {
			e = nil
		}
		out[i] = node{path: fmt.Sprintf("%s[%d]", n.path, i), raw: e}
	}
	return out
}

// str reads a string, trimmed; absent is "".
func (w *walker) str(n node) string {
	if w.err != nil || !n.set() {
		return ""
	}
	var s string
	if jsonType(n.raw) != "string" || json.Unmarshal(n.raw, &s) != nil {
		w.wrongType(n, "string")
		return ""
	}
	return strings.TrimSpace(s)
}

// ident reads an identifier that the SDK sends as a string or a number
// (getMetadata documents agentId as a Number, CRM record ids are strings
// in one CRM and numbers in another); a number is kept as written.
func (w *walker) ident(n node) string {
	if w.err != nil || !n.set() {
		return ""
	}
	switch jsonType(n.raw) {
	case "string":
		return w.str(n)
	case "number":
		return string(bytes.TrimSpace(n.raw))
	}
	w.wrongType(n, "string or number")
	return ""
}

// boolean reads a boolean; ok is false when it is absent.
func (w *walker) boolean(n node) (v, ok bool) {
	if w.err != nil || !n.set() {
		return false, false
	}
	if jsonType(n.raw) != "boolean" {
		w.wrongType(n, "boolean")
		return false, false
	}
	return bytes.HasPrefix(bytes.TrimSpace(n.raw), []byte("t")), true
}

// number reads a finite number; ok is false when it is absent.
func (w *walker) number(n node) (v float64, ok bool) {
	if w.err != nil || !n.set() {
		return 0, false
	}
	if jsonType(n.raw) != "number" {
		w.wrongType(n, "number")
		return 0, false
	}
	v, err := strconv.ParseFloat(string(bytes.TrimSpace(n.raw)), 64)
	if err != nil {
		w.fail(connector.BadPayload(n.path, "number %s is out of range", clip(string(n.raw))))
		return 0, false
	}
	return v, true
}

// anyValue checks that a free-form value (a CAV's value) decodes for
// mapping expressions, and returns it compacted for the snapshot.
func (w *walker) anyValue(n node) json.RawMessage {
	if w.err != nil || !n.set() {
		return nil
	}
	var v any
	if err := json.Unmarshal(n.raw, &v); err != nil {
		// For valid JSON the only failure left is a number beyond float64.
		w.fail(connector.BadPayload(n.path, "a number in it is out of range"))
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, n.raw); err != nil {
		w.fail(connector.BadPayload(n.path, "%v", err))
		return nil
	}
	return b.Bytes()
}

// clip shortens a caller-supplied string quoted back in an error message,
// so that a huge bogus value is not echoed whole.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "…"
}
