package dial

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Numbers normalizes what a CRM page asks to dial.
type Numbers struct {
	// Region is the ISO country code assumed for a number written without a
	// country code (mapping.default_region); empty accepts only numbers
	// that start with + and a country code.
	Region string
	// Extension matches an internal extension, dialed as written; nil
	// dials none.
	Extension *regexp.Regexp
}

// maxNumber bounds what is parsed at all: no phone number, formatted with
// spaces and an extension, is longer.
const maxNumber = 64

// Normalize returns raw as E.164 (+14155550100), or an internal extension
// as written, or an error that says in plain words why raw cannot be
// dialed. A "tel:" prefix, spaces, dots, dashes and brackets are allowed.
func (n Numbers) Normalize(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(s, "tel:"), "TEL:"))
	switch {
	case s == "":
		return "", errors.New("no number to dial")
	case len(s) > maxNumber:
		return "", fmt.Errorf("%d characters is too long for a phone number", len(s))
	case n.Extension != nil && n.Extension.MatchString(s):
		return s, nil
	}
	for _, c := range s {
		if (c < '0' || c > '9') && !strings.ContainsRune(" +-().", c) {
			return "", fmt.Errorf("%q is not a phone number: only digits, spaces, + - ( ) and . may appear in one", s)
		}
	}
	region := strings.ToUpper(n.Region)
	if region == "" {
		if !strings.HasPrefix(s, "+") {
			return "", fmt.Errorf("%q has no country code (write it as +<country code>…, or set mapping.default_region)", s)
		}
		region = "ZZ"
	}
	num, err := phonenumbers.Parse(s, region)
	if err != nil {
		return "", fmt.Errorf("%q is not a phone number: %v", s, err)
	}
	if !phonenumbers.IsValidNumber(num) {
		why := "it is not a valid number"
		switch phonenumbers.IsPossibleNumberWithReason(num) {
		case phonenumbers.TOO_SHORT:
			why = "it is too short"
		case phonenumbers.TOO_LONG:
			why = "it is too long"
		case phonenumbers.INVALID_COUNTRY_CODE:
			why = "its country code does not exist"
		}
		if !strings.HasPrefix(s, "+") {
			why += " in region " + region
		}
		return "", fmt.Errorf("%q cannot be dialed: %s", s, why)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}
