package genesys

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"

	"github.com/ctibridge/ctibridge/connector"
)

// Bounds on the userData copied into the snapshot and into
// Interaction.Attached. Genesys lets strategies attach anything (email
// headers, whole JSON documents); the snapshot is read and written again by
// every later event of the interaction, so a 1 MB userData must not make
// every one of them a 1 MB read and write. Real attached data is a few dozen
// short keys, well inside these bounds. What is cut is reported by
// Attached["ctibridge_truncated"].
const (
	maxUserDataKeys  = 100
	maxKeyBytes      = 128
	maxValueBytes    = 2 << 10  // per value, as JSON; longer strings are cut
	maxUserDataBytes = 32 << 10 // all keys and values, as stored
)

// boundedUserData is a userData object cut to the bounds.
type boundedUserData struct {
	m         map[string]any
	truncated bool
}

// userData reads member name, a userData object, keeping the keys of
// priority first (the disposition and other keys ctibridge reads, so that
// they survive however large the rest is) and then the others in key order,
// so that what is kept does not depend on how the browser ordered them.
// ok is false when the member is absent.
func (r *reader) userData(n connector.Object, name string, priority []string) (ud boundedUserData, ok bool) {
	u, ok := r.Obj(n, name)
	if !ok {
		return ud, false
	}
	keys := u.Names()
	order := make([]string, 0, len(keys))
	for _, k := range priority {
		if _, ok := slices.BinarySearch(keys, k); ok && !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	for _, k := range keys {
		if !slices.Contains(priority, k) {
			order = append(order, k)
		}
	}

	ud.m = make(map[string]any, min(len(order), maxUserDataKeys))
	size := 0
	for _, k := range order {
		val := u.Get(k) // nil for null, which decodeValue also makes nil
		switch {
		case len(ud.m) == maxUserDataKeys, k == "", len(k) > maxKeyBytes:
			ud.truncated = true
			continue
		case len(val) > maxValueBytes && connector.Kind(val) == "string":
			var s string
			_ = json.Unmarshal(val, &s)
			val, _ = json.Marshal(truncate(s, maxValueBytes-16))
			ud.truncated = true
		case len(val) > maxValueBytes:
			ud.truncated = true
			continue
		}
		// Sizes are counted as the snapshot will store them: escaping can
		// make a value several times longer than it came.
		x := decodeValue(val)
		n := encodedLen(k) + encodedLen(x)
		if size+n > maxUserDataBytes {
			ud.truncated = true
			continue
		}
		size += n
		ud.m[k] = x
	}
	return ud, true
}

// encodedLen is the length of v as JSON.
func encodedLen(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return maxUserDataBytes + 1 // unreachable for decoded JSON; never kept
	}
	return len(b)
}

// decodeValue decodes a JSON value for mapping expressions: numbers become
// float64, as encoding/json makes them, except those float64 cannot hold,
// which stay as written (a string) rather than fail the event.
func decodeValue(v json.RawMessage) any {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil
	}
	return numbers(x)
}

func numbers(x any) any {
	switch x := x.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsInf(f, 0) {
			return string(x)
		}
		return f
	case map[string]any:
		for k, v := range x {
			x[k] = numbers(v)
		}
	case []any:
		for i, v := range x {
			x[i] = numbers(v)
		}
	}
	return x
}
