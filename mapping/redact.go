package mapping

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// redacted replaces what a redaction pattern matches.
const redacted = "[redacted]"

// redactor masks card numbers, and what the admin's patterns match, in
// text and in the text inside maps and lists.
type redactor struct {
	patterns []*regexp.Regexp // from [redact] patterns
	all      bool             // [redact] all_fields: every field is redacted
	extra    sync.Map         // patterns given to redact() calls: source → *regexp.Regexp
}

// compile compiles a pattern given to a redact() call, once.
func (r *redactor) compile(pattern string) (*regexp.Regexp, error) {
	if re, ok := r.extra.Load(pattern); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := compilePattern(pattern)
	if err != nil {
		return nil, err
	}
	r.extra.Store(pattern, re)
	return re, nil
}

func compilePattern(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, fmt.Errorf("the pattern is empty")
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "error parsing regexp: ")
		return nil, fmt.Errorf("%q is not a valid pattern: %s", pattern, msg)
	}
	if re.MatchString("") {
		return nil, fmt.Errorf("%q matches empty text, so it would mask everywhere", pattern)
	}
	return re, nil
}

// value returns v with card numbers and patterns masked in every text it
// holds. Maps and lists are copied only when something in them changes.
func (r *redactor) value(v any, extra []string) (any, error) {
	res := make([]*regexp.Regexp, 0, len(r.patterns)+len(extra))
	res = append(res, r.patterns...)
	for _, p := range extra {
		re, err := r.compile(p)
		if err != nil {
			return nil, fmt.Errorf("redact: %w", err)
		}
		res = append(res, re)
	}
	out, _ := redactValue(v, res)
	return out, nil
}

func redactValue(v any, res []*regexp.Regexp) (any, bool) {
	switch v := v.(type) {
	case string:
		s, changed := redactText(v, res)
		if !changed {
			return v, false
		}
		return s, true
	case map[string]any:
		var out map[string]any
		for k, e := range v {
			re, changed := redactValue(e, res)
			if !changed {
				continue
			}
			if out == nil {
				out = make(map[string]any, len(v))
				for k, e := range v {
					out[k] = e
				}
			}
			out[k] = re
		}
		if out == nil {
			return v, false
		}
		return out, true
	case []any:
		var out []any
		for i, e := range v {
			re, changed := redactValue(e, res)
			if !changed {
				continue
			}
			if out == nil {
				out = append([]any(nil), v...)
			}
			out[i] = re
		}
		if out == nil {
			return v, false
		}
		return out, true
	}
	return v, false
}

// redactText masks card numbers, then what each pattern matches: the
// pattern's groups when it has any, else the whole match.
func redactText(s string, res []*regexp.Regexp) (string, bool) {
	s, changed := maskCards(s)
	for _, re := range res {
		ms := re.FindAllStringSubmatchIndex(s, -1)
		if ms == nil {
			continue
		}
		var b strings.Builder
		last := 0
		for _, m := range ms {
			spans := [][2]int{{m[0], m[1]}}
			if len(m) > 2 {
				spans = spans[:0]
				for g := 2; g+1 < len(m); g += 2 {
					if m[g] >= 0 && m[g] >= last {
						spans = append(spans, [2]int{m[g], m[g+1]})
					}
				}
			}
			for _, sp := range spans {
				if sp[0] < last {
					continue
				}
				b.WriteString(s[last:sp[0]])
				b.WriteString(redacted)
				last = sp[1]
			}
		}
		b.WriteString(s[last:])
		if out := b.String(); out != s {
			s, changed = out, true
		}
	}
	return s, changed
}

// maskCards replaces the digits of every card number in s with '*', except
// the last four. A card number is 13 to 19 digits that pass the Luhn check,
// written together or in groups separated by single spaces or dashes
// ("4111 1111 1111 1111"). Digits after a '+' are a phone number, not a card.
func maskCards(s string) (string, bool) {
	var out []byte
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		// A run: digits, with single separators between them.
		start, n := i, 0
		for i < len(s) {
			if isDigit(s[i]) {
				n++
			} else if !((s[i] == ' ' || s[i] == '-') && i+1 < len(s) && isDigit(s[i+1])) {
				break
			}
			i++
		}
		if n < 13 || start > 0 && s[start-1] == '+' {
			continue
		}
		digits := make([]int, 0, n) // byte offsets of the run's digits
		groups := []int{0}          // where each group starts, in digits
		for j := start; j < i; j++ {
			if isDigit(s[j]) {
				digits = append(digits, j)
			} else {
				groups = append(groups, len(digits))
			}
		}
		groups = append(groups, len(digits))
		// Try windows of whole groups, the longest card number first from
		// each start; a window never spans more than 19 digits, so this is
		// linear in the length of the run.
		for a := 0; a < len(groups)-1; {
			found := -1
			for b := a + 1; b < len(groups) && groups[b]-groups[a] <= 19; b++ {
				if groups[b]-groups[a] >= 13 && luhn(s, digits[groups[a]:groups[b]]) {
					found = b
				}
			}
			if found < 0 {
				a++
				continue
			}
			if out == nil {
				out = []byte(s)
			}
			for _, d := range digits[groups[a] : groups[found]-4] {
				out[d] = '*'
			}
			a = found
		}
	}
	if out == nil {
		return s, false
	}
	return string(out), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// luhn reports whether the digits of s at the offsets pass the Luhn check.
func luhn(s string, at []int) bool {
	sum := 0
	for i := range at {
		d := int(s[at[len(at)-1-i]] - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}
