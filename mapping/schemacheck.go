package mapping

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
)

// CheckSchemas checks every rule whose target and object have a schema
// against it, and returns what the CRM would reject, each problem placed
// in its file: a field the object does not have or that no API call may
// set (at the field's name); a literal value of the wrong type, or not
// one of a picklist's values (at the value); a text field whose max_length
// is unset or above the CRM's limit, so that a longer value would make the
// CRM reject the record (at the field's name). An expression that is not
// a literal is checked for its field's name and length only: what it
// gives is known when an interaction comes.
func (s *Set) CheckSchemas(schemas Schemas) Problems {
	var probs Problems
	for _, r := range s.rules {
		sc := schemas.Lookup(r.target, r.object)
		if sc == nil {
			continue
		}
		for _, f := range r.fields {
			where := fmt.Sprintf("rule %q: field %s", r.name, tomlKey(f.name))
			report := func(off int, format string, args ...any) {
				probs = append(probs, r.src.problem(off, "%s: "+format, append([]any{where}, args...)...))
			}
			if slices.Contains(sc.TargetFields, f.name) {
				continue
			}
			sf := sc.field(f.name)
			switch {
			case sf == nil:
				report(f.at, "%s %s has no field %s%s", sc.CRM, sc.Object, f.name, suggest(f.name, sc.names()))
				continue
			case sf.ReadOnly:
				report(f.at, "%s sets %s itself: no API call may write it", sc.CRM, sf.Name)
				continue
			}
			node := f.prog.Node()
			if v, ok := literal(node); ok {
				if msg := literalProblem(sf, v); msg != "" {
					report(f.prog.offset(0), "%s", msg)
				}
				continue
			}
			if msg := lengthProblem(sf, f.maxLen, node.Type()); msg != "" {
				report(f.at, "%s", msg)
			}
		}
	}
	return probs
}

// literal returns the value of n when n is a literal (or folded into one).
func literal(n ast.Node) (any, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.IntegerNode:
		return int64(n.Value), true
	case *ast.FloatNode:
		return n.Value, true
	case *ast.BoolNode:
		return n.Value, true
	case *ast.NilNode:
		return nil, true
	case *ast.ConstantNode:
		switch v := n.Value.(type) {
		case string, bool, float64, nil:
			return v, true
		case int:
			return int64(v), true
		case int64:
			return v, true
		}
	}
	return nil, false
}

// literalProblem says what is wrong with writing the literal v into f, or
// returns "".
func literalProblem(f *SchemaField, v any) string {
	if v == nil {
		return "" // nothing: the field is left empty, or out with omit_empty
	}
	s, isText := v.(string)
	want := ""
	switch f.Type {
	case TypeText, TypeReference:
		if !isText {
			want = "text"
		} else if n := utf8.RuneCountInString(s); f.MaxLength > 0 && n > f.MaxLength {
			return fmt.Sprintf("the text is %d characters; %s takes at most %d", n, f.Name, f.MaxLength)
		}
	case TypeInteger:
		if _, ok := v.(int64); !ok && !(isText && reInteger.MatchString(s)) {
			want = "a whole number"
		}
	case TypeNumber:
		switch v.(type) {
		case int64, float64:
		default:
			if !(isText && reNumber.MatchString(s)) {
				want = "a number"
			}
		}
	case TypeBoolean:
		if _, ok := v.(bool); !ok && !(isText && (s == "true" || s == "false")) {
			want = "true or false"
		}
	case TypeDate:
		if !isText || !reDate.MatchString(s) {
			want = "a date such as \"2026-03-02\""
		}
	case TypeDateTime:
		if _, ok := v.(int64); !ok && !(isText && (reDateTime.MatchString(s) || reInteger.MatchString(s))) {
			want = "a time such as \"2026-03-02T09:30:00Z\", or milliseconds since 1970"
		}
	case TypePicklist, TypeMultiPicklist:
		if !isText {
			want = "one of its picklist values, in quotes"
			break
		}
		if f.OpenPicklist || len(f.Picklist) == 0 {
			return ""
		}
		vals := []string{s}
		if f.Type == TypeMultiPicklist {
			vals = strings.Split(s, ";")
		}
		for _, val := range vals {
			if !slices.Contains(f.Picklist, val) {
				return fmt.Sprintf("%q is not one of %s's picklist values (%s)%s", val, f.Name, strings.Join(f.Picklist, ", "), suggest(val, f.Picklist))
			}
		}
	}
	if want == "" {
		return ""
	}
	return fmt.Sprintf("%s takes %s, not %s", f.Name, want, describe(v))
}

// lengthProblem says when a value of type t may exceed text field f's
// limit with max_length maxLen (0: unset), or returns "".
func lengthProblem(f *SchemaField, maxLen int, t reflect.Type) string {
	if f.Type != TypeText || f.MaxLength == 0 {
		return ""
	}
	if t != nil && t.Kind() != reflect.String && t.Kind() != reflect.Interface {
		return "" // a number, a time or true/false is short
	}
	switch {
	case maxLen == 0:
		return fmt.Sprintf("may exceed %s's limit of %d characters, and the CRM would reject the record: set max_length = %d", f.Name, f.MaxLength, f.MaxLength)
	case maxLen > f.MaxLength:
		return fmt.Sprintf("may exceed %s's limit of %d characters: max_length is %d", f.Name, f.MaxLength, maxLen)
	}
	return ""
}
