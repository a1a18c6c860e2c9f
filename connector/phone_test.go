package connector_test

import (
	"slices"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
)

func TestPhoneForms(t *testing.T) {
	for phone, want := range map[string][]string{
		"+14155550100":    {"+14155550100", "14155550100", "4155550100"},
		"+1 415 555 0100": {"+14155550100", "14155550100", "+1 415 555 0100", "4155550100"},
		"+442071838750":   {"+442071838750", "442071838750"},
		"1234":            nil,
	} {
		if got := connector.PhoneForms(phone); !slices.Equal(got, want) {
			t.Errorf("connector.PhoneForms(%q) = %q, want %q", phone, got, want)
		}
	}
}
