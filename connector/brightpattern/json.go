package brightpattern

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/ctibridge/ctibridge/connector"
)

// The payload is read member by member with connector.Reader, which names
// the dotted path and the JSON kind of a wrong type (data.startTime: want
// number, got string). What is here is Bright Pattern's own: attachedData
// for mapping expressions, and associatedObjects, whose shape is
// undocumented and is therefore read tolerantly.

// reader is connector.Reader with the readers of Bright Pattern's members.
type reader struct{ connector.Reader }

// attached reads attachedData as a map for mapping expressions; absent is
// nil.
func (r *reader) attached(o connector.Object, name string) map[string]any {
	v := o.Get(name)
	if r.Err() != nil || v == nil {
		return nil
	}
	if connector.Kind(v) != "object" {
		r.WrongType(o, name, "object")
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(v, &m); err != nil {
		// The only failure left for valid JSON is a number too large for
		// float64; say so rather than quote encoding/json's Go types.
		num := "a number"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			num = connector.Clip(te.Value)
		}
		r.Fail(connector.BadPayload(o.At(name), "%s is out of range", num))
		return nil
	}
	return m
}

// crmObjects reads associatedObjects. Bright Pattern documents each object
// ({id, type, displayName, displayType, customFields}) but not the container
// holding them, so this accepts an array of objects, or an object whose
// values are objects or arrays of them, keeps document order, and skips
// entries that are not objects with an id instead of rejecting the event.
func (r *reader) crmObjects(o connector.Object, name string) []connector.CRMObject {
	v := o.Get(name)
	if r.Err() != nil || v == nil {
		return nil
	}
	var out []connector.CRMObject
	switch connector.Kind(v) {
	case "array":
		out = appendCRMObjects(out, v)
	case "object":
		for _, m := range members(v) {
			out = appendCRMObjects(out, m)
		}
	default:
		r.WrongType(o, name, "object or array")
	}
	return out
}

// appendCRMObjects appends v when it is an associated object, or the
// associated objects among its elements when it is an array.
func appendCRMObjects(out []connector.CRMObject, v json.RawMessage) []connector.CRMObject {
	switch connector.Kind(v) {
	case "array":
		var elems []json.RawMessage
		_ = json.Unmarshal(v, &elems)
		for _, e := range elems {
			if connector.Kind(e) == "object" {
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
	switch connector.Kind(v) {
	case "string":
		var s string
		_ = json.Unmarshal(v, &s)
		return strings.TrimSpace(s)
	case "number":
		return string(bytes.TrimSpace(v))
	}
	return ""
}
