package mapping

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// A mapping file is read twice: go-toml decodes it into plain values, which
// settles TOML's own rules (syntax, duplicate keys, redefined tables), and
// go-toml's unstable parser walks it again to find where every key and value
// is, so that each problem can name its line and column. The plain values are
// then checked against the format below, reporting every problem at once.

// Keys a file, a rule, a field, and [redact] may hold.
var (
	fileKeys   = []string{"rule", "lookups", "redact"}
	ruleKeys   = []string{"name", "target", "object", "when", "key", "fields", "omit_empty"}
	fieldKeys  = []string{"expr", "max_length", "omit_empty", "required", "redact"}
	redactKeys = []string{"patterns", "all_fields"}
)

// fileSpec is one mapping file as written, with the places of its parts.
type fileSpec struct {
	src     *source
	rules   []*ruleSpec
	lookups []*lookupSpec
	redact  redactSpec
}

// text is a string value and where it is: at is the byte offset of the
// value, start and end delimit the string token, quotes included.
type text struct {
	s          string
	set        bool
	at         int
	start, end int
}

type flag struct {
	v, set bool
	at     int
}

type ruleSpec struct {
	at                   int // the [[rule]] header
	index                int // 1-based, within the file
	name, target, object text
	when, key            text
	omitEmpty            flag
	fields               []*fieldSpec
	fieldsAt             int
	nameOK               bool
}

// where names the rule in messages: by its name once it has one.
func (rs *ruleSpec) where() string {
	if rs.nameOK {
		return fmt.Sprintf("rule %q", rs.name.s)
	}
	return fmt.Sprintf("rule %d", rs.index)
}

type fieldSpec struct {
	name      string
	at        int // the field's key
	expr      text
	maxLen    int
	maxLenAt  int
	omitEmpty flag
	required  flag
	redact    flag
}

type lookupSpec struct {
	name   string
	at     int
	values map[string]any
}

type redactSpec struct {
	patterns  []text
	allFields flag
}

// span is where a key and its value are in a file, as byte offsets; -1 when
// unknown. start and end delimit a string value's token.
type span struct {
	key, val   int
	start, end int
}

// parseFile reads f. It returns nil and the problem when f is not valid
// TOML, and otherwise what it could read and every problem it found.
func parseFile(f File) (*fileSpec, Problems) {
	src := newSource(f)
	var doc map[string]any
	if err := toml.Unmarshal(f.Data, &doc); err != nil {
		return nil, Problems{syntaxProblem(src, err)}
	}
	pos, _ := indexPositions(f.Data)
	r := &reader{src: src, pos: pos}
	spec := &fileSpec{src: src}
	r.keys(nil, doc, fileKeys, "at the top of a mapping file (expected [[rule]], [lookups.NAME] or [redact])")
	if v, ok := doc["rule"]; ok {
		spec.rules = r.rules(v)
	}
	if v, ok := doc["lookups"]; ok {
		spec.lookups = r.lookups(v)
	}
	if v, ok := doc["redact"]; ok {
		spec.redact = r.redact(v)
	}
	return spec, r.probs
}

// syntaxProblem turns a go-toml error into a Problem at its place.
func syntaxProblem(src *source, err error) Problem {
	var derr *toml.DecodeError
	if errors.As(err, &derr) {
		line, col := derr.Position()
		msg := strings.TrimPrefix(derr.Error(), "toml: ")
		return src.problem(src.offset(line, col), "not valid TOML: %s", msg)
	}
	// go-toml reports keys and tables defined twice without a place: find
	// the place ourselves.
	_, at := indexPositions(src.data)
	return src.problem(at, "not valid TOML: %s", strings.TrimPrefix(err.Error(), "toml: "))
}

type reader struct {
	src   *source
	pos   map[string]span
	probs Problems
}

func pathKey(path []string) string { return strings.Join(path, "\x00") }

func child(path []string, k ...string) []string {
	return append(slices.Clip(path), k...)
}

