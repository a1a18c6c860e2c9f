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
	"unicode"
	"unicode/utf8"
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
	if err := checkTree(body); err != nil {
		return Object{}, err
	}
	return Object{raw: body, m: m}, nil
}

// CheckObject returns the error ParseObject would return for body, or nil,
// without keeping its members: for a source that reads the body in one pass
// of its own once it is known to be one object of valid JSON, valid UTF-8
// and no member name twice.
func CheckObject(body []byte) error {
	if sure, err := scanObject(body); sure {
		return err
	}
	if !json.Valid(body) || Kind(body) != "object" {
		// Rare: ParseObject words what the body is instead.
		_, err := ParseObject(body)
		return err
	}
	return checkTree(body)
}

// checkTree refuses what json.Unmarshal lets pass in a body it parsed: a
// member name used twice in one object, of which Unmarshal silently keeps
// the last ("event" twice, and which one counts depends on the parser),
// and text that is not UTF-8, which Unmarshal silently turns into U+FFFD
// and no CRM would take back as it was sent. The error names the member.
//
// body is valid JSON, so a scan of its brackets, commas and strings is
// enough; it is four times faster than walking encoding/json's tokens.
// The names of the open objects share one slice, searched linearly while an
// object has few members, so that a body of small objects allocates
// nothing; a large object gets a set, so that many members stay linear.
func checkTree(body []byte) error {
	var stack []frame
	var names [][]byte
	wantName := false // the next string of the object on top is a member name
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			stack = append(stack, frame{obj: true, first: len(names)})
			wantName = true
		case '[':
			stack = append(stack, frame{first: len(names)})
			wantName = false
		case '}', ']':
			names = names[:stack[len(stack)-1].first]
			stack = stack[:len(stack)-1]
		case ',':
			if top := &stack[len(stack)-1]; top.obj {
				wantName = true
			} else {
				top.index++
			}
		case '"':
			end := i + 1
			escaped := false
			for ; body[end] != '"'; end++ {
				if body[end] == '\\' {
					end++
					escaped = true
				}
			}
			lit := body[i+1 : end]
			valid := utf8.Valid(lit)
			if wantName {
				top := &stack[len(stack)-1]
				name := lit
				if escaped {
					var s string
					_ = json.Unmarshal(body[i:end+1], &s)
					name = []byte(s)
				}
				top.name, wantName = name, false
				if !valid {
					return BadPayload(pathOf(stack), "the member name is not valid UTF-8")
				}
				if seen(names[top.first:], &top.set, name) {
					return BadPayload(pathOf(stack), "appears twice; send each member once")
				}
				names = append(names, name)
			} else if !valid {
				return BadPayload(pathOf(stack), "text that is not valid UTF-8")
			}
			i = end
		}
	}
	return nil
}

// setAbove is how many members of an object are searched for a duplicate
// name without a set.
const setAbove = 32

// frame is an object or array being scanned for checkTree's errors.
type frame struct {
	obj   bool
	first int             // the object's first name in the shared names (arrays keep the count too)
	set   map[string]bool // its names, once it has more than setAbove
	name  []byte          // the member whose value is being read
	index int             // the element being read
}

// pathOf is the dotted path of the value being read, such as
// data.list[1].a.
func pathOf(stack []frame) string {
	var b strings.Builder
	for _, f := range stack {
		name := Clip(strings.ToValidUTF8(string(f.name), "\uFFFD"))
		switch {
		case f.obj && b.Len() > 0:
			b.WriteString("." + name)
		case f.obj:
			b.WriteString(name)
		default:
			fmt.Fprintf(&b, "[%d]", f.index)
		}
	}
	return b.String()
}

// seen reports whether name is among names, the names of one object so
// far. Past setAbove names, it keeps them in *set too and looks there.
func seen(names [][]byte, set *map[string]bool, name []byte) bool {
	if len(names) < setAbove {
		for _, n := range names {
			if bytes.Equal(n, name) {
				return true
			}
		}
		return false
	}
	if *set == nil {
		*set = make(map[string]bool, 2*setAbove)
		for _, n := range names {
			(*set)[string(n)] = true
		}
	}
	if (*set)[string(name)] {
		return true
	}
	(*set)[string(name)] = true
	return false
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

// MaxIDLen bounds an interaction or agent id: ids become event, snapshot
// and record keys, which CRMs cap (and real ids are 16 to 40 characters).
const MaxIDLen = 128

// CheckID refuses an id read at path that could never be delivered: longer
// than MaxIDLen bytes, or holding control characters (a line break in a
// key breaks the CRM's idempotency header).
func CheckID(path, id string) error {
	if len(id) > MaxIDLen {
		return BadPayload(path, "%d bytes is longer than an id can be (%d)", len(id), MaxIDLen)
	}
	if i := strings.IndexFunc(id, unicode.IsControl); i >= 0 {
		return BadPayload(path, "holds the control character %U at byte %d", firstRune(id[i:]), i)
	}
	return nil
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

// ID reads an interaction or agent id: a string member, trimmed, that
// CheckID accepts; absent is "".
func (r *Reader) ID(o Object, name string) string {
	s := r.Str(o, name)
	if s != "" {
		r.Fail(CheckID(o.At(name), s))
	}
	if r.err != nil {
		return ""
	}
	return s
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

func firstRune(s string) rune {
	r, _ := utf8.DecodeRuneInString(s)
	return r
}
