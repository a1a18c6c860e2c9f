package mapping

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // date_in's zones work on hosts without a zoneinfo database

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/nyaruka/phonenumbers"
)

// function is one function mapping expressions may call: its documentation,
// and either its implementation or, for the few expr built-ins kept as they
// are, nothing.
type function struct {
	name    string
	sig     string // as an admin writes the call, optional arguments in brackets
	doc     string // one line
	example string
	builtin bool // an expr built-in, enabled as it is

	fn    func(args ...any) (any, error)
	types []any // the signatures expr checks calls against; none: any arguments
	// check looks at a call's arguments when the mapping is loaded, such as
	// a lookup table's name, and returns which argument is wrong and why.
	check func(args []ast.Node) (arg int, msg string)
}

// funcEnv is what the functions need of the Set they belong to.
type funcEnv struct {
	lookups  map[string]map[string]any
	redactor *redactor
	region   string // e164's default region
}

// functions returns the functions expressions may call, bound to e.
func functions(e *funcEnv) []*function {
	return []*function{
		{
			name:    "lookup",
			sig:     "lookup(table, value[, default])",
			doc:     "the value's entry in [lookups.table]; default (or nothing) when the value is missing or not in the table",
			example: `lookup("dispositions", disposition?.name, "Other")`,
			fn:      e.lookup,
			types:   []any{new(func(string, any) any), new(func(string, any, any) any)},
			check:   e.checkLookup,
		},
		{
			name:    "coalesce",
			sig:     "coalesce(a, b, …)",
			doc:     "the first of its arguments that is neither nothing (nil) nor empty text",
			example: `coalesce(ani, phone, "unknown")`,
			fn:      coalesce,
			check:   atLeast(1),
		},
		{
			name:    "e164",
			sig:     "e164(number[, region])",
			doc:     "the phone number in E.164 form (+4930123456), reading national numbers as numbers of region (such as \"DE\"); extensions and numbers that are not valid stay as they are",
			example: `e164(attached.callback, "DE")`,
			fn:      e.e164,
			types:   []any{new(func(any) any), new(func(any, string) any)},
			check:   checkRegion,
		},
		{
			name:    "date_in",
			sig:     "date_in(time, zone[, layout])",
			doc:     "the time as text in a time zone; layout is \"date\", \"time\", \"datetime\" (the default), \"iso\", or an example of 2006-01-02 15:04:05 written the way you want it",
			example: `date_in(start, "Europe/Berlin", "02.01.2006 15:04")`,
			fn:      dateIn,
			types:   []any{new(func(any, string) any), new(func(any, string, string) any)},
			check:   checkDateIn,
		},
		{
			name:    "minutes",
			sig:     "minutes(seconds)",
			doc:     "seconds as whole minutes, rounded up: a 61-second call is 2 minutes",
			example: `minutes(duration)`,
			fn:      minutes,
			types:   []any{new(func(int) int), new(func(float64) int)},
		},
		{
			name:    "truncate",
			sig:     "truncate(text, n[, suffix])",
			doc:     "the text cut to at most n characters, suffix (such as \"…\") included when it is cut; never splits a character",
			example: `truncate(notes, 100, "…")`,
			fn:      truncate,
			types:   []any{new(func(any, int) any), new(func(any, int, string) any)},
			check:   checkTruncate,
		},
		{
			name:    "lower",
			sig:     "lower(text)",
			doc:     "the text in lower case",
			example: `lower(agent.email)`,
			fn:      textFunc("lower", strings.ToLower),
			types:   []any{new(func(any) any)},
		},
		{
			name:    "upper",
			sig:     "upper(text)",
			doc:     "the text in upper case",
			example: `upper(direction)`,
			fn:      textFunc("upper", strings.ToUpper),
			types:   []any{new(func(any) any)},
		},
		{
			name:    "trim",
			sig:     "trim(text)",
			doc:     "the text without spaces and line breaks at its start and end",
			example: `trim(attached.reason)`,
			fn:      textFunc("trim", strings.TrimSpace),
			types:   []any{new(func(any) any)},
		},
		{
			name:    "join",
			sig:     "join(list[, separator])",
			doc:     "the list's items as one text, separated by separator (default \", \"); empty items are left out",
			example: `join([agent.name, queue, campaign], " / ")`,
			fn:      join,
			check:   between(1, 2),
		},
		{
			name:    "redact",
			sig:     "redact(value[, pattern, …])",
			doc:     "the value with card numbers, the [redact] patterns and the given patterns masked; works on text and on the text inside attached data",
			example: `redact(notes)`,
			fn:      e.redact,
			check:   e.checkRedact,
		},
		{
			name:    "string",
			sig:     "string(value)",
			doc:     "the value as text, such as 385 as \"385\", a time as 2026-11-21T14:25:00Z, and a map or list as JSON; nothing stays nothing",
			example: `string(duration * 1000)`,
			fn:      toString,
			types:   []any{new(func(any) string)},
		},
		{name: "len", sig: "len(value)", doc: "the number of characters of a text, or of items in a list or map", example: `len(parties)`, builtin: true},
		{name: "int", sig: "int(value)", doc: "the value as a whole number: int(\"42\") is 42, int(2.7) is 2", example: `int(attached.priority)`, builtin: true},
		{name: "float", sig: "float(value)", doc: "the value as a number with decimals", example: `float(attached.amount)`, builtin: true},
		{name: "round", sig: "round(number)", doc: "the number rounded to the nearest whole number", example: `round(duration / 60)`, builtin: true},
		{name: "replace", sig: "replace(text, old, new)", doc: "the text with every old replaced by new", example: `replace(queue, "_", " ")`, builtin: true},
		{name: "split", sig: "split(text, separator)", doc: "the text cut into a list at each separator", example: `split(attached.tags, ",")`, builtin: true},
		{name: "filter", sig: "filter(list, condition)", doc: "the items of the list for which the condition holds; # or .field is the item", example: `filter(objects, .type == "case")`, builtin: true},
		{name: "map", sig: "map(list, expression)", doc: "the expression's value for each item of the list", example: `map(parties, .name)`, builtin: true},
		{name: "any", sig: "any(list, condition)", doc: "true when the condition holds for at least one item", example: `any(objects, .type == "case")`, builtin: true},
		{name: "all", sig: "all(list, condition)", doc: "true when the condition holds for every item", example: `all(parties, .userId != "")`, builtin: true},
		{name: "none", sig: "none(list, condition)", doc: "true when the condition holds for no item", example: `none(objects, .type == "lead")`, builtin: true},
		{name: "count", sig: "count(list, condition)", doc: "how many items the condition holds for", example: `count(parties, .userId == "")`, builtin: true},
		{name: "find", sig: "find(list, condition)", doc: "the first item the condition holds for, or nothing", example: `find(objects, .type == "case")?.id`, builtin: true},
		{name: "first", sig: "first(list)", doc: "the first item of the list, or nothing when it is empty", example: `first(objects)?.id`, builtin: true},
		{name: "last", sig: "last(list)", doc: "the last item of the list, or nothing when it is empty", example: `last(parties)?.phone`, builtin: true},
	}
}