// at returns where the value at path is, or else its nearest ancestor.
func (r *reader) at(path []string) span {
	for n := len(path); n > 0; n-- {
		if s, ok := r.pos[pathKey(path[:n])]; ok {
			return s
		}
	}
	return span{key: -1, val: -1, start: -1, end: -1}
}

func (r *reader) keyAt(path []string) int { return r.at(path).key }
func (r *reader) valAt(path []string) int { return r.at(path).val }

func (r *reader) problem(off int, format string, args ...any) {
	r.probs = append(r.probs, r.src.problem(off, format, args...))
}

// keys reports every key of m that is not one of known.
func (r *reader) keys(path []string, m map[string]any, known []string, where string) {
	for k := range m {
		if !slices.Contains(known, k) {
			r.problem(r.keyAt(child(path, k)), "unknown key %q %s%s", k, where, suggest(k, known))
		}
	}
}

// table returns v as a table, or reports that it is not one.
func (r *reader) table(path []string, v any, what string) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		r.problem(r.valAt(path), "%s must be a table, not %s", what, kindOf(v))
	}
	return m, ok
}

// str reads the text at path in m, if it is there.
func (r *reader) str(path []string, m map[string]any, k, what string) text {
	v, ok := m[k]
	if !ok {
		return text{}
	}
	p := child(path, k)
	sp := r.at(p)
	s, ok := v.(string)
	if !ok {
		r.problem(sp.val, "%s must be text in quotes, not %s", what, kindOf(v))
		return text{}
	}
	return text{s: s, set: true, at: sp.val, start: sp.start, end: sp.end}
}

// flag reads the true/false value at path in m, if it is there.
func (r *reader) flag(path []string, m map[string]any, k, what string) flag {
	v, ok := m[k]
	if !ok {
		return flag{}
	}
	at := r.valAt(child(path, k))
	b, ok := v.(bool)
	if !ok {
		r.problem(at, "%s must be true or false, not %s", what, kindOf(v))
		return flag{}
	}
	return flag{v: b, set: true, at: at}
}

func (r *reader) rules(v any) []*ruleSpec {
	path := []string{"rule"}
	list, ok := v.([]any)
	if !ok {
		r.problem(r.keyAt(path), "rules are written [[rule]], with two brackets, not %s", kindOf(v))
		return nil
	}
	var rules []*ruleSpec
	for i, e := range list {
		p := child(path, strconv.Itoa(i))
		rs := &ruleSpec{index: i + 1, at: r.keyAt(p)}
		m, ok := e.(map[string]any)
		if !ok {
			r.problem(r.valAt(p), "a rule must be a table, not %s", kindOf(e))
			continue
		}
		r.rule(p, m, rs)
		rules = append(rules, rs)
	}
	return rules
}

