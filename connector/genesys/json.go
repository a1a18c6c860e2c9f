package genesys

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ctibridge/ctibridge/connector"
)

// Messages are read member by member from raw JSON, not unmarshalled into
// structs: a wrong type is then reported with its dotted path and JSON type
// (data.interaction.callUuid: want string, got number), and the members
// ctibridge does not read, which Genesys adds from release to release, cost
// nothing.

// node is a JSON object of the message with its dotted path.
type node struct {
	path string
	raw  json.RawMessage
	m    map[string]json.RawMessage
}

// decodeBody parses a posted body, which must be one JSON object. It is
// parsed once at the top: a body may be 1 MB of userData.
func decodeBody(body []byte) (node, error) {
	var m map[string]json.RawMessage
	err := json.Unmarshal(body, &m)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return node{}, fmt.Errorf("%w: malformed JSON at byte %d: %v", connector.ErrBadPayload, se.Offset, err)
	case errors.As(err, &te):
		return node{}, fmt.Errorf("%w: want a JSON object, got %s", connector.ErrBadPayload, jsonKind(body))
	case err != nil:
		return node{}, fmt.Errorf("%w: malformed JSON: %v", connector.ErrBadPayload, err)
	case m == nil:
		return node{}, fmt.Errorf("%w: want a JSON object, got null", connector.ErrBadPayload)
	}
	return node{raw: body, m: m}, nil
}

// asNode reads raw, found at path, as an object.
func asNode(path string, raw json.RawMessage) (node, error) {
	if k := jsonKind(raw); k != "object" {
		return node{}, connector.BadPayload(path, "want object, got %s", k)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		// Valid JSON of kind object always unmarshals; a surprise is still
		// the caller's bad payload, never a panic.
		return node{}, connector.BadPayload(path, "%v", err)
	}
	return node{path: path, raw: raw, m: m}, nil
}

// at is the dotted path of member name.
func (n node) at(name string) string {
	if n.path == "" {
		return name
	}
	return n.path + "." + name
}

// get returns member name, or nil when it is absent or null: JSON.stringify
// drops undefined members and a bridge may send null, and both mean unset.
func (n node) get(name string) json.RawMessage {
	v, ok := n.m[name]
	if !ok || jsonKind(v) == "null" {
		return nil
	}
	return v
}

// jsonKind names the JSON type of a valid JSON value by its first byte.
func jsonKind(v json.RawMessage) string {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
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

// fields reads typed members and keeps the first error, so that the
// readers list fields instead of error checks.
type fields struct{ err error }

func (f *fields) fail(err error) {
	if f.err == nil {
		f.err = err
	}
}

func (f *fields) wrongType(n node, name, want string, v json.RawMessage) {
	f.fail(connector.BadPayload(n.at(name), "want %s, got %s", want, jsonKind(v)))
}

// str reads a string member, trimmed; absent is "".
func (f *fields) str(n node, name string) string {
	v := n.get(name)
	if v == nil {
		return ""
	}
	var s string
	if jsonKind(v) != "string" || json.Unmarshal(v, &s) != nil {
		f.wrongType(n, name, "string", v)
		return ""
	}
	return strings.TrimSpace(s)
}

// firstStr reads the first of names that is set: agent.get and GWS spell
// some members differently between releases (firstName, firstname).
func (f *fields) firstStr(n node, names ...string) string {
	for _, name := range names {
		if s := f.str(n, name); s != "" {
			return s
		}
	}
	return ""
}

// boolean reads a boolean member; nil when it is absent.
func (f *fields) boolean(n node, name string) *bool {
	v := n.get(name)
	if v == nil {
		return nil
	}
	var b bool
	if jsonKind(v) != "boolean" || json.Unmarshal(v, &b) != nil {
		f.wrongType(n, name, "boolean", v)
		return nil
	}
	return &b
}

// object reads an object member; ok is false when it is absent.
func (f *fields) object(n node, name string) (node, bool) {
	v := n.get(name)
	if v == nil {
		return node{}, false
	}
	o, err := asNode(n.at(name), v)
	if err != nil {
		f.fail(err)
		return node{}, false
	}
	return o, true
}

// array reads an array member's elements; absent is nil.
func (f *fields) array(n node, name string) []json.RawMessage {
	v := n.get(name)
	if v == nil {
		return nil
	}
	var elems []json.RawMessage
	if jsonKind(v) != "array" || json.Unmarshal(v, &elems) != nil {
		f.wrongType(n, name, "array", v)
		return nil
	}
	return elems
}

// digest is a short hash of a JSON value's content, independent of member
// order and white space, leaving out the members of drop at every level:
// two browser tabs serialize the same WWE event with the same content but
// with their own client-side ids and UI state, which drop names.
func digest(v json.RawMessage, drop map[string]bool) string {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber() // numbers as written: no float rounding, no overflow
	var x any
	if err := dec.Decode(&x); err != nil {
		x = string(v) // unreachable for validated JSON; still deterministic
	}
	b, err := json.Marshal(prune(x, drop))
	if err != nil {
		b = v
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// prune removes the members named in drop from every object in x.
func prune(x any, drop map[string]bool) any {
	switch x := x.(type) {
	case map[string]any:
		for k, v := range x {
			if drop[k] {
				delete(x, k)
				continue
			}
			x[k] = prune(v, drop)
		}
	case []any:
		for i, v := range x {
			x[i] = prune(v, drop)
		}
	}
	return x
}

// loose reads a userData value as text: a string, or a number as written
// (Genesys attaches numbers and strings alike); anything else is "".
func loose(v any) string {
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// clip shortens caller-supplied text quoted in an error or an event type,
// so that a huge bogus value does not come back whole.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "…"
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.ToValidUTF8(s[:n], "")
}
