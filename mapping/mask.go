package mapping

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"unicode/utf8"

	"github.com/ctibridge/ctibridge/connector"
)

// Card data must not rest on disk (PCI DSS): the daemon masks what it
// stores, the raw event and the normalized interaction, with MaskJSON and
// MaskInteraction before storing them, rather than only what goes to a
// CRM. The redact() function and the redact option still mask the CRM's
// fields, for the admin's patterns in fields that were stored in clear.

// MaskJSON returns doc, a JSON document, with card numbers masked (all
// digits but the last four replaced by '*') and what the [redact] patterns
// match replaced by "[redacted]", in every text value. Member names,
// numbers and the layout are kept byte for byte, so that what a platform
// posted is stored as it was, without the card data. A nil Set masks card
// numbers only. doc is returned as is when nothing in it changes.
func (s *Set) MaskJSON(doc []byte) []byte {
	res := s.patterns()
	var out []byte
	last := 0
	for i := 0; i < len(doc); i++ {
		if doc[i] != '"' {
			continue
		}
		end := stringEnd(doc, i)
		if end < 0 {
			break
		}
		lit := doc[i : end+1]
		i = end
		if isMemberName(doc, end+1) {
			continue
		}
		if len(res) == 0 && !mayHoldCard(lit) {
			continue
		}
		text, ok := stringText(lit)
		if !ok {
			continue
		}
		masked, changed := redactText(text, res)
		if !changed {
			continue
		}
		enc, err := encodeText(masked)
		if err != nil {
			continue
		}
		out = append(out, doc[last:i-len(lit)+1]...)
		out = append(out, enc...)
		last = end + 1
	}
	if out == nil {
		return doc
	}
	return append(out, doc[last:]...)
}

// MaskInteraction returns in with card numbers and what the [redact]
// patterns match masked in its free text, as MaskJSON does: subject,
// notes, attached, the names of its CRM records, parties and disposition,
// and Raw. Identifiers (id, numbers, agent, CRM ids) are kept, since keys
// and lookups depend on them. in itself is not changed: the result is a
// copy when something was masked, and in when nothing was.
func (s *Set) MaskInteraction(in *connector.Interaction) *connector.Interaction {
	if in == nil {
		return nil
	}
	res := s.patterns()
	c := *in
	changed := false
	text := func(p *string) {
		if t, ok := redactText(*p, res); ok {
			*p, changed = t, true
		}
	}
	text(&c.Subject)
	text(&c.Notes)
	if v, ok := redactValue(c.Attached, res); ok {
		c.Attached, changed = v.(map[string]any), true
	}
	obj := func(o *connector.CRMObject) *connector.CRMObject {
		if o == nil {
			return nil
		}
		if t, ok := redactText(o.Name, res); ok {
			m := *o
			m.Name, changed = t, true
			return &m
		}
		return o
	}
	c.Who, c.What = obj(c.Who), obj(c.What)
	if c.Disposition != nil {
		if t, ok := redactText(c.Disposition.Name, res); ok {
			d := *c.Disposition
			d.Name, c.Disposition, changed = t, &d, true
		}
	}
	copied := false
	for i := range c.Objects {
		if t, ok := redactText(c.Objects[i].Name, res); ok {
			if !copied {
				c.Objects, copied = slices.Clone(c.Objects), true
			}
			c.Objects[i].Name, changed = t, true
		}
	}
	copied = false
	for i := range c.Parties {
		if t, ok := redactText(c.Parties[i].Name, res); ok {
			if !copied {
				c.Parties, copied = slices.Clone(c.Parties), true
			}
			c.Parties[i].Name, changed = t, true
		}
	}
	if raw := s.MaskJSON(c.Raw); !bytes.Equal(raw, c.Raw) {
		c.Raw, changed = raw, true
	}
	if !changed {
		return in
	}
	return &c
}

// patterns are the [redact] patterns; none for a nil Set.
func (s *Set) patterns() []*regexp.Regexp {
	if s == nil || s.redactor == nil {
		return nil
	}
	return s.redactor.patterns
}

// stringEnd returns the offset of the quote that closes the JSON string
// opening at doc[start], or -1 when it is not closed.
func stringEnd(doc []byte, start int) int {
	for j := start + 1; j < len(doc); j++ {
		switch doc[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

// stringText is the text of the JSON string literal lit, as json.Unmarshal
// reads it. A literal without escapes or control characters, the common
// case, is its own text when it is valid UTF-8: this saves a json.Unmarshal
// per string of every stored event.
func stringText(lit []byte) (string, bool) {
	inner := lit[1 : len(lit)-1]
	plain := utf8.Valid(inner)
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), true
	}
	var text string
	return text, json.Unmarshal(lit, &text) == nil
}

// mayHoldCard reports whether the JSON string literal lit could hold a card
// number: it has escapes, or at least 13 digits.
func mayHoldCard(lit []byte) bool {
	if bytes.IndexByte(lit, '\\') >= 0 {
		return true
	}
	n := 0
	for _, c := range lit {
		if isDigit(c) {
			n++
		}
	}
	return n >= 13
}

// isMemberName reports whether the string that ends before doc[i] is a
// member name: the next byte that is not white space is a colon.
func isMemberName(doc []byte, i int) bool {
	for ; i < len(doc); i++ {
		switch doc[i] {
		case ' ', '\t', '\r', '\n':
			continue
		case ':':
			return true
		}
		return false
	}
	return false
}

// encodeText is s as a JSON string, without HTML escaping.
func encodeText(s string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
