package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// authorizeSource checks that r may post platform's events: the source's
// bearer token when one is configured, and, for a browser request, an
// allowed Origin. It writes the refusal and returns false otherwise.
func (m *Main) authorizeSource(w http.ResponseWriter, r *http.Request, platform string) bool {
	auth := m.Config.sourceAuths()[platform]
	if origin := r.Header.Get("Origin"); origin != "" {
		if !slices.Contains(auth.AllowedOrigins, origin) {
			writeError(w, http.StatusForbidden, "origin "+origin+" may not post "+platform+
				" events; add it to sources."+platform+".allowed_origins")
			return false
		}
		allowCORS(w, origin)
	}
	if auth.Token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !sameToken(got, auth.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ctibridge"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token for "+platform+" events")
		return false
	}
	return true
}

// handlePreflight answers a browser's CORS preflight for an event post
// from an allowed origin.
func (m *Main) handlePreflight(w http.ResponseWriter, r *http.Request) {
	platform := r.PathValue("platform")
	auth, ok := m.Config.sourceAuths()[platform]
	origin := r.Header.Get("Origin")
	if !ok || !slices.Contains(auth.AllowedOrigins, origin) {
		writeError(w, http.StatusForbidden, "origin not allowed")
		return
	}
	allowPreflight(w, origin)
}

// allowPreflight answers a CORS preflight from origin for a POST with a
// bearer token and a JSON body.
func allowPreflight(w http.ResponseWriter, origin string) {
	allowCORS(w, origin)
	w.Header().Set("Access-Control-Allow-Methods", "POST")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// sameToken compares a presented token with the expected one in constant
// time; hashing first hides the expected token's length too.
func sameToken(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func allowCORS(w http.ResponseWriter, origin string) {
	w.Header().Set("Access-Control-Allow-Origin", origin)
	// The bridge honours Retry-After on 429 and 503; a browser hides it
	// from the page unless it is exposed.
	w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
	w.Header().Add("Vary", "Origin")
}

// keyLocks hands out one mutex per key, and forgets it when unused.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	users int
}

// lock locks key and returns its unlock.
func (k *keyLocks) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
