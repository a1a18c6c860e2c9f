package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/server"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// TestServe_MappingLiveReload edits the mapping of a running daemon: a
// valid edit changes the next activity; an invalid one is refused, shown in
// /readyz, and the previous mapping keeps serving.
func TestServe_MappingLiveReload(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	dir := t.TempDir()
	m := MustRunMain(t, writeConfig(t, dir, crm.URL))
	file := filepath.Join(dir, "mappings", "crm.toml")

	edited := strings.Replace(testMapping, `Subject     = '"Call "`, `Subject     = '"Phone call "`, 1)
	os.WriteFile(file, []byte(edited), 0o644)
	waitFor(t, "the edit to be loaded", func() bool { return m.Mappings.Status().Reloads == 2 })
	post(t, m.Addr(), "brightpattern", interaction(t, "after-edit"))
	crm.WaitAccepted(t, 10*time.Second, callKey("after-edit"))
	if body := string(crm.Accepted()[callKey("after-edit")]); !strings.Contains(body, `"Subject":"Phone call from`) {
		t.Fatalf("after a valid edit the CRM got %s, want the new Subject", body)
	}

	os.WriteFile(file, []byte(strings.Replace(edited, "'duration'", "'duraton'", 1)), 0o644)
	waitFor(t, "the broken edit to be refused", func() bool { return m.Mappings.Status().Failures == 1 })
	resp, err := http.Get("http://" + m.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready server.Readiness
	decodeJSON(t, resp, &ready)
	if resp.StatusCode != http.StatusOK || !strings.Contains(ready.MappingStatus.LastError, "duraton") ||
		!strings.Contains(ready.Mappings, "last reload failed") {
		t.Fatalf("/readyz after a failed reload = %d %+v, want 200 naming the problem", resp.StatusCode, ready)
	}
	post(t, m.Addr(), "brightpattern", interaction(t, "after-broken-edit"))
	crm.WaitAccepted(t, 10*time.Second, callKey("after-broken-edit"))
	if body := string(crm.Accepted()[callKey("after-broken-edit")]); !strings.Contains(body, `"Subject":"Phone call from`) {
		t.Fatalf("after a broken edit the CRM got %s, want the last good mapping", body)
	}
}

func decodeJSON(tb testing.TB, resp *http.Response, v any) {
	tb.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		tb.Fatalf("response is not JSON: %v", err)
	}
}
