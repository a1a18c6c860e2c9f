package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/connectortest"
)

func scrape(tb testing.TB, addr string) string {
	tb.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	return string(b)
}

func TestServe_Metrics(t *testing.T) {
	crm := connectortest.NewFakeCRM(t)
	dir := t.TempDir()
	m := MustRunMain(t, writeConfig(t, dir, crm.URL))
	post(t, m.Addr(), "brightpattern", readExample(t))
	post(t, m.Addr(), "brightpattern", readExample(t))
	post(t, m.Addr(), "brightpattern", []byte(`{"event":`))
	crm.WaitAccepted(t, 10*time.Second, callKey("7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D"))
	waitFor(t, "the attempt to be counted", func() bool {
		return strings.Contains(scrape(t, m.Addr()), `ctibridge_delivery_attempts_total{outcome="delivered",target="crm"} 1`)
	})
	os.WriteFile(filepath.Join(dir, "mappings", "crm.toml"), []byte("[[rule]]\nnmae = 1\n"), 0o644)
	waitFor(t, "the broken reload", func() bool { return m.Mappings.Status().Failures == 1 })

	text := scrape(t, m.Addr())
	for _, want := range []string{
		`ctibridge_events_total{outcome="accepted",platform="brightpattern"} 1`,
		`ctibridge_events_total{outcome="duplicate",platform="brightpattern"} 1`,
		`ctibridge_events_total{outcome="bad_payload",platform="brightpattern"} 1`,
		`ctibridge_outbox_deliveries{state="delivered",target="crm"} 1`,
		`ctibridge_outbox_deliveries{state="dead",target="crm"} 0`,
		`ctibridge_target_paused{target="crm"} 0`,
		`ctibridge_mapping_reloads_total{result="failed"} 1`,
		`ctibridge_mapping_last_reload_failed 1`,
		`ctibridge_delivery_attempt_seconds_count{target="crm"} 1`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
