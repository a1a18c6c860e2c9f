// Package access decides who may post a platform's events and drive
// click-to-dial: each source's bearer token, and the web origins whose
// pages may call the daemon from an agent's browser (CORS).
package access

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/httpjson"
)

// Rule says who may post one source's events.
type Rule struct {
	// Token, when set, must come as "Authorization: Bearer <token>".
	Token string
	// AllowedOrigins are the web origins whose pages may call from a
	// browser, such as "https://acme.my.salesforce.com".
	AllowedOrigins []string
}

// Sources are the rules by platform name.
type Sources map[string]Rule

// AuthorizeSource checks that r may post platform's events: the source's
// bearer token when one is configured, and, for a browser request, an
// allowed Origin. It writes the refusal and returns false otherwise.
func (s Sources) AuthorizeSource(w http.ResponseWriter, r *http.Request, platform string) bool {
	rule := s[platform]
	if origin := r.Header.Get("Origin"); origin != "" {
		if !slices.Contains(rule.AllowedOrigins, origin) {
			httpjson.Error(w, http.StatusForbidden, "origin "+origin+" may not post "+platform+
				" events; add it to sources."+platform+".allowed_origins")
			return false
		}
		AllowCORS(w, origin)
	}
	if rule.Token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !SameToken(got, rule.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ctibridge"`)
		httpjson.Error(w, http.StatusUnauthorized, "missing or wrong bearer token for "+platform+" events")
		return false
	}
	return true
}

// PreflightSource answers a browser's CORS preflight for a post of
// platform's events from an allowed origin.
func (s Sources) PreflightSource(w http.ResponseWriter, r *http.Request, platform string) {
	rule, ok := s[platform]
	origin := r.Header.Get("Origin")
	if !ok || !slices.Contains(rule.AllowedOrigins, origin) {
		httpjson.Error(w, http.StatusForbidden, "origin not allowed")
		return
	}
	allowPreflight(w, origin)
}

// AuthorizeAny applies the platform-independent rule of endpoints that
// belong to no platform (click-to-dial): an Origin that some source allows,
// when there is one, and any configured source token (none needed when no
// source has one). It writes the refusal and returns false otherwise.
func (s Sources) AuthorizeAny(w http.ResponseWriter, r *http.Request, token string) bool {
	if origin := r.Header.Get("Origin"); origin != "" {
		if !s.OriginAllowed(origin) {
			httpjson.Error(w, http.StatusForbidden, "origin "+origin+" is in no source's allowed_origins")
			return false
		}
		AllowCORS(w, origin)
	}
	if !s.AnyToken(token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ctibridge"`)
		httpjson.Error(w, http.StatusUnauthorized, "missing or wrong token: any source's token (sources.*.token) is accepted")
		return false
	}
	return true
}

// AnyToken reports whether token is some source's token, or whether no
// source has a token, which leaves the endpoints that belong to no
// platform open.
func (s Sources) AnyToken(token string) bool {
	required, ok := false, false
	for _, rule := range s {
		if rule.Token != "" {
			required = true
			ok = SameToken(token, rule.Token) || ok // no short cut: every token is compared
		}
	}
	return !required || (token != "" && ok)
}

// PreflightAny answers a browser's CORS preflight for an endpoint that
// belongs to no platform, from an origin some source allows.
func (s Sources) PreflightAny(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if !s.OriginAllowed(origin) {
		httpjson.Error(w, http.StatusForbidden, "origin not allowed")
		return
	}
	allowPreflight(w, origin)
}

// OriginAllowed reports whether origin is in some source's allowed
// origins.
func (s Sources) OriginAllowed(origin string) bool {
	for _, rule := range s {
		if slices.Contains(rule.AllowedOrigins, origin) {
			return true
		}
	}
	return false
}

// allowPreflight answers a CORS preflight from origin for a POST with a
// bearer token and a JSON body.
func allowPreflight(w http.ResponseWriter, origin string) {
	AllowCORS(w, origin)
	w.Header().Set("Access-Control-Allow-Methods", "POST")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// AllowCORS lets a page of origin read the response.
func AllowCORS(w http.ResponseWriter, origin string) {
	w.Header().Set("Access-Control-Allow-Origin", origin)
	// The bridge honours Retry-After on 429 and 503; a browser hides it
	// from the page unless it is exposed.
	w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
	w.Header().Add("Vary", "Origin")
}

// SameToken compares a presented token with the expected one in constant
// time; hashing first hides the expected token's length too.
func SameToken(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