// exprOption gives expressions fs. It builds expr's function table once
// per Load and adds it to each compile's configuration, which is much
// cheaper than expr.Function per function per compile. The expr built-ins
// that fs does not keep are rejected by compiler.checkCalls, not disabled:
// disabling them costs every compile a pass over all of them.
func exprOption(fs []*function) expr.Option {
	table := map[string]*builtin.Function{}
	for _, f := range fs {
		if f.builtin {
			continue
		}
		ts := make([]reflect.Type, len(f.types))
		for i, t := range f.types {
			ts[i] = reflect.TypeOf(t).Elem()
		}
		table[f.name] = &builtin.Function{Name: f.name, Func: f.fn, Types: ts}
	}
	return func(c *conf.Config) {
		for name, fn := range table {
			c.Functions[name] = fn
		}
	}
}

func (e *funcEnv) lookup(args ...any) (any, error) {
	table, _ := args[0].(string)
	t, ok := e.lookups[table]
	if !ok {
		return nil, fmt.Errorf("lookup: no [lookups.%s] table", table)
	}
	var def any
	if len(args) == 3 {
		def = args[2]
	}
	var v any
	switch k := args[1].(type) {
	case nil:
		return def, nil
	case string:
		v, ok = t[k]
	case int:
		v, ok = t[strconv.Itoa(k)]
	default:
		v, ok = t[fmt.Sprint(k)]
	}
	if !ok {
		return def, nil
	}
	return v, nil
}

func (e *funcEnv) checkLookup(args []ast.Node) (int, string) {
	s, ok := args[0].(*ast.StringNode)
	if !ok {
		return 0, "lookup: the table's name must be written in quotes, such as lookup(\"dispositions\", disposition?.name)"
	}
	if _, ok := e.lookups[s.Value]; !ok {
		names := make([]string, 0, len(e.lookups))
		for n := range e.lookups {
			names = append(names, n)
		}
		return 0, fmt.Sprintf("lookup: no [lookups.%s] table is defined%s", s.Value, suggest(s.Value, names))
	}
	return -1, ""
}

func coalesce(args ...any) (any, error) {
	for _, a := range args {
		if !isEmpty(a) {
			return a, nil
		}
	}
	return nil, nil
}

