package connector

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// scanner checks a body in one pass: its JSON syntax, by a subset of the
// rules of encoding/json, and what checkTree checks. It is sure only of
// what it accepts: a body it gives up on (invalid, or nested deeper than
// maxDepth) is judged again by encoding/json, whose messages posters see.
type scanner struct {
	b     []byte
	i     int
	stack []frame
	names [][]byte
	err   error // checkTree's error, the first in document order
}

// maxDepth bounds the recursion; encoding/json allows 10,000 levels, and a
// body deeper than this is left to it.
const maxDepth = 500

// scanObject reports sure when body is one JSON object that encoding/json
// accepts, and then returns checkTree's error for it; not sure says nothing.
func scanObject(body []byte) (sure bool, err error) {
	s := scanner{b: body}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' || !s.value(0) {
		return false, nil
	}
	if s.space(); s.i != len(s.b) {
		return false, nil
	}
	return true, s.err
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans the value at s.i; false when it is not valid JSON.
func (s *scanner) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		return s.str(false)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return false
}

func (s *scanner) object(depth int) bool {
	s.stack = append(s.stack, frame{obj: true, first: len(s.names)})
	s.i++
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		return s.pop()
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' || !s.str(true) {
			return false
		}
		if s.space(); s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.space()
		if !s.value(depth + 1) {
			return false
		}
		if s.space(); s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.space()
		case '}':
			return s.pop()
		default:
			return false
		}
	}
}

func (s *scanner) array(depth int) bool {
	s.stack = append(s.stack, frame{first: len(s.names)})
	s.i++
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		return s.pop()
	}
	for {
		if !s.value(depth + 1) {
			return false
		}
		if s.space(); s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.space()
			s.stack[len(s.stack)-1].index++
		case ']':
			return s.pop()
		default:
			return false
		}
	}
}

// pop ends the object or array whose closing bracket is at s.i.
func (s *scanner) pop() bool {
	s.names = s.names[:s.stack[len(s.stack)-1].first]
	s.stack = s.stack[:len(s.stack)-1]
	s.i++
	return true
}

// str scans the string at s.i, a member name when name is set, and records
// checkTree's error for it.
func (s *scanner) str(name bool) bool {
	start := s.i
	escaped, ascii := false, true
	for s.i++; ; s.i++ {
		if s.i >= len(s.b) {
			return false
		}
		c := s.b[s.i]
		if c == '"' {
			break
		}
		switch {
		case c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		case c == '\\':
			escaped = true
			if !s.escape() {
				return false
			}
		}
	}
	s.i++
	if s.err != nil {
		return true
	}
	lit := s.b[start+1 : s.i-1]
	valid := ascii || utf8.Valid(lit)
	if !name {
		if !valid {
			s.err = BadPayload(pathOf(s.stack), "text that is not valid UTF-8")
		}
		return true
	}
	top := &s.stack[len(s.stack)-1]
	if escaped {
		var n string
		_ = json.Unmarshal(s.b[start:s.i], &n)
		lit = []byte(n)
	}
	top.name = lit
	switch {
	case !valid:
		s.err = BadPayload(pathOf(s.stack), "the member name is not valid UTF-8")
	case seen(s.names[top.first:], &top.set, lit):
		s.err = BadPayload(pathOf(s.stack), "appears twice; send each member once")
	default:
		s.names = append(s.names, lit)
	}
	return true
}

// escape checks the escape sequence whose backslash is at s.i and leaves
// s.i on its last byte.
func (s *scanner) escape() bool {
	s.i++
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return true
	case 'u':
		if s.i+4 >= len(s.b) {
			return false
		}
		for _, h := range s.b[s.i+1 : s.i+5] {
			if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
				return false
			}
		}
		s.i += 4
		return true
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *scanner) number() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}
