package webhook

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
)

// minScrubbed is the shortest configured value scrubbed: shorter header
// values are settings, not credentials (X-Api-Version: 2), and replacing
// them would garble every message that happens to contain them.
const minScrubbed = 8

// scrubber removes the configured secrets, in every form a request carries
// them, from what a receiver or token endpoint answers: a CRM that echoes
// the request's headers in its error would otherwise put them in the
// outbox's stored attempts and in the logs.
type scrubber struct {
	forms []secretForm // longest first, so that a form containing another goes whole
}

type secretForm struct{ value, label string }

// add registers secret under label, with the forms it may come back in:
// as sent, URL-encoded, and escaped in JSON (a receiver that answers in
// JSON may escape "/" or "+", as base64 has them).
func (s *scrubber) add(secret, label string) {
	if len(secret) < minScrubbed {
		return
	}
	forms := []string{secret, url.QueryEscape(secret), strings.ReplaceAll(secret, "/", `\/`)}
	if b, err := json.Marshal(secret); err == nil {
		forms = append(forms, strings.Trim(string(b), `"`))
	}
	for _, f := range forms {
		s.forms = append(s.forms, secretForm{f, label})
	}
	sort.SliceStable(s.forms, func(i, j int) bool { return len(s.forms[i].value) > len(s.forms[j].value) })
}

// addHeader registers a configured header's value, and its credential
// alone when the value has a scheme ("Bearer abc…", "Basic abc…").
func (s *scrubber) addHeader(name, value string) {
	label := "[" + name + " header]"
	s.add(value, label)
	if _, cred, ok := strings.Cut(value, " "); ok {
		s.add(strings.TrimSpace(cred), label)
	}
}

// addClient registers the OAuth client secret and the HTTP Basic
// credentials the token request carries it in.
func (s *scrubber) addClient(id, secret string) {
	s.add(secret, "[client secret]")
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
	s.add(basic, "[client credentials]")
}

// text returns str with every registered form replaced by its label.
func (s *scrubber) text(str string) string {
	if s == nil {
		return str
	}
	for _, f := range s.forms {
		str = strings.ReplaceAll(str, f.value, f.label)
	}
	return str
}