// e164 writes a phone number in E.164 form. A number already in that form,
// an extension (6 digits or fewer, without +) and anything that does not
// parse as a valid number are returned as they are.
func (e *funcEnv) e164(args ...any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	s, ok := asText(args[0])
	if !ok {
		return nil, fmt.Errorf("e164: %s is not a phone number", describeValue(args[0]))
	}
	region := e.region
	if len(args) == 2 {
		r, _ := args[1].(string)
		region = strings.ToUpper(r)
	}
	if isE164(s) {
		return args[0], nil
	}
	num := strings.TrimSpace(s)
	for _, scheme := range []string{"tel:", "sip:", "sips:"} {
		if len(num) > len(scheme) && strings.EqualFold(num[:len(scheme)], scheme) {
			num = num[len(scheme):]
			break
		}
	}
	if i := strings.IndexAny(num, "@;"); i >= 0 {
		num = num[:i]
	}
	digits := 0
	for _, c := range num {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case strings.ContainsRune(" +-().//", c):
		default:
			return args[0], nil // letters: a name or a SIP user, not a number
		}
	}
	if digits == 0 || digits <= 6 && !strings.HasPrefix(num, "+") {
		return args[0], nil
	}
	if region == "" {
		region = "ZZ" // unknown: only numbers with a country code parse
	}
	n, err := phonenumbers.Parse(num, region)
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return args[0], nil
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

// isE164 reports whether s is already +, then 7 to 15 digits, the first not 0.
func isE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func checkRegion(args []ast.Node) (int, string) {
	if len(args) < 2 {
		return -1, ""
	}
	s, ok := args[1].(*ast.StringNode)
	if !ok {
		return -1, ""
	}
	if !phonenumbers.GetSupportedRegions()[strings.ToUpper(s.Value)] {
		return 1, fmt.Sprintf("e164: %q is not a region; use a two-letter country code such as \"US\", \"GB\" or \"DE\"", s.Value)
	}
	return -1, ""
}

// Layouts date_in knows by name.
var layouts = map[string]string{
	"date":     "2006-01-02",
	"time":     "15:04:05",
	"datetime": "2006-01-02 15:04:05",
	"iso":      time.RFC3339,
}

var zones sync.Map // zone name → *time.Location

func loadZone(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "" || name == "Local" {
		return nil, fmt.Errorf("unknown time zone %q; use a name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"", name)
	}
	zones.Store(name, loc)
	return loc, nil
}

func dateIn(args ...any) (any, error) {
	var t time.Time
	switch v := args[0].(type) {
	case nil:
		return nil, nil
	case time.Time:
		t = v
	case *time.Time:
		if v == nil {
			return nil, nil
		}
		t = *v
	case string:
		if v == "" {
			return nil, nil
		}
		var err error
		if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return nil, fmt.Errorf("date_in: %q is not a time such as 2026-11-21T14:25:00Z", v)
		}
	default:
		return nil, fmt.Errorf("date_in: %s is not a time", describeValue(v))
	}
	zone, _ := args[1].(string)
	loc, err := loadZone(zone)
	if err != nil {
		return nil, fmt.Errorf("date_in: %w", err)
	}
	layout := layouts["datetime"]
	if len(args) == 3 {
		layout, _ = args[2].(string)
		if l, ok := layouts[layout]; ok {
			layout = l
		}
	}
	return t.In(loc).Format(layout), nil
}

func checkDateIn(args []ast.Node) (int, string) {
	if s, ok := args[1].(*ast.StringNode); ok {
		if _, err := loadZone(s.Value); err != nil {
			return 1, "date_in: " + err.Error()
		}
	}
	if len(args) == 3 {
		if s, ok := args[2].(*ast.StringNode); ok {
			if _, named := layouts[s.Value]; !named && !isLayout(s.Value) {
				return 2, fmt.Sprintf("date_in: %q has no parts of a date or time: write the date 2006-01-02 15:04:05 the way you want yours, such as \"02.01.2006 15:04\" for 21.11.2026 14:25, or use \"date\", \"time\", \"datetime\" or \"iso\"", s.Value)
			}
		}
	}
	return -1, ""
}

// isLayout reports whether a Go time layout shows anything of the time.
func isLayout(layout string) bool {
	a := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	b := time.Date(2012, 11, 24, 17, 38, 49, 0, time.FixedZone("X", 3600))
	return a.Format(layout) != b.Format(layout)
}

func minutes(args ...any) (any, error) {
	var s float64
	switch v := args[0].(type) {
	case nil:
		return nil, nil
	case int:
		if v <= 0 {
			return 0, nil
		}
		return (v + 59) / 60, nil
	case int64:
		s = float64(v)
	case float64:
		s = v
	default:
		return nil, fmt.Errorf("minutes: %s is not a number of seconds", describeValue(v))
	}
	if s <= 0 {
		return 0, nil
	}
	return int((s + 59) / 60), nil
}

