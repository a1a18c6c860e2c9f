package mapping

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncateText(t *testing.T) {
	tests := []struct {
		s      string
		n      int
		suffix string
		want   string
	}{
		{"Hello", 5, "", "Hello"},
		{"Hello", 4, "", "Hell"},
		{"Hello, world", 8, "…", "Hello, …"},
		{"Hello", 1, "…", "…"},
		{"Hi", 1, "...", "H"}, // the suffix does not fit: cut without it
		{"Grüße", 3, "", "Grü"},
		{"日本語のメモ", 2, "", "日本"},
		{"Cafe\u0301!", 4, "", "Caf"},        // e and its accent go together
		{"Cafe\u0301!", 5, "", "Cafe\u0301"}, // or stay together
		{"a👍🏽b", 2, "", "a"},                 // the skin tone stays with the thumb
		{"a❤\ufe0fb", 2, "", "a"},            // and the variation selector with the heart
		{"x👩\u200d👩\u200d👧y", 4, "", "x"},    // a family is one character
		{"🇩🇪🇫🇷", 3, "", "🇩🇪"},
		{"🇩🇪🇫🇷", 4, "", "🇩🇪🇫🇷"},
		{"line\r\nnext", 5, "", "line"},
	}
	for _, tt := range tests {
		got := truncateText(tt.s, tt.n, tt.suffix)
		if got != tt.want {
			t.Errorf("truncateText(%q, %d, %q) = %q, want %q", tt.s, tt.n, tt.suffix, got, tt.want)
		}
		if utf8.RuneCountInString(got) > tt.n || !utf8.ValidString(got) {
			t.Errorf("truncateText(%q, %d) = %q: too long or not valid UTF-8", tt.s, tt.n, got)
		}
	}
}

func TestMaskCards(t *testing.T) {
	tests := []struct{ in, want string }{
		{"4111111111111111", "************1111"},
		{"pay 4111 1111 1111 1111 now", "pay **** **** **** 1111 now"},
		{"5555-5555-5555-4444", "****-****-****-4444"},
		{"378282246310005", "***********0005"},     // Amex, 15 digits
		{"6011000990139424", "************9424"},   // Discover
		{"4222222222222", "*********2222"},         // 13 digits
		{"4111111111111112", "4111111111111112"},   // fails the Luhn check
		{"+4930123456789012", "+4930123456789012"}, // a phone number
		{"ref 123 4111111111111111", "ref 123 ************1111"},
		{"a 4111111111111111 and 5555555555554444", "a ************1111 and ************4444"},
		{"4111  1111 1111 1111", "4111  1111 1111 1111"}, // two spaces end a group
		{"12345", "12345"},
		{"no digits", "no digits"},
	}
	for _, tt := range tests {
		got, changed := maskCards(tt.in)
		if got != tt.want || changed != (tt.in != tt.want) {
			t.Errorf("maskCards(%q) = %q, %v; want %q", tt.in, got, changed, tt.want)
		}
	}
}

