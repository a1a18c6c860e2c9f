package hubspot

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/connectortest"
)

func TestOAuth_RefreshesBeforeExpiry(t *testing.T) {
	f := newFake(t) // access tokens live 1800 s
	tg := newTarget(t, oauthConfig(f))
	t0 := time.Date(2026, 3, 14, 17, 0, 0, 0, time.UTC)
	now := t0
	tg.now = func() time.Time { return now }
	for i, step := range []struct {
		at     time.Duration
		tokens int
	}{
		{0, 1},
		{1500 * time.Second, 1}, // cached
		{1700 * time.Second, 2}, // within the last tenth of its life: refreshed before HubSpot refuses it
	} {
		now = t0.Add(step.at)
		key := fmt.Sprint("k", i)
		if _, err := deliver(t, tg, key, activity(key, nil, nil), 1); err != nil {
			t.Fatalf("at %v: %v", step.at, err)
		}
		if got := len(f.Tokens()); got != step.tokens {
			t.Errorf("at %v: %d tokens fetched, want %d", step.at, got, step.tokens)
		}
	}
}

func TestOAuth_ConcurrentDeliveriesShareOneToken(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, oauthConfig(f))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			key := fmt.Sprint("k", i)
			if _, err := deliver(t, tg, key, activity(key, nil, nil), 1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := len(f.Tokens()); got != 1 {
		t.Errorf("%d tokens fetched for 20 concurrent deliveries, want 1", got)
	}
}

func TestOAuth_SecondRefusalIsDead(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, oauthConfig(f))
	refused := connectortest.HubSpotError("INVALID_AUTHENTICATION", "Authentication credentials not found.")
	f.FailNextStatus(http.StatusUnauthorized, nil, refused)
	f.FailNextStatus(http.StatusUnauthorized, nil, refused)
	_, err := deliver(t, tg, "k1", activity("k1", nil, nil), 1)
	if err == nil || !deliveryError(t, err).Permanent() || !strings.Contains(err.Error(), "refused a newly fetched access token") {
		t.Errorf("401 after a refresh: %v, want dead, saying so", err)
	}
	if got := len(f.Tokens()); got != 2 {
		t.Errorf("%d tokens fetched, want 2 (one refresh, no more)", got)
	}
}

func TestOAuth_TokenEndpointFailures(t *testing.T) {
	f := newFake(t)
	cfg := oauthConfig(f)
	cfg.RefreshToken = "revoked-refresh-token"
	_, err := deliver(t, newTarget(t, cfg), "k1", activity("k1", nil, nil), 1)
	if err == nil || !deliveryError(t, err).Permanent() || !strings.Contains(err.Error(), "BAD_REFRESH_TOKEN missing or unknown refresh token") {
		t.Errorf("revoked refresh token: %v, want dead with HubSpot's message", err)
	}
	if err != nil && strings.Contains(err.Error(), "revoked-refresh-token") {
		t.Errorf("error shows the refresh token: %v", err)
	}

	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "9")
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	cfg = oauthConfig(f)
	cfg.TokenURL = down.URL
	tg, _ := New(cfg, nil)
	_, err = deliver(t, tg, "k1", activity("k1", nil, nil), 1)
	if err == nil || deliveryError(t, err).Permanent() || deliveryError(t, err).RetryAfter() != 9*time.Second {
		t.Errorf("token endpoint 503: %v, want retryable after 9s", err)
	}
	if n := f.APIRequests(); n != 0 {
		t.Errorf("%d API requests without a token", n)
	}
}
