package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// Values of Config.MatchMultiple.
const (
	MatchNone   = "none"
	MatchFirst  = "first"
	MatchRecent = "recent"
)

// matcher finds the caller's Contact or Lead by phone and caches the
// answers.
type matcher struct {
	rules    map[string]bool // nil: every rule
	ttl      time.Duration
	multiple string
	flag     string // field that receives why nothing was linked, or ""

	mu    sync.Mutex
	cache map[string]matchEntry // digits → answer
}

// matchEntry is one search's answer: the id to link, or why none.
type matchEntry struct {
	id     string
	reason string
	at     time.Time
}

// newMatcher validates the match part of cfg; it returns nil, nil without
// MatchRules.
func newMatcher(cfg Config) (*matcher, error) {
	if len(cfg.MatchRules) == 0 {
		return nil, nil
	}
	m := &matcher{ttl: cfg.MatchCacheTTL, multiple: cfg.MatchMultiple, flag: cfg.MatchFlagField, cache: map[string]matchEntry{}}
	if m.ttl == 0 {
		m.ttl = DefaultMatchCacheTTL
	}
	if m.multiple == "" {
		m.multiple = MatchNone
	}
	switch {
	case cfg.MatchCacheTTL < 0:
		return nil, fmt.Errorf("match_cache_ttl: must not be negative")
	case !slices.Contains([]string{MatchNone, MatchFirst, MatchRecent}, m.multiple):
		return nil, fmt.Errorf("match_multiple: %q, want none, first or recent", cfg.MatchMultiple)
	case m.flag != "" && !apiName.MatchString(m.flag):
		return nil, fmt.Errorf("match_flag_field: %q is not a Salesforce field API name", m.flag)
	}
	if !slices.Contains(cfg.MatchRules, "*") {
		m.rules = map[string]bool{}
		for _, r := range cfg.MatchRules {
			m.rules[r] = true
		}
	}
	return m, nil
}

// applies reports whether rec's rule asks for a caller match and the
// activity has no who to link.
func (m *matcher) applies(a *connector.Activity, rec *record) bool {
	if m.rules != nil && !m.rules[a.Rule] {
		return false
	}
	_, linked := rec.fields["WhoId"]
	return !linked
}

// matchCaller links rec to the Contact or Lead whose phone is the
// activity's, or flags it unlinked. A failed search is an error like a
// failed write: retried, or dead with Salesforce's message.
func (t *Target) matchCaller(ctx context.Context, a *connector.Activity, rec *record) error {
	m := t.match
	digits := phoneDigits(a.Phone)
	if len(digits) < 5 {
		m.link(rec, matchEntry{reason: "no phone number"})
		return nil
	}
	m.mu.Lock()
	e, ok := m.cache[digits]
	m.mu.Unlock()
	if !ok || t.now().Sub(e.at) >= m.ttl {
		var err error
		if e, err = t.search(ctx, digits, rec); err != nil {
			return err
		}
		m.mu.Lock()
		m.cache[digits] = e
		m.mu.Unlock()
	}
	m.link(rec, e)
	return nil
}

// link sets WhoId, or the flag field.
func (m *matcher) link(rec *record, e matchEntry) {
	switch {
	case e.id != "":
		rec.fields["WhoId"] = e.id
	case m.flag != "":
		rec.fields[m.flag] = e.reason
	}
}

// search asks Salesforce for the Contacts and Leads with digits in a phone
// field and picks one by MatchMultiple.
func (t *Target) search(ctx context.Context, digits string, rec *record) (matchEntry, error) {
	// The number as dialled, and its last ten digits: a number stored in
	// national form ("(415) 555-0100") lacks the country code.
	terms := digits
	if len(digits) > 10 {
		terms += " OR " + digits[len(digits)-10:]
	}
	q := "FIND {" + terms + "} IN PHONE FIELDS RETURNING Contact(Id, LastModifiedDate), Lead(Id, LastModifiedDate)"
	ans, err := t.call(ctx, http.MethodGet, "/search?q="+url.QueryEscape(q), nil)
	if err != nil {
		return matchEntry{}, err
	}
	var found struct {
		SearchRecords []searchHit `json:"searchRecords"`
	}
	if ans.status == http.StatusOK {
		ans.parsed = json.Unmarshal(ans.body, &found) == nil
		ans.success = ans.parsed
	} else {
		ans.parseErrors()
	}
	if v := classify(ans); v != delivered {
		return matchEntry{}, t.failure(ans, v, rec.String())
	}
	hits := found.SearchRecords
	e := matchEntry{at: t.now()}
	switch {
	case len(hits) == 0:
		e.reason = "no match"
	case len(hits) == 1 || t.match.multiple == MatchFirst:
		e.id = hits[0].ID
	case t.match.multiple == MatchRecent:
		// Salesforce's timestamps have one layout and zone: they sort as
		// text.
		e.id = slices.MaxFunc(hits, func(a, b searchHit) int {
			return strings.Compare(a.LastModifiedDate, b.LastModifiedDate)
		}).ID
	default:
		e.reason = fmt.Sprintf("%d matches", len(hits))
	}
	if e.id != "" && !validID(e.id) {
		e.id, e.reason = "", "match has no valid id"
	}
	return e, nil
}

// searchHit is one record of a SOSL answer.
type searchHit struct {
	ID               string `json:"Id"`
	LastModifiedDate string
}

// phoneDigits returns the digits of a phone number: what SOSL matches in
// phone fields, whatever their format.
func phoneDigits(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if '0' <= s[i] && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}
