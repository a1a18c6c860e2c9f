package mapping

import (
	"unicode"
	"unicode/utf8"
)

// truncateText returns s cut to at most n characters (runes), suffix
// included when s is cut. It never splits a character: a combining accent,
// a joiner, a variation selector or a skin tone stays with the letter or
// emoji before it, and so do both halves of a flag and of "\r\n"; the cut
// moves back before the whole character instead.
func truncateText(s string, n int, suffix string) string {
	if n < 1 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	keep := n - utf8.RuneCountInString(suffix)
	if keep < 0 {
		keep, suffix = n, ""
	}
	cut := 0
	for range keep {
		_, size := utf8.DecodeRuneInString(s[cut:])
		cut += size
	}
	for cut > 0 {
		next, _ := utf8.DecodeRuneInString(s[cut:])
		prev, size := utf8.DecodeLastRuneInString(s[:cut])
		if extendsPrevious(next) || prev == '\u200d' || prev == '\r' && next == '\n' ||
			isRegional(next) && isRegional(prev) && regionalRun(s[:cut])%2 == 1 {
			cut -= size
			continue
		}
		break
	}
	return s[:cut] + suffix
}

// extendsPrevious reports whether r belongs to the character before it.
func extendsPrevious(r rune) bool {
	switch {
	case r == '\u200d', // zero width joiner
		r >= 0xFE00 && r <= 0xFE0F,   // variation selectors
		r >= 0xE0100 && r <= 0xE01EF, // variation selectors supplement
		r >= 0x1F3FB && r <= 0x1F3FF, // emoji skin tones
		r >= 0xE0020 && r <= 0xE007F: // tags (subdivision flags)
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc)
}

func isRegional(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }

// regionalRun counts the regional indicators at the end of s.
func regionalRun(s string) int {
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if !isRegional(r) {
			break
		}
		n++
		s = s[:len(s)-size]
	}
	return n
}