func truncate(args ...any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("truncate: %s is not text", describeValue(args[0]))
	}
	n, _ := args[1].(int)
	if n < 1 {
		return nil, fmt.Errorf("truncate: the length must be 1 or more, not %d", n)
	}
	suffix := ""
	if len(args) == 3 {
		suffix, _ = args[2].(string)
	}
	if len(s) <= n {
		return args[0], nil // no more bytes than characters allowed
	}
	return truncateText(s, n, suffix), nil
}

func checkTruncate(args []ast.Node) (int, string) {
	if n, ok := args[1].(*ast.IntegerNode); ok && n.Value < 1 {
		return 1, fmt.Sprintf("truncate: the length must be 1 or more, not %d", n.Value)
	}
	return -1, ""
}

// textFunc makes a function of one text argument; nothing stays nothing.
func textFunc(name string, f func(string) string) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		if args[0] == nil {
			return nil, nil
		}
		s, ok := asText(args[0])
		if !ok {
			return nil, fmt.Errorf("%s: %s is not text", name, describeValue(args[0]))
		}
		return f(s), nil
	}
}

func join(args ...any) (any, error) {
	sep := ", "
	if len(args) == 2 {
		s, ok := args[1].(string)
		if !ok {
			return nil, fmt.Errorf("join: the separator must be text, not %s", describeValue(args[1]))
		}
		sep = s
	}
	if args[0] == nil {
		return nil, nil
	}
	v := reflect.ValueOf(args[0])
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
		return nil, fmt.Errorf("join: %s is not a list", describeValue(args[0]))
	}
	var b strings.Builder
	for i := range v.Len() {
		item := v.Index(i).Interface()
		if isEmpty(item) {
			continue
		}
		s, ok := asText(item)
		if !ok {
			return nil, fmt.Errorf("join: item %d, %s, is not text", i+1, describeValue(item))
		}
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

func (e *funcEnv) redact(args ...any) (any, error) {
	var extra []string
	for _, a := range args[1:] {
		p, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("redact: a pattern must be text, not %s", describeValue(a))
		}
		extra = append(extra, p)
	}
	return e.redactor.value(args[0], extra)
}

func (e *funcEnv) checkRedact(args []ast.Node) (int, string) {
	if len(args) == 0 {
		return -1, "redact: the value to redact is missing, such as redact(notes)"
	}
	for i, a := range args[1:] {
		s, ok := a.(*ast.StringNode)
		if !ok {
			return i + 1, "redact: a pattern must be written in quotes, such as redact(notes, '\\d{3}-\\d{2}-\\d{4}')"
		}
		if _, err := e.redactor.compile(s.Value); err != nil {
			return i + 1, "redact: " + err.Error()
		}
	}
	return -1, ""
}

func toString(args ...any) (any, error) {
	switch v := args[0].(type) {
	case nil, string:
		return v, nil
	case *time.Time:
		if v == nil {
			return nil, nil
		}
		return v.Format(time.RFC3339), nil
	case time.Time:
		return v.Format(time.RFC3339), nil
	}
	if isEmpty(args[0]) {
		return nil, nil
	}
	if s, ok := asText(args[0]); ok {
		return s, nil
	}
	b, err := json.Marshal(args[0]) // maps and lists, such as attached
	if err != nil {
		return fmt.Sprint(args[0]), nil
	}
	return string(b), nil
}

func atLeast(n int) func(args []ast.Node) (int, string) {
	return func(args []ast.Node) (int, string) {
		if len(args) < n {
			if n == 1 {
				return -1, "needs at least one argument"
			}
			return -1, fmt.Sprintf("needs at least %d arguments", n)
		}
		return -1, ""
	}
}

func between(lo, hi int) func(args []ast.Node) (int, string) {
	return func(args []ast.Node) (int, string) {
		if len(args) < lo || len(args) > hi {
			return -1, fmt.Sprintf("takes %d to %d arguments, not %d", lo, hi, len(args))
		}
		return -1, ""
	}
}

// asText returns text, numbers and true/false as text.
func asText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	case fmt.Stringer:
		return v.String(), true
	}
	return "", false
}

// describeValue shows a value in an error message, with its kind.
func describeValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing (nil)"
	case string:
		return fmt.Sprintf("the text %q", v)
	case int, int64, float64:
		return fmt.Sprintf("the number %v", v)
	case bool:
		return fmt.Sprintf("%v", v)
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("a %T", v)
}

// isEmpty reports whether v is nothing: nil, a nil pointer, empty text, or
// an empty list or map.
func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case int, int64, float64, bool, time.Time:
		return false
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	case reflect.Map, reflect.Slice:
		return rv.Len() == 0
	}
	return false
}

// isNil reports whether v is nil or a nil pointer, map or slice.
func isNil(v any) bool {
	switch v.(type) {
	case nil:
		return true
	case string, int, int64, float64, bool, time.Time:
		return false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		return rv.IsNil()
	}
	return false
}