func (r *reader) rule(path []string, m map[string]any, rs *ruleSpec) {
	rs.name = r.str(path, m, "name", rs.where()+": name")
	switch {
	case !rs.name.set:
	case strings.TrimSpace(rs.name.s) != rs.name.s || rs.name.s == "":
		r.problem(rs.name.at, "%s: name %q must not be empty or start or end with a space", rs.where(), rs.name.s)
	default:
		rs.nameOK = true
	}
	where := rs.where()
	r.keys(path, m, ruleKeys, "in "+where+" (a rule has name, target, object, when, key, fields, omit_empty)")
	rs.target = r.str(path, m, "target", where+": target")
	rs.object = r.str(path, m, "object", where+": object")
	rs.when = r.str(path, m, "when", where+": when")
	rs.key = r.str(path, m, "key", where+": key")
	rs.omitEmpty = r.flag(path, m, "omit_empty", where+": omit_empty")
	var missing []string
	for _, k := range []string{"name", "target", "object", "fields"} {
		if _, ok := m[k]; !ok {
			missing = append(missing, k)
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		r.problem(rs.at, "%s: %s is required", where, missing[0])
	default:
		r.problem(rs.at, "%s: %s and %s are required", where, strings.Join(missing[:len(missing)-1], ", "), missing[len(missing)-1])
	}
	if rs.target.set && strings.TrimSpace(rs.target.s) == "" {
		r.problem(rs.target.at, "%s: target must not be empty", where)
	}
	if rs.object.set && strings.TrimSpace(rs.object.s) == "" {
		r.problem(rs.object.at, "%s: object must not be empty", where)
	}
	v, ok := m["fields"]
	if !ok {
		return
	}
	fp := child(path, "fields")
	rs.fieldsAt = r.keyAt(fp)
	fields, ok := r.table(fp, v, where+": fields")
	if !ok {
		return
	}
	if len(fields) == 0 {
		r.problem(rs.fieldsAt, "%s: fields: at least one field is required", where)
	}
	for name, fv := range fields {
		if f := r.field(child(fp, name), name, fv, where); f != nil {
			rs.fields = append(rs.fields, f)
		}
	}
	slices.SortFunc(rs.fields, func(a, b *fieldSpec) int { return a.at - b.at })
}

// field reads one field: an expression, or a table with the expression and
// its options.
func (r *reader) field(path []string, name string, v any, where string) *fieldSpec {
	f := &fieldSpec{name: name, at: r.keyAt(path), maxLenAt: -1}
	where = fmt.Sprintf("%s: field %s", where, tomlKey(name))
	if name == "" {
		r.problem(f.at, "%s: a field name must not be empty", where)
		return nil
	}
	switch v := v.(type) {
	case string:
		sp := r.at(path)
		f.expr = text{s: v, set: true, at: sp.val, start: sp.start, end: sp.end}
		return f
	case map[string]any:
		r.keys(path, v, fieldKeys, "in "+where+" (a field has expr, max_length, omit_empty, required, redact)")
		f.expr = r.str(path, v, "expr", where+": expr")
		if _, ok := v["expr"]; !ok {
			r.problem(f.at, "%s: expr is required, such as %s = { expr = 'subject', max_length = 255 }", where, tomlKey(name))
		}
		if ml, ok := v["max_length"]; ok {
			f.maxLenAt = r.valAt(child(path, "max_length"))
			n, ok := ml.(int64)
			if !ok || n < 1 || n > 1<<31 {
				r.problem(f.maxLenAt, "%s: max_length must be a whole number of characters, 1 or more, not %s", where, describe(ml))
			} else {
				f.maxLen = int(n)
			}
		}
		f.omitEmpty = r.flag(path, v, "omit_empty", where+": omit_empty")
		f.required = r.flag(path, v, "required", where+": required")
		f.redact = r.flag(path, v, "redact", where+": redact")
		if f.required.v && f.omitEmpty.v {
			r.problem(f.omitEmpty.at, "%s: a required field cannot also be omitted when empty: remove omit_empty or required", where)
		}
		if !f.expr.set {
			return nil
		}
		return f
	default:
		r.problem(r.valAt(path), "%s must be an expression in quotes, or a table such as { expr = '…', max_length = 255 }, not %s", where, kindOf(v))
		return nil
	}
}

func (r *reader) lookups(v any) []*lookupSpec {
	path := []string{"lookups"}
	m, ok := r.table(path, v, "lookups")
	if !ok {
		return nil
	}
	var out []*lookupSpec
	for name, tv := range m {
		p := child(path, name)
		t, ok := tv.(map[string]any)
		if !ok {
			r.problem(r.valAt(p), "lookups.%s must be a table, written [lookups.%s], not %s", name, name, kindOf(tv))
			continue
		}
		ls := &lookupSpec{name: name, at: r.keyAt(p), values: make(map[string]any, len(t))}
		for k, val := range t {
			switch val.(type) {
			case string, int64, float64, bool:
				ls.values[k] = val
			default:
				r.problem(r.valAt(child(p, k)), "lookups.%s: the value for %q must be text, a number or true/false, not %s", name, k, kindOf(val))
			}
		}
		out = append(out, ls)
	}
	slices.SortFunc(out, func(a, b *lookupSpec) int { return a.at - b.at })
	return out
}

func (r *reader) redact(v any) redactSpec {
	var rs redactSpec
	path := []string{"redact"}
	m, ok := r.table(path, v, "redact")
	if !ok {
		return rs
	}
	r.keys(path, m, redactKeys, "in [redact] (expected patterns, all_fields)")
	rs.allFields = r.flag(path, m, "all_fields", "redact.all_fields")
	pv, ok := m["patterns"]
	if !ok {
		return rs
	}
	pp := child(path, "patterns")
	list, ok := pv.([]any)
	if !ok {
		r.problem(r.valAt(pp), "redact.patterns must be a list of patterns in quotes, such as ['\\d{3}-\\d{2}-\\d{4}'], not %s", kindOf(pv))
		return rs
	}
	for i, e := range list {
		ep := child(pp, strconv.Itoa(i))
		sp := r.at(ep)
		s, ok := e.(string)
		if !ok {
			r.problem(sp.val, "redact.patterns: each pattern must be text in quotes, not %s", kindOf(e))
			continue
		}
		rs.patterns = append(rs.patterns, text{s: s, set: true, at: sp.val, start: sp.start, end: sp.end})
	}
	return rs
}

// kindOf names the kind of a decoded TOML value for an admin.
func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "text"
	case int64:
		return "a whole number"
	case float64:
		return "a number"
	case bool:
		return "true/false"
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	case time.Time, toml.LocalDate, toml.LocalDateTime, toml.LocalTime:
		return "a date or time"
	}
	return fmt.Sprintf("%T", v)
}

