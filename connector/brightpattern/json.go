package brightpattern

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ctibridge/ctibridge/connector"
)

// The payload is read field by field from raw JSON rather than unmarshalled
// into a struct, so that a wrong type is reported as the dotted path and the
// JSON type (data.startTime: want number, got string) instead of
// encoding/json's Go-flavoured message, and so that associatedObjects, whose
// shape is undocumented, can be read tolerantly.

// object is one JSON object of the payload with its dotted path, so that
// errors name the field at fault.
type object struct {
	path string
	raw  json.RawMessage
	m    map[string]json.RawMessage
}

// parseBody parses the request body, which must be a JSON object.
func parseBody(body []byte) (object, error) {
	var raw json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return object{}, fmt.Errorf("%w: malformed JSON at byte %d: %v", connector.ErrBadPayload, se.Offset, err)
		}
		return object{}, fmt.Errorf("%w: malformed JSON: %v", connector.ErrBadPayload, err)
	}
	if k := kind(raw); k != "object" {
		return object{}, fmt.Errorf("%w: want a JSON object, got %s", connector.ErrBadPayload, k)
	}
	return parseObject("", raw)
}

// parseObject parses raw, which must be a JSON object, found at path.
func parseObject(path string, raw json.RawMessage) (object, error) {
	if k := kind(raw); k != "object" {
		return object{}, connector.BadPayload(path, "want object, got %s", k)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		// Unreachable for valid JSON of kind object; kept so a surprise is
		// still a bad payload rather than a panic.
		return object{}, connector.BadPayload(path, "%v", err)
	}
	return object{path: path, raw: raw, m: m}, nil
}

// at is the dotted path of member name.
func (o object) at(name string) string {
	if o.path == "" {
		return name
	}
	return o.path + "." + name
}

// get returns the member's value, or nil when it is absent or null: a
// browser's JSON.stringify drops undefined, a bridge may send null, and both
// mean "not set".
func (o object) get(name string) json.RawMessage {
	v, ok := o.m[name]
	if !ok || kind(v) == "null" {
		return nil
	}
	return v
}

// kind names the JSON type of a valid JSON value by its first byte.
func kind(v json.RawMessage) string {
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

// reader reads typed members and keeps the first error, so that normalize
// reads as a list of fields rather than a list of error checks.
type reader struct{ err error }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// wrongType records that member name of o has the wrong JSON type.
func (r *reader) wrongType(o object, name, want string, v json.RawMessage) {
	r.fail(connector.BadPayload(o.at(name), "want %s, got %s", want, kind(v)))
}

// str reads a string member, trimmed; absent is "".
func (r *reader) str(o object, name string) string {
	v := o.get(name)
	if v == nil {
		return ""
	}
	var s string
	if kind(v) != "string" || json.Unmarshal(v, &s) != nil {
		r.wrongType(o, name, "string", v)
		return ""
	}
	return strings.TrimSpace(s)
}

// num reads a number member; ok is false when it is absent.
func (r *reader) num(o object, name string) (v float64, ok bool) {
	raw := o.get(name)
	if raw == nil {
		return 0, false
	}
	if kind(raw) != "number" {
		r.wrongType(o, name, "number", raw)
		return 0, false
	}
	v, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil {
		r.fail(connector.BadPayload(o.at(name), "number %s is out of range", clip(string(raw))))
		return 0, false
	}
	return v, true
}

// list reads an array member's elements; absent is nil.
func (r *reader) list(o object, name string) []json.RawMessage {
	v := o.get(name)
	if v == nil {
		return nil
	}
	var elems []json.RawMessage
	if kind(v) != "array" || json.Unmarshal(v, &elems) != nil {
		r.wrongType(o, name, "array", v)
		return nil
	}
	return elems
}

// attached reads attachedData as a map for mapping expressions; absent is
// nil.
func (r *reader) attached(o object, name string) map[string]any {
	v := o.get(name)
	if v == nil {
		return nil
	}
	if kind(v) != "object" {
		r.wrongType(o, name, "object", v)
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(v, &m); err != nil {
		// The only failure left for valid JSON is a number too large for
		// float64; say so rather than quote encoding/json's Go types.
		num := "a number"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			num = clip(te.Value)
		}
		r.fail(connector.BadPayload(o.at(name), "%s is out of range", num))
		return nil
	}
	return m
}

// crmObjects reads associatedObjects. Bright Pattern documents each object
// ({id, type, displayName, displayType, customFields}) but not the container
// holding them, so this accepts an array of objects, or an object whose
// values are objects or arrays of them, keeps document order, and skips
// entries that are not objects with an id instead of rejecting the event.
func (r *reader) crmObjects(o object, name string) []connector.CRMObject {
	v := o.get(name)
	if v == nil {
		return nil
	}
	var out []connector.CRMObject
	switch kind(v) {
	case "array":
		out = appendCRMObjects(out, v)
	case "object":
		for _, m := range members(v) {
			out = appendCRMObjects(out, m)
		}
	default:
		r.wrongType(o, name, "object or array", v)
	}
	return out
}

// appendCRMObjects appends v when it is an associated object, or the
// associated objects among its elements when it is an array.
func appendCRMObjects(out []connector.CRMObject, v json.RawMessage) []connector.CRMObject {
	switch kind(v) {
	case "array":
		var elems []json.RawMessage
		_ = json.Unmarshal(v, &elems)
		for _, e := range elems {
			if kind(e) == "object" {
				out = appendCRMObjects(out, e)
			}
		}
	case "object":
		var m map[string]json.RawMessage
		_ = json.Unmarshal(v, &m)
		if id := loose(m["id"]); id != "" {
			out = append(out, connector.CRMObject{Type: loose(m["type"]), ID: id, Name: loose(m["displayName"])})
		}
	}
	return out
}

// members returns an object's values in document order, which a Go map
// would lose: Who and What are the first of their kind.
func members(v json.RawMessage) []json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(v))
	if _, err := dec.Token(); err != nil { // {
		return nil
	}
	var vals []json.RawMessage
	for dec.More() {
		if _, err := dec.Token(); err != nil { // key
			return vals
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return vals
		}
		vals = append(vals, val)
	}
	return vals
}

// loose reads a string, or a number as written (some CRMs have numeric
// record ids), trimmed; anything else is "".
func loose(v json.RawMessage) string {
	switch kind(v) {
	case "string":
		var s string
		_ = json.Unmarshal(v, &s)
		return strings.TrimSpace(s)
	case "number":
		return string(bytes.TrimSpace(v))
	}
	return ""
}
