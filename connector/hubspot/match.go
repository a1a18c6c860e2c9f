package hubspot

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Choices for MatchConfig.Multiple.
const (
	MatchFirst  = "first"  // the oldest contact (lowest id)
	MatchRecent = "recent" // the most recently modified contact
	MatchNone   = "none"   // link nobody
)

// Values of MatchConfig.FlagProperty on a call no single contact was
// linked to.
const (
	FlagNoMatch = "no match"
	FlagSeveral = "several matches"
)

// DefaultMatchCacheFor is how long a caller match answer is kept.
const DefaultMatchCacheFor = 10 * time.Minute

// maxCached is how many phone numbers the match cache holds before it
// drops expired answers.
const maxCached = 10000

// MatchConfig is caller match: for an activity with no who, the target
// searches HubSpot's contacts for the activity's phone and links the call
// to the one it finds.
type MatchConfig struct {
	// Properties are the contact properties compared with the phone, any
	// of which may equal it; default phone and mobilephone.
	Properties []string
	// CacheFor is how long an answer, found or not, is reused for the
	// same phone; default DefaultMatchCacheFor.
	CacheFor time.Duration
	// Multiple says which contact to link when several match: MatchFirst,
	// MatchRecent (the default) or MatchNone.
	Multiple string
	// FlagProperty, when set, is a calls property the target sets to
	// FlagNoMatch or FlagSeveral when it linked no contact (with
	// MatchNone, or no match), so that admins can find such calls.
	FlagProperty string
}

// matcher finds and caches contacts by phone.
type matcher struct {
	cfg MatchConfig
	now func() time.Time

	mu    sync.Mutex
	cache map[string]matchAnswer
}

// matchAnswer is a cached search: the contact to link ("" for none) and
// the flag to set.
type matchAnswer struct {
	contact string
	flag    string
	expires time.Time
}

func newMatcher(cfg MatchConfig, now func() time.Time) (*matcher, error) {
	if len(cfg.Properties) == 0 {
		cfg.Properties = []string{"phone", "mobilephone"}
	}
	for _, p := range cfg.Properties {
		if !validPropertyName(p) {
			return nil, fmt.Errorf("match.properties: %q is not a HubSpot property name", p)
		}
	}
	switch {
	case cfg.CacheFor < 0:
		return nil, fmt.Errorf("match.cache_for: %v is negative", cfg.CacheFor)
	case cfg.CacheFor == 0:
		cfg.CacheFor = DefaultMatchCacheFor
	}
	switch cfg.Multiple {
	case "":
		cfg.Multiple = MatchRecent
	case MatchFirst, MatchRecent, MatchNone:
	default:
		return nil, fmt.Errorf("match.multiple: %q, want %q, %q or %q", cfg.Multiple, MatchFirst, MatchRecent, MatchNone)
	}
	if cfg.FlagProperty != "" && !validPropertyName(cfg.FlagProperty) {
		return nil, fmt.Errorf("match.flag_property: %q is not a HubSpot property name", cfg.FlagProperty)
	}
	return &matcher{cfg: cfg, now: now, cache: map[string]matchAnswer{}}, nil
}

// searchAnswer is the part of a contact search answer the match reads.
type searchAnswer struct {
	Total   int `json:"total"`
	Results []struct {
		ID string `json:"id"`
	} `json:"results"`
}

// matchCaller links c to the contact whose phone is phone, or flags it.
// A search error is returned as classify made it: retried like any other.
func (t *Target) matchCaller(ctx context.Context, c *call, phone string) error {
	m := t.match
	m.mu.Lock()
	ans, ok := m.cache[phone]
	m.mu.Unlock()
	if !ok || !m.now().Before(ans.expires) {
		var err error
		if ans, err = t.searchContacts(ctx, phone); err != nil {
			return err
		}
		m.store(phone, ans)
	}
	if ans.contact != "" {
		c.add(association{
			To:     assocTo{ID: ans.contact},
			Types:  []assocType{{Category: "HUBSPOT_DEFINED", TypeID: callToContact}},
			toType: "contacts",
		})
	} else if m.cfg.FlagProperty != "" {
		c.props[m.cfg.FlagProperty] = ans.flag
	}
	return nil
}

// searchContacts asks HubSpot for the contacts with phone in any of the
// configured properties, ordered so that the first is the one to link.
func (t *Target) searchContacts(ctx context.Context, phone string) (matchAnswer, error) {
	type filter struct {
		PropertyName string `json:"propertyName"`
		Operator     string `json:"operator"`
		Value        string `json:"value"`
	}
	type group struct {
		Filters []filter `json:"filters"`
	}
	type sort struct {
		PropertyName string `json:"propertyName"`
		Direction    string `json:"direction"`
	}
	in := struct {
		FilterGroups []group  `json:"filterGroups"`
		Sorts        []sort   `json:"sorts"`
		Properties   []string `json:"properties"`
		Limit        int      `json:"limit"`
	}{Limit: 2, Properties: []string{"hs_object_id"}}
	for _, p := range t.match.cfg.Properties {
		in.FilterGroups = append(in.FilterGroups, group{[]filter{{p, "EQ", phone}}})
	}
	if t.match.cfg.Multiple == MatchFirst {
		in.Sorts = []sort{{"hs_object_id", "ASCENDING"}}
	} else {
		in.Sorts = []sort{{"lastmodifieddate", "DESCENDING"}}
	}
	var out searchAnswer
	if _, err := t.do(ctx, http.MethodPost, t.objects+"/contacts/search", in, &out); err != nil {
		return matchAnswer{}, err
	}
	ans := matchAnswer{expires: t.match.now().Add(t.match.cfg.CacheFor)}
	switch {
	case len(out.Results) == 0:
		ans.flag = FlagNoMatch
	case out.Total > 1 && t.match.cfg.Multiple == MatchNone:
		ans.flag = FlagSeveral
	case isID(out.Results[0].ID):
		ans.contact = out.Results[0].ID
	default:
		ans.flag = FlagNoMatch
	}
	return ans, nil
}

// store caches ans for phone, dropping expired answers when the cache is
// full.
func (m *matcher) store(phone string, ans matchAnswer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.cache) >= maxCached {
		now := m.now()
		for k, a := range m.cache {
			if !now.Before(a.expires) {
				delete(m.cache, k)
			}
		}
	}
	m.cache[phone] = ans
}
