package brightpattern

import (
	"bytes"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
	"strings"

	"github.com/ctibridge/ctibridge/connector"
)

// The body is checked once by connector.CheckObject (one JSON object, valid
// UTF-8, no member name twice) and then read in one pass of its own: each
// object is split into its members as spans of the body, and only the
// members Bright Pattern defines are converted. Errors are the ones
// connector.Reader words (data.startTime: want number, got string), so the
// 400 answer is the same as every platform's. associatedObjects, whose shape
// is undocumented, is read tolerantly.

// object is an object of a checked body: its members in document order, as
// raw JSON without surrounding white space, and its dotted path for errors.
type object struct {
	path    string
	index   int // when not -1, the object is element index of the array at path
	raw     []byte
	members []member
}

type member struct{ name, val []byte }

// parseObject splits raw, a valid JSON object, into its members.
func parseObject(path string, index int, raw []byte) object {
	o := object{path: path, index: index, raw: raw, members: make([]member, 0, 16)}
	i := 1
	for {
		i = skipSpace(raw, i)
		if raw[i] == '}' {
			return o
		}
		end := skipValue(raw, i)
		name := unquote(raw[i:end])
		i = skipSpace(raw, skipSpace(raw, end)+1) // past the colon
		end = skipValue(raw, i)
		o.members = append(o.members, member{name, raw[i:end]})
		i = skipSpace(raw, end)
		if raw[i] == ',' {
			i++
		}
	}
}