// describe shows a decoded value and its kind.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the text %q", v)
	case int64, float64:
		return fmt.Sprint(v)
	}
	return kindOf(v)
}

// tomlKey writes k as a TOML key, quoted when it must be.
func tomlKey(k string) string {
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return strconv.Quote(k)
		}
	}
	return k
}

// indexPositions walks data with go-toml's parser and records where every
// key and value is, by path: table keys, and the index for elements of
// arrays and arrays of tables. It also returns the offset of the first key
// that TOML forbids where it is (a key or table defined twice), or -1: the
// decoder reports those without a place.
func indexPositions(data []byte) (map[string]span, int) {
	pos := map[string]span{}
	count := map[string]int{} // arrays of tables: how many elements so far
	kind := map[string]byte{} // 'v' value, 't' table, 'a' array of tables, 'i' implicit table
	conflict := -1
	clash := func(at int) {
		if conflict < 0 {
			conflict = at
		}
	}
	var p unstable.Parser
	p.Reset(data)
	var cur []string

	// resolve extends base by keys, which name tables, entering the last
	// element of every array of tables on the way and recording the place
	// of each table it passes.
	resolve := func(base []string, keys []keyTok) []string {
		path := slices.Clone(base)
		for _, k := range keys {
			path = append(path, k.name)
			pk := pathKey(path)
			if _, ok := pos[pk]; !ok {
				pos[pk] = span{key: k.at, val: k.at, start: -1, end: -1}
			}
			switch kind[pk] {
			case 0:
				kind[pk] = 'i'
			case 'v':
				clash(k.at)
			}
			if n, ok := count[pk]; ok {
				path = append(path, strconv.Itoa(n-1))
			}
		}
		return path
	}
	var keyval func(base []string, n *unstable.Node)
	var value func(path []string, n *unstable.Node, at int)
	value = func(path []string, n *unstable.Node, at int) {
		sp := span{key: at, val: at, start: -1, end: -1}
		if prev, ok := pos[pathKey(path)]; ok {
			sp.key = prev.key
		}
		if n.Kind == unstable.String && n.Raw.Length > 0 {
			sp.val = int(n.Raw.Offset)
			sp.start, sp.end = int(n.Raw.Offset), int(n.Raw.Offset+n.Raw.Length)
		}
		pos[pathKey(path)] = sp
		switch n.Kind {
		case unstable.InlineTable:
			it := n.Children()
			for it.Next() {
				keyval(path, it.Node())
			}
		case unstable.Array:
			it := n.Children()
			for i := 0; it.Next(); i++ {
				c := it.Node()
				cat := sp.val
				if c.Raw.Length > 0 {
					cat = int(c.Raw.Offset)
				}
				value(child(path, strconv.Itoa(i)), c, cat)
			}
		}
	}
	keyval = func(base []string, n *unstable.Node) {
		keys := keysOf(n.Key())
		if len(keys) == 0 {
			return
		}
		path := resolve(base, keys[:len(keys)-1])
		last := keys[len(keys)-1]
		path = append(path, last.name)
		pk := pathKey(path)
		if kind[pk] != 0 {
			clash(last.at)
		}
		kind[pk] = 'v'
		pos[pk] = span{key: last.at, val: last.at, start: -1, end: -1}
		value(path, n.Value(), valueStart(data, last.end))
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			keys := keysOf(e.Key())
			if len(keys) == 0 {
				continue
			}
			last := keys[len(keys)-1]
			cur = resolve(nil, keys[:len(keys)-1])
			cur = append(cur, last.name)
			pk := pathKey(cur)
			if _, ok := pos[pk]; !ok {
				pos[pk] = span{key: last.at, val: last.at, start: -1, end: -1}
			}
			switch kind[pk] {
			case 0, 'i':
				kind[pk] = 't'
			default:
				clash(last.at)
			}
			if n, ok := count[pk]; ok {
				cur = append(cur, strconv.Itoa(n-1))
			}
		case unstable.ArrayTable:
			keys := keysOf(e.Key())
			if len(keys) == 0 {
				continue
			}
			parent := resolve(nil, keys[:len(keys)-1])
			last := keys[len(keys)-1]
			ap := child(parent, last.name)
			pk := pathKey(ap)
			if _, ok := pos[pk]; !ok {
				pos[pk] = span{key: last.at, val: last.at, start: -1, end: -1}
			}
			switch kind[pk] {
			case 0, 'a':
				kind[pk] = 'a'
			default:
				clash(last.at)
			}
			n := count[pk]
			count[pk] = n + 1
			cur = child(ap, strconv.Itoa(n))
			at := headerStart(data, keys[0].at)
			pos[pathKey(cur)] = span{key: at, val: at, start: -1, end: -1}
		case unstable.KeyValue:
			keyval(cur, e)
		}
	}
	if p.Error() != nil {
		clash(-1)
	}
	return pos, conflict
}

