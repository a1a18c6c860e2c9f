package dynamics

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// DefaultMatchCacheTTL is how long a caller match's answer is reused when
// the configuration does not say.
const DefaultMatchCacheTTL = 10 * time.Minute

// Values of Config.MatchMultiple.
const (
	MatchNone   = "none"
	MatchRecent = "recent"
)

// matchTables are where a caller is looked for, in order, with their phone
// columns: a contact before an account.
var matchTables = []struct {
	set, logical, id string
	columns          []string
}{
	{"contacts", "contact", "contactid", []string{"telephone1", "telephone2", "mobilephone"}},
	{"accounts", "account", "accountid", []string{"telephone1", "telephone2"}},
}

// matcher finds the caller's contact or account by phone, for activities
// that name no who, and caches the answers.
type matcher struct {
	rules    map[string]bool // nil: every rule
	ttl      time.Duration
	multiple string

	mu    sync.Mutex
	cache map[string]matchEntry // phone → answer
}

// matchEntry is one lookup's answer: the row, or nil for none.
type matchEntry struct {
	row *crmRow
	at  time.Time
}

// newMatcher validates the match part of cfg; it returns nil, nil without
// MatchRules.
func newMatcher(cfg Config) (*matcher, error) {
	if len(cfg.MatchRules) == 0 {
		return nil, nil
	}
	m := &matcher{ttl: cfg.MatchCacheTTL, multiple: cfg.MatchMultiple, cache: map[string]matchEntry{}}
	if m.ttl == 0 {
		m.ttl = DefaultMatchCacheTTL
	}
	if m.multiple == "" {
		m.multiple = MatchNone
	}
	switch {
	case cfg.MatchCacheTTL < 0:
		return nil, fmt.Errorf("match_cache_ttl: must not be negative")
	case m.multiple != MatchNone && m.multiple != MatchRecent:
		return nil, fmt.Errorf("match_multiple: %q, want none or recent", cfg.MatchMultiple)
	}
	if !slices.Contains(cfg.MatchRules, "*") {
		m.rules = map[string]bool{}
		for _, r := range cfg.MatchRules {
			m.rules[r] = true
		}
	}
	return m, nil
}

// matchCaller sets a.Who to the contact or account whose phone column
// holds a.Phone, when a's rule asks for it and a names no who. No match,
// or several with MatchMultiple "none", leaves a unlinked. A failed
// lookup is an error like a failed write: retried, or dead with
// Dataverse's message.
func (t *Target) matchCaller(ctx context.Context, a *connector.Activity) error {
	m := t.match
	if m == nil || a.Who != nil || (m.rules != nil && !m.rules[a.Rule]) {
		return nil
	}
	variants := connector.PhoneForms(a.Phone)
	if variants == nil {
		return nil
	}
	m.mu.Lock()
	e, ok := m.cache[variants[0]]
	m.mu.Unlock()
	if !ok || t.now().Sub(e.at) >= m.ttl {
		e = matchEntry{at: t.now()}
		for _, tb := range matchTables {
			row, found, err := t.findByPhone(ctx, tb.set, tb.logical, tb.id, tb.columns, variants)
			if err != nil {
				return err
			}
			if found {
				e.row = row
				break
			}
		}
		m.mu.Lock()
		m.cache[variants[0]] = e
		m.mu.Unlock()
	}
	if e.row != nil {
		a.Who = &connector.CRMObject{Type: e.row.logical, ID: e.row.id}
	}
	return nil
}

// findByPhone looks for the rows of set whose columns hold one of the
// variants. found is true when any row does; row is the one to link, nil
// when several do and MatchMultiple is "none".
func (t *Target) findByPhone(ctx context.Context, set, logical, idColumn string, columns, variants []string) (row *crmRow, found bool, err error) {
	var conds []string
	for _, c := range columns {
		for _, v := range variants {
			conds = append(conds, c+" eq '"+strings.ReplaceAll(v, "'", "''")+"'")
		}
	}
	q := url.Values{
		"$select":  {idColumn},
		"$filter":  {strings.Join(conds, " or ")},
		"$top":     {"2"},
		"$orderby": {"modifiedon desc"},
	}
	var ans struct {
		Value []map[string]any `json:"value"`
	}
	if _, err := t.send(ctx, http.MethodGet, t.api+"/"+set+"?"+q.Encode(), nil, nil, &ans); err != nil {
		return nil, false, err
	}
	if len(ans.Value) == 0 {
		return nil, false, nil
	}
	if len(ans.Value) > 1 && t.match.multiple == MatchNone {
		return nil, true, nil
	}
	// Newest first: MatchRecent takes the first.
	id, _ := ans.Value[0][idColumn].(string)
	if !isGUID(id) {
		return nil, false, &connector.DeliveryError{Err: fmt.Errorf("%s lookup answered a row without %s", set, idColumn)}
	}
	return &crmRow{logical: logical, set: set, id: id}, true, nil
}