func TestRedactText_Groups(t *testing.T) {
	res := []*regexp.Regexp{regexp.MustCompile(`(?i)cvv:?\s*(\d{3,4})`), regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`)}
	got, _ := redactText("CVV: 123, cvv 4567, SSN 123-45-6789", res)
	if want := "CVV: [redacted], cvv [redacted], SSN [redacted]"; got != want {
		t.Errorf("redactText = %q, want %q", got, want)
	}
}

func TestStringOffsets(t *testing.T) {
	tests := []struct {
		doc, value string
	}{
		{`a = 'x + y'`, "x + y"},
		{`a = "\"q\" + \u00e9t\t"`, "\"q\" + ét\t"},
		{"a = '''\nx +\n  y'''", "x +\n  y"},
		{"a = \"\"\"\nx \\\n   + y\"\"\"", "x + y"},
		{`a = "é + ü"`, "é + ü"},
	}
	for _, tt := range tests {
		data := []byte(tt.doc)
		start := 4
		offs := stringOffsets(data, start, len(data), tt.value)
		if len(offs) != utf8.RuneCountInString(tt.value)+1 {
			t.Errorf("%s: %d offsets for %d runes", tt.doc, len(offs), utf8.RuneCountInString(tt.value))
			continue
		}
		// Every rune that is not escaped is where the offset says.
		for i, r := range []rune(tt.value) {
			at := offs[i]
			got, _ := utf8.DecodeRune(data[at:])
			if got != r && got != '\\' {
				t.Errorf("%s: rune %d (%q) placed at %d, which holds %q", tt.doc, i, r, at, got)
			}
		}
	}
}

func TestSuggest(t *testing.T) {
	opts := []string{"name", "target", "object", "when", "key", "fields"}
	for in, want := range map[string]string{
		"objekt": `; did you mean "object"?`,
		"feilds": `; did you mean "fields"?`,
		"Name":   `; did you mean "name"?`,
		"tar":    `; did you mean "target"?`,
		"zzz":    "",
		"x":      "",
	} {
		if got := suggest(in, opts); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestE164(t *testing.T) {
	e := &funcEnv{region: "DE"}
	for in, want := range map[string]string{
		"+49301234567":       "+49301234567",
		"030 1234567":        "+49301234567",
		"+49 (0)30 1234567":  "+49301234567",
		"0049 30 1234567":    "+49301234567",
		"5005":               "5005",
		"**21#":              "**21#",
		"sip:bob@pbx":        "sip:bob@pbx",
		"":                   "",
		"anonymous":          "anonymous",
		"sips:+4930123456@x": "+4930123456",
	} {
		got, err := e.e164(in)
		if err != nil || got != want {
			t.Errorf("e164(%q) = %v, %v; want %q", in, got, err, want)
		}
	}
	if got, _ := e.e164("(415) 555-2671", "US"); got != "+14155552671" {
		t.Errorf("e164 with region US = %v", got)
	}
	if got, _ := e.e164(nil); got != nil {
		t.Errorf("e164(nil) = %v, want nil", got)
	}
}

func TestIsEmpty(t *testing.T) {
	var nilMap map[string]any
	type rec struct{ A string }
	var nilRec *rec
	for _, v := range []any{nil, "", nilMap, map[string]any{}, []any{}, nilRec} {
		if !isEmpty(v) {
			t.Errorf("isEmpty(%#v) = false", v)
		}
	}
	for _, v := range []any{0, false, " ", &rec{}, []string{"x"}} {
		if isEmpty(v) {
			t.Errorf("isEmpty(%#v) = true", v)
		}
	}
	if strings.Contains(describeValue(nil), "<nil>") {
		t.Error("describeValue(nil) shows <nil>")
	}
}

// TestMaskCards_LongRun checks that a long run of digit groups, such as a
// list of numbers in attached data, takes linear time.
func TestMaskCards_LongRun(t *testing.T) {
	s := strings.Repeat("1 ", 200000) + "4111 1111 1111 1111"
	got, changed := maskCards(s)
	if !changed || !strings.HasSuffix(got, "1111") || strings.Count(got, "*") < 12 {
		t.Errorf("maskCards missed the card at the end of a long run")
	}
}

// FuzzStringText: the fast reading of a string literal agrees with
// json.Unmarshal's, text and error alike.
func FuzzStringText(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9\n"`, "\"\xff\"", "\"a\x01\"", `"4111 1111 1111 1111"`, `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, lit []byte) {
		if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
			return
		}
		var want string
		wantErr := json.Unmarshal(lit, &want)
		got, ok := stringText(lit)
		if ok != (wantErr == nil) || ok && got != want {
			t.Fatalf("stringText(%q) = %q, %v; json.Unmarshal: %q, %v", lit, got, ok, want, wantErr)
		}
	})
}
