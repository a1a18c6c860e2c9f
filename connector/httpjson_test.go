package connector_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

func TestHTTPClient_NoRedirects(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	template := &http.Client{Timeout: time.Second}
	c := connector.HTTPClient(template, time.Minute)
	req, err := connector.JSONRequest(t.Context(), http.MethodPost, srv.URL, map[string]int{"a": 1}, "redacted")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := connector.Send(c, req, "redacted")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || hits != 1 || c.Timeout != time.Second || template.CheckRedirect != nil {
		t.Errorf("status %d after %d requests, timeout %v: want the 302 itself, the template's timeout, the template untouched", resp.StatusCode, hits, c.Timeout)
	}
	if _, err := connector.JSONRequest(t.Context(), http.MethodPost, srv.URL, func() {}, "r"); err == nil || !err.(*connector.DeliveryError).Permanent() {
		t.Errorf("a body that does not encode: %v, want permanent", err)
	}
}
