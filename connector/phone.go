package connector

import (
	"slices"
	"strings"
)

// PhoneForms returns the forms a CRM's phone column may hold phone in, for
// a target that finds the caller's record by an exact match: E.164, digits
// only, as given, and for a NANP number the ten national digits. It returns
// nil for a number too short to match on (under five digits).
func PhoneForms(phone string) []string {
	var digits strings.Builder
	for _, r := range phone {
		if r >= '0' && r <= '9' {
			digits.WriteRune(r)
		}
	}
	d := digits.String()
	if len(d) < 5 {
		return nil
	}
	v := []string{"+" + d, d, strings.TrimSpace(phone)}
	if len(d) == 11 && d[0] == '1' {
		v = append(v, d[1:])
	}
	var out []string
	for _, s := range v {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