// elements returns the elements of raw, a valid JSON array.
func elements(raw []byte) [][]byte {
	var out [][]byte
	i := 1
	for {
		i = skipSpace(raw, i)
		if raw[i] == ']' {
			return out
		}
		end := skipValue(raw, i)
		out = append(out, raw[i:end])
		i = skipSpace(raw, end)
		if raw[i] == ',' {
			i++
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the valid JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}

// skipString returns the end of the string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// unquote returns the text of a valid JSON string; encoding/json decodes
// one with escapes, so that "\ud800" becomes U+FFFD the way it always did.
func unquote(v []byte) []byte {
	lit := v[1 : len(v)-1]
	if bytes.IndexByte(lit, '\\') < 0 {
		return lit
	}
	var s string
	_ = json.Unmarshal(v, &s)
	return []byte(s)
}

// Get returns member name as raw JSON, or nil when it is absent or null,
// as connector.Object.Get does.
func (o object) Get(name string) []byte {
	v := o.lookup(name)
	if len(v) == 0 || v[0] == 'n' {
		return nil
	}
	return v
}

func (o object) lookup(name string) []byte {
	for _, m := range o.members {
		if string(m.name) == name {
			return m.val
		}
	}
	return nil
}

// At is the dotted path of member name, such as data.callParties[1].phone.
func (o object) At(name string) string {
	path := o.path
	if o.index >= 0 {
		path = fmt.Sprintf("%s[%d]", path, o.index)
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

// Raw returns the object as it was posted.
func (o object) Raw() json.RawMessage { return o.raw }

// reader reads typed members of objects and keeps the first error, with the
// messages of connector.Reader; once an error is recorded, every method
// returns its zero value.
type reader struct{ err error }

func (r *reader) Err() error { return r.err }

func (r *reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) WrongType(o object, name, want string) {
	r.Fail(connector.BadPayload(o.At(name), "want %s, got %s", want, connector.Kind(o.lookup(name))))
}

// Str reads a string member, trimmed; absent is "".
func (r *reader) Str(o object, name string) string {
	v := o.Get(name)
	if r.err != nil || v == nil {
		return ""
	}
	if v[0] != '"' {
		r.WrongType(o, name, "string")
		return ""
	}
	return strings.TrimSpace(string(unquote(v)))
}

// Num reads a number member; ok is false when it is absent. A number beyond
// float64 is an error.
func (r *reader) Num(o object, name string) (v float64, ok bool) {
	raw := o.Get(name)
	if r.err != nil || raw == nil {
		return 0, false
	}
	if connector.Kind(raw) != "number" {
		r.WrongType(o, name, "number")
		return 0, false
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		r.Fail(connector.BadPayload(o.At(name), "number %s is out of range", connector.Clip(string(raw))))
		return 0, false
	}
	return v, true
}

// ID reads an interaction or agent id that connector.CheckID accepts.
func (r *reader) ID(o object, name string) string {
	s := r.Str(o, name)
	if s != "" {
		r.Fail(connector.CheckID(o.At(name), s))
	}
	if r.err != nil {
		return ""
	}
	return s
}

// Obj reads an object member; ok is false when it is absent (or on error).
func (r *reader) Obj(o object, name string) (object, bool) {
	v := o.Get(name)
	if r.err != nil || v == nil {
		return object{path: o.At(name), index: -1}, false
	}
	if k := connector.Kind(v); k != "object" {
		r.Fail(connector.BadPayload(o.At(name), "want object, got %s", k))
		return object{path: o.At(name), index: -1}, false
	}
	return parseObject(o.At(name), -1, v), true
}

// Objects reads an array member whose elements are objects; null elements
// are skipped, and an element of another kind is an error that ends the
// loop, as does an error the loop's body records.
func (r *reader) Objects(o object, name string) iter.Seq[object] {
	v := o.Get(name)
	var elems [][]byte
	if r.err == nil && v != nil {
		if v[0] != '[' {
			r.WrongType(o, name, "array")
		} else {
			elems = elements(v)
		}
	}
	return func(yield func(object) bool) {
		for i, e := range elems {
			if r.err != nil {
				return
			}
			switch k := connector.Kind(e); k {
			case "null":
				continue
			case "object":
			default:
				r.Fail(connector.BadPayload(fmt.Sprintf("%s[%d]", o.At(name), i), "want object, got %s", k))
				return
			}
			if !yield(parseObject(o.At(name), i, e)) {
				return
			}
		}
	}
}

// attached reads attachedData as a map for mapping expressions, the values
// json.Unmarshal would give; absent is nil.
func (r *reader) attached(o object, name string) map[string]any {
	v := o.Get(name)
	if r.err != nil || v == nil {
		return nil
	}
	if v[0] != '{' {
		r.WrongType(o, name, "object")
		return nil
	}
	m, _, bad := toAny(v, 0)
	if bad != "" {
		// The only failure left for valid JSON is a number too large for
		// float64, the first in document order.
		r.Fail(connector.BadPayload(o.At(name), "%s is out of range", connector.Clip(bad)))
		return nil
	}
	return m.(map[string]any)
}

// toAny converts the valid JSON value at b[i] into an any as json.Unmarshal
// does, in one pass however deep it nests, and returns where it ends; bad
// is "number N" for the first number N beyond float64.
func toAny(b []byte, i int) (val any, end int, bad string) {
	switch b[i] {
	case '{':
		m := map[string]any{}
		for i = skipSpace(b, i+1); b[i] != '}'; i = skipSpace(b, i) {
			end = skipString(b, i)
			name := unquote(b[i:end])
			if val, i, bad = toAny(b, skipSpace(b, skipSpace(b, end)+1)); bad != "" {
				return nil, i, bad
			}
			m[string(name)] = val
			if i = skipSpace(b, i); b[i] == ',' {
				i++
			}
		}
		return m, i + 1, ""
	case '[':
		a := []any{}
		for i = skipSpace(b, i+1); b[i] != ']'; i = skipSpace(b, i) {
			if val, i, bad = toAny(b, i); bad != "" {
				return nil, i, bad
			}
			a = append(a, val)
			if i = skipSpace(b, i); b[i] == ',' {
				i++
			}
		}
		return a, i + 1, ""
	}
	end = skipValue(b, i)
	switch v := b[i:end]; v[0] {
	case '"':
		return string(unquote(v)), end, ""
	case 't':
		return true, end, ""
	case 'f':
		return false, end, ""
	case 'n':
		return nil, end, ""
	default:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return nil, end, "number " + string(v)
		}
		return f, end, ""
	}
}

// crmObjects reads associatedObjects. Bright Pattern documents each object
// ({id, type, displayName, displayType, customFields}) but not the container
// holding them, so this accepts an array of objects, or an object whose
// values are objects or arrays of them, keeps document order, and skips
// entries that are not objects with an id instead of rejecting the event.
func (r *reader) crmObjects(o object, name string) []connector.CRMObject {
	v := o.Get(name)
	if r.err != nil || v == nil {
		return nil
	}
	var out []connector.CRMObject
	switch v[0] {
	case '[':
		out = appendCRMObjects(out, v)
	case '{':
		for _, m := range parseObject("", -1, v).members {
			out = appendCRMObjects(out, m.val)
		}
	default:
		r.WrongType(o, name, "object or array")
	}
	return out
}

// appendCRMObjects appends v when it is an associated object, or the
// associated objects among its elements when it is an array.
func appendCRMObjects(out []connector.CRMObject, v []byte) []connector.CRMObject {
	switch v[0] {
	case '[':
		for _, e := range elements(v) {
			if e[0] == '{' {
				out = appendCRMObjects(out, e)
			}
		}
	case '{':
		o := parseObject("", -1, v)
		if id := loose(o.lookup("id")); id != "" {
			out = append(out, connector.CRMObject{Type: loose(o.lookup("type")), ID: id, Name: loose(o.lookup("displayName"))})
		}
	}
	return out
}

// loose reads a string, or a number as written (some CRMs have numeric
// record ids), trimmed; anything else is "".
func loose(v []byte) string {
	switch connector.Kind(v) {
	case "string":
		return strings.TrimSpace(string(unquote(v)))
	case "number":
		return string(v)
	}
	return ""
}
