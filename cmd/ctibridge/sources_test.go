package main

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

func TestServe_SourceAuth(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	path := writeConfig(t, t.TempDir(), crm.URL)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`
[sources.brightpattern]
token = "${BP_TOKEN}"
allowed_origins = ["https://acme.brightpattern.com"]
`)
	f.Close()
	cfg, err := config.Load(path, append(testEnviron, "BP_TOKEN=s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	m := MustRunMainConfig(t, cfg)
	url := "http://" + m.Addr() + "/v1/events/brightpattern"

	send := func(method, token, origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(string(readExample(t))))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := send("POST", "", ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", r.StatusCode)
	}
	if r := send("POST", "wrong", ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", r.StatusCode)
	}
	if r := send("POST", "s3cret", "https://evil.example"); r.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: %d, want 403", r.StatusCode)
	}
	if r := send("OPTIONS", "", "https://evil.example"); r.StatusCode != http.StatusForbidden {
		t.Errorf("preflight from a foreign origin: %d, want 403", r.StatusCode)
	}
	r := send("OPTIONS", "", "https://acme.brightpattern.com")
	if r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "https://acme.brightpattern.com" ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight from the allowed origin: %d %v, want 204 allowing it", r.StatusCode, r.Header)
	}
	if n := countRows(t, m, "events"); n != 0 {
		t.Fatalf("%d events stored by refused requests, want 0", n)
	}
	r = send("POST", "s3cret", "https://acme.brightpattern.com")
	if r.StatusCode != http.StatusAccepted || r.Header.Get("Access-Control-Allow-Origin") != "https://acme.brightpattern.com" {
		t.Errorf("allowed origin with the token: %d %v, want 202 with CORS", r.StatusCode, r.Header)
	}
	if r := send("POST", "s3cret", ""); r.StatusCode != http.StatusOK {
		t.Errorf("the same event again, without an Origin (curl): %d, want 200 duplicate", r.StatusCode)
	}
}
