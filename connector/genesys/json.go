package genesys

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ctibridge/ctibridge/connector"
)

// Messages are read member by member with connector.Reader, not
// unmarshalled into structs: a wrong type is then reported with its dotted
// path and JSON type (data.interaction.callUuid: want string, got number),
// and the members ctibridge does not read, which Genesys adds from release
// to release, cost nothing.

// reader is connector.Reader with the readers of Genesys's members.
type reader struct{ connector.Reader }

// firstStr reads the first of names that is set: agent.get and GWS spell
// some members differently between releases (firstName, firstname).
func (r *reader) firstStr(o connector.Object, names ...string) string {
	for _, name := range names {
		if s := r.Str(o, name); s != "" {
			return s
		}
	}
	return ""
}

// firstID is firstStr for an id, which becomes Interaction.Leg and a part
// of activity keys: the first member of names that is set, refused when
// connector.CheckID refuses it.
func (r *reader) firstID(o connector.Object, names ...string) string {
	for _, name := range names {
		if s := r.ID(o, name); s != "" {
			return s
		}
	}
	return ""
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
