package five9

import (
	"bytes"
	"encoding/json"

	"github.com/ctibridge/ctibridge/connector"
)

// The body is read member by member with connector.Reader, which names the
// dotted path and the JSON kind of a wrong type
// (params.callData.ani: want string, got number), and never fails on
// members nobody reads: the SDK's types are only partly documented. What
// is here is Five9's own: identifiers that come as strings or numbers, and
// CAV values, which are free-form.

// reader is connector.Reader with the readers of Five9's members.
type reader struct{ connector.Reader }

// ident reads an identifier that the SDK sends as a string or a number
// (getMetadata documents agentId as a Number, CRM record ids are strings
// in one CRM and numbers in another); a number is kept as written.
func (r *reader) ident(o connector.Object, name string) string {
	v := o.Get(name)
	if r.Err() != nil || v == nil {
		return ""
	}
	switch connector.Kind(v) {
	case "string":
		return r.Str(o, name)
	case "number":
		return string(bytes.TrimSpace(v))
	}
	r.WrongType(o, name, "string or number")
	return ""
}

// anyValue checks that a free-form value (a CAV's value) decodes for
// mapping expressions, and returns it compacted for the snapshot.
func (r *reader) anyValue(o connector.Object, name string) json.RawMessage {
	raw := o.Get(name)
	if r.Err() != nil || raw == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		// For valid JSON the only failure left is a number beyond float64.
		r.Fail(connector.BadPayload(o.At(name), "a number in it is out of range"))
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		r.Fail(connector.BadPayload(o.At(name), "%v", err))
		return nil
	}
	return b.Bytes()
}
