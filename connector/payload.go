package connector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
)

// Sources read a posted body member by member with Object and Reader
// rather than unmarshalling it into structs, for two reasons: a wrong type
// is then reported as the dotted path and the JSON kind the bridge sent
// (data.startTime: want number, got string), not as encoding/json's
// Go-typed message; and the members a source does not read, which vendors
// add between releases, can never fail a post.

// Object is a JSON object of a payload together with its dotted path, so
// that an error about one of its members can name it. The zero Object is
// the empty object at the top of the payload.
type Object struct {
	path string
	raw  json.RawMessage
	m    map[string]json.RawMessage
}

// ParseObject parses a posted body, which must be one JSON object. The
// error wraps ErrBadPayload and says where the JSON is malformed or what
// the body is instead. The body is parsed once: members are kept as raw
// JSON and parsed only when read.
func ParseObject(body []byte) (Object, error) {
	var m map[string]json.RawMessage
	err := json.Unmarshal(body, &m)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return Object{}, fmt.Errorf("%w: malformed JSON at byte %d: %v", ErrBadPayload, se.Offset, err)
	case errors.As(err, &te):
		return Object{}, fmt.Errorf("%w: want a JSON object, got %s", ErrBadPayload, Kind(body))
	case err != nil:
		return Object{}, fmt.Errorf("%w: malformed JSON: %v", ErrBadPayload, err)
	case m == nil:
		return Object{}, fmt.Errorf("%w: want a JSON object, got null", ErrBadPayload)
	}
	return Object{raw: body, m: m}, nil
}

// At is the dotted path of member name, such as data.interactionId.
func (o Object) At(name string) string {
	if o.path == "" {
		return name
	}
	return o.path + "." + name
}

// Get returns member name as raw JSON, or nil when it is absent or null: a
// browser's JSON.stringify drops undefined members and a bridge may send
// null, and both mean "not set".
func (o Object) Get(name string) json.RawMessage {
	v, ok := o.m[name]
	if !ok || Kind(v) == "null" {
		return nil
	}
	return v
}

// Names returns the names of o's members, null ones included, in sorted
// order, so that what a source does with all of them does not depend on
// how the sender ordered them.
func (o Object) Names() []string {
	names := make([]string, 0, len(o.m))
	for k := range o.m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Raw returns the object as it was posted; nil for an absent object.
func (o Object) Raw() json.RawMessage { return o.raw }

// Kind names the JSON kind of a valid JSON value by its first byte:
// object, array, string, number, boolean or null, and "nothing" for an
// empty (or nil) value.
func Kind(v json.RawMessage) string {
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

// Clip shortens caller-supplied text quoted back in an error message or an
// event type to 64 bytes and an ellipsis, so that a huge bogus value does
// not come back whole.
func Clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "…"
}

// Reader reads typed members of Objects and keeps the first error, so that
// code reading a payload is a list of fields rather than a list of error
// checks. Every error it records wraps ErrBadPayload and names the member
// at fault. Once an error is recorded, every method returns its zero value
// without reading anything. The zero Reader is ready to use.
type Reader struct{ err error }

// Err returns the first error recorded, or nil.
func (r *Reader) Err() error { return r.err }

// Fail records err, unless an error is recorded already. Sources use it for
// their own checks, such as a time out of range.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// WrongType records that member name of o is not of the JSON kind want,
// such as `data.ani: want string or number, got boolean`.
func (r *Reader) WrongType(o Object, name, want string) {
	r.Fail(BadPayload(o.At(name), "want %s, got %s", want, Kind(o.m[name])))
}

// Str reads a string member, with surrounding white space trimmed; absent
// is "".
func (r *Reader) Str(o Object, name string) string {
	v := o.Get(name)
	if r.err != nil || v == nil {
		return ""
	}
	var s string
	if Kind(v) != "string" || json.Unmarshal(v, &s) != nil {
		r.WrongType(o, name, "string")
		return ""
	}
	return strings.TrimSpace(s)
}

// Num reads a number member; ok is false when it is absent. A number beyond
// float64 is an error.
func (r *Reader) Num(o Object, name string) (v float64, ok bool) {
	raw := o.Get(name)
	if r.err != nil || raw == nil {
		return 0, false
	}
	if Kind(raw) != "number" {
		r.WrongType(o, name, "number")
		return 0, false
	}
	v, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil {
		r.Fail(BadPayload(o.At(name), "number %s is out of range", Clip(string(raw))))
		return 0, false
	}
	return v, true
}

// Bool reads a boolean member; nil when it is absent, since "not said" is
// not false.
func (r *Reader) Bool(o Object, name string) *bool {
	v := o.Get(name)
	if r.err != nil || v == nil {
		return nil
	}
	if Kind(v) != "boolean" {
		r.WrongType(o, name, "boolean")
		return nil
	}
	b := bytes.HasPrefix(bytes.TrimSpace(v), []byte("t"))
	return &b
}

// Obj reads an object member; ok is false when it is absent (or on error).
// Even then the Object returned has the member's path, so that a missing
// member inside it is reported where it was looked for.
func (r *Reader) Obj(o Object, name string) (Object, bool) {
	v := o.Get(name)
	if r.err != nil || v == nil {
		return Object{path: o.At(name)}, false
	}
	obj, err := parseMember(o.At(name), v)
	if err != nil {
		r.Fail(err)
		return Object{path: o.At(name)}, false
	}
	return obj, true
}

// Objects reads an array member whose elements are objects, each with its
// indexed path (callParties[1]). Null elements are skipped. An element that
// is not an object is an error that ends the loop, as does an error the
// loop's body records; absent is no elements. Elements are parsed one at a
// time, as the loop reaches them.
func (r *Reader) Objects(o Object, name string) iter.Seq[Object] {
	v := o.Get(name)
	var elems []json.RawMessage
	if r.err == nil && v != nil && (Kind(v) != "array" || json.Unmarshal(v, &elems) != nil) {
		r.WrongType(o, name, "array")
		elems = nil
	}
	return func(yield func(Object) bool) {
		for i, e := range elems {
			if r.err != nil {
				return
			}
			if Kind(e) == "null" {
				continue
			}
			obj, err := parseMember(fmt.Sprintf("%s[%d]", o.At(name), i), e)
			if err != nil {
				r.Fail(err)
				return
			}
			if !yield(obj) {
				return
			}
		}
	}
}

// parseMember parses v, a valid JSON value found at path, as an object.
func parseMember(path string, v json.RawMessage) (Object, error) {
	if k := Kind(v); k != "object" {
		return Object{}, BadPayload(path, "want object, got %s", k)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		// Unreachable for valid JSON of kind object; kept so that a
		// surprise is still a bad payload rather than a panic.
		return Object{}, BadPayload(path, "%v", err)
	}
	return Object{path: path, raw: v, m: m}, nil
}
