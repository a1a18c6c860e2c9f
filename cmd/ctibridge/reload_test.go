package main

import (
	"encoding/json"
	"fmt"
	"io"
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
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ready server.Readiness
	if err := json.Unmarshal(raw, &ready); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || ready.MappingStatus.Failures != 1 ||
		!strings.Contains(ready.Mappings, "last reload failed") {
		t.Fatalf("/readyz after a failed reload = %d %+v, want 200 saying the reload failed", resp.StatusCode, ready)
	}
	// Anyone who reaches the ingest port reads /readyz: no mapping text,
	// no paths. The admin listener says why.
	if strings.Contains(string(raw), "duraton") || strings.Contains(string(raw), dir) {
		t.Errorf("/readyz shows the broken line or a path to anonymous callers: %s", raw)
	}
	token, err := os.ReadFile(m.Config.Store.Path + adminTokenSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := adminDo(t, m, adminRequest{Path: "/admin/api/mappings", Token: strings.TrimSpace(string(token))}); status != http.StatusOK ||
		!strings.Contains(fmt.Sprint(body["status"]), "duraton") {
		t.Errorf("admin mappings = %d %v, want the reload's error", status, body)
	}
	// Reverting the file to what is loaded clears the failure.
	os.WriteFile(file, []byte(edited), 0o644)
	waitFor(t, "the revert to clear the failure", func() bool { return m.Mappings.Status().LastError == "" })
	if st := m.Mappings.Status(); st.Reloads != 2 {
		t.Errorf("reloads = %d after reverting to the loaded file, want 2 (nothing to reload)", st.Reloads)
	}
	os.WriteFile(file, []byte(strings.Replace(edited, "'duration'", "'duraton'", 1)), 0o644)
	waitFor(t, "the broken edit to be refused again", func() bool { return m.Mappings.Status().Failures == 2 })
	post(t, m.Addr(), "brightpattern", interaction(t, "after-broken-edit"))
	crm.WaitAccepted(t, 10*time.Second, callKey("after-broken-edit"))
	if body := string(crm.Accepted()[callKey("after-broken-edit")]); !strings.Contains(body, `"Subject":"Phone call from`) {
		t.Fatalf("after a broken edit the CRM got %s, want the last good mapping", body)
	}
}
