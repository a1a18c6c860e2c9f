package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestBench_Smoke runs the benchmark with tiny numbers and checks that it
// prints every row and that every acknowledged event reached the CRM. It
// checks no performance target.
func TestBench_Smoke(t *testing.T) {
	// The daemon is this test binary, turned into ctibridge by TestMain.
	// TEST_CTIBRIDGE_ARGS is split on spaces; t.TempDir has none.
	old := benchDaemonCommand
	t.Cleanup(func() { benchDaemonCommand = old })
	benchDaemonCommand = func(environ []string, args ...string) (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(environ, "TEST_CTIBRIDGE_CHILD=1", "TEST_CTIBRIDGE_ARGS="+strings.Join(args, " "))
		return cmd, nil
	}

	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"bench",
		"--event", "../../examples/events/brightpattern-call.json", "--dir", t.TempDir(),
		"--events", "100", "--clients", "8", "--rate", "50", "--steady", "1s",
		"--raw-rows", "200", "--drain-timeout", "30s",
	}, &out, &errOut, os.Environ())
	if code != 0 {
		t.Fatalf("bench exited %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errOut)
	}
	table := out.String()
	t.Logf("\n%s", table)

	for _, metric := range []string{
		"| Machine | nproc ",
		"| Raw ceiling: bare table, 100 rows/txn, WAL+FULL | ",
		"| Raw: 1 row/txn, WAL+FULL (fsync-bound) | ",
		"| Durable ingest, 8 clients | ",
		"| Ingest ÷ raw ceiling | ",
		"| HTTP ceiling: bare server, decode + group commit, WAL+FULL, 8 clients | ",
		"| Ingest ÷ HTTP ceiling | ",
		"| Ack latency p50 / p99 (burst) | ",
		"| Ingest errors (not 202), burst + steady | 0 | 0 | PASS |",
		"| Deliveries/s (burst drain) | ",
		"| Deliveries during the burst ÷ ingest | ",
		"| Steady load offered | ",
		"| Ack latency p50 / p99 (steady) | ",
		"| End-to-end p50 / p99 (202 → CRM received, steady) | ",
		"| Records delivered, burst + steady | 150 of 150 acked (",
		"| Daemon peak RSS (burst + steady) | ",
		"| CPU in the burst: daemon / bench | ",
		"| CPU in the drain after it: daemon / bench | ",
		// 100 events leave too few deliveries after the burst to divide by.
		"| CPU per delivery after the burst: daemon + bench (CRM) | not measured: ",
		"| CPU per event in the burst, deliveries taken out: daemon + bench (clients) | not measured: ",
		"| Cores both ratio targets need at these costs | not measured: ",
		"| Daemon peak RSS with a backlog | not run (--backlog 0) |",
	} {
		if !strings.Contains(table, metric) {
			t.Errorf("table has no row starting %q", metric)
		}
	}
	if strings.Contains(table, "INCOMPLETE") {
		t.Error("table reports an incomplete phase")
	}
	if m := regexp.MustCompile(`\| Daemon peak RSS \(burst \+ steady\) \| ([0-9.]+) MB`).FindStringSubmatch(table); m == nil || m[1] == "0.0" {
		t.Errorf("no daemon RSS measured")
	}
	if n := strings.Count(table, "\n"); n != 26 {
		t.Errorf("table has %d lines, want 26 (header, rule, 24 rows)", n)
	}
}