// headerStart returns the offset of the '[' that opens the table header
// whose first key is at off.
func headerStart(data []byte, off int) int {
	i := off
	for i > 0 && (data[i-1] == ' ' || data[i-1] == '\t' || data[i-1] == '[') {
		i--
	}
	return i
}

type keyTok struct {
	name    string
	at, end int
}

func keysOf(it unstable.Iterator) []keyTok {
	var keys []keyTok
	for it.Next() {
		n := it.Node()
		keys = append(keys, keyTok{name: string(n.Data), at: int(n.Raw.Offset), end: int(n.Raw.Offset + n.Raw.Length)})
	}
	return keys
}

// valueStart returns the offset of the value after a key ending at off:
// past spaces, the '=' and spaces.
func valueStart(data []byte, off int) int {
	i := off
	for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	if i < len(data) && data[i] == '=' {
		i++
	}
	for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	return i
}

// suggest returns "; did you mean X?" when one of options is close to s:
// a typo or two away, or starting with s.
func suggest(s string, options []string) string {
	if len(s) > 64 {
		return ""
	}
	best, bestD := "", 3
	for _, o := range options {
		d := distance(strings.ToLower(s), strings.ToLower(o))
		if d < bestD || (d == bestD && best != "" && o < best) {
			best, bestD = o, d
		}
	}
	if best != "" && (bestD <= max(1, len([]rune(s))/3) || strings.EqualFold(s, best)) {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	if len(s) >= 3 {
		for _, o := range options {
			if strings.HasPrefix(strings.ToLower(o), strings.ToLower(s)) {
				return fmt.Sprintf("; did you mean %q?", o)
			}
		}
	}
	return ""
}

// distance is the edit distance between a and b, counting a swap of two
// neighbouring letters as one edit, as typos usually are.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
