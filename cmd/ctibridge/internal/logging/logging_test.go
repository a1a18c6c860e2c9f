package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestFold: the first failure of a kind is written, the same kind within
// the window is counted, and the next one after it says how many were
// folded; another target, a lower level or another message is not folded.
func TestFold(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2001, 2, 3, 9, 0, 0, 0, time.UTC)
	log := slog.New(Fold(slog.NewTextHandler(&out, nil), func() time.Time { return now }))
	crm := log.With("target", "crm")
	for i := range 50 {
		crm.With("outbox_id", i).Warn("delivery failed, will retry", "status", 503, "err", "HTTP 503 for delivery "+string(rune('a'+i%26)))
	}
	log.With("target", "other").Warn("delivery failed, will retry", "status", 503)
	crm.Warn("delivery failed, will retry", "status", 429)
	crm.Info("delivered after retries")
	crm.Info("delivered after retries")
	now = now.Add(Window)
	crm.Warn("delivery failed, will retry", "status", 503)

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6 (the first 503, other's, the 429, two infos, the 503 after the window):\n%s", len(lines), &out)
	}
	if !strings.Contains(lines[0], "outbox_id=0") || strings.Contains(lines[0], "repeated") {
		t.Errorf("first line = %s, want the first failure as it was", lines[0])
	}
	if !strings.Contains(lines[1], "target=other") || !strings.Contains(lines[2], "status=429") {
		t.Errorf("lines 2 and 3 = %s / %s, want another target's and another status's failure", lines[1], lines[2])
	}
	if !strings.Contains(lines[5], "repeated=49") || !strings.Contains(lines[5], "since=2001-02-03T09:00:00") {
		t.Errorf("last line = %s, want it to count the 49 folded since the first", lines[5])
	}
}
