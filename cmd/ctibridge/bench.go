package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/bench"
)

// benchDaemonCommand returns the command that runs the daemon under test
// with args (`serve --config FILE`) and the environment environ. It re-runs
// this executable; tests replace it, because there os.Executable is the test
// binary, which becomes the daemon only through TestMain's variables.
var benchDaemonCommand = func(environ []string, args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = environ
	return cmd, nil
}

// runBench runs `ctibridge bench`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	fs := newFlagSet("bench")
	o := bench.Options{Daemon: benchDaemonCommand}
	fs.StringVar(&o.EventFile, "event", "examples/events/brightpattern-call.json",
		"Bright Pattern event `file` to post; its data.interactionId is made unique per event")
	fs.StringVar(&o.Dir, "dir", "", "`directory` for the temporary databases (default: the system temp dir)")
	fs.IntVar(&o.Clients, "clients", 64, "concurrent clients in the ingest burst")
	fs.IntVar(&o.Events, "events", 50_000, "events in the ingest burst")
	fs.DurationVar(&o.Duration, "duration", 60*time.Second, "cap on the ingest burst and on each raw-ceiling run")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", 5*time.Minute,
		"how long to wait for the CRM to receive every acknowledged event, per phase")
	fs.Float64Var(&o.Rate, "rate", 1000, "events/s of the steady phase (open loop)")
	fs.DurationVar(&o.Steady, "steady", 10*time.Second, "length of the steady phase")
	fs.IntVar(&o.RawRows, "raw-rows", 100_000, "rows for the raw SQLite ceiling")
	fs.IntVar(&o.RawBatch, "raw-batch", 100, "rows per transaction for the raw SQLite ceiling")
	fs.IntVar(&o.Concurrency, "concurrency", 0, "the CRM target's delivery concurrency (0: the daemon's default)")
	fs.IntVar(&o.Backlog, "backlog", 0, "pending deliveries to seed for the RSS phase, e.g. 1000000 (0: skip)")
	fs.DurationVar(&o.BacklogRun, "backlog-run", 10*time.Second, "how long the daemon runs against the backlog")
	fs.BoolVar(&o.BacklogCRMUp, "backlog-crm-up", false,
		"keep the CRM up in the backlog phase, so that the daemon streams the backlog out (default: CRM down)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary directory (databases, config, daemon logs)")
	pos, err := parseFlags(fs, args, "[flags]", stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("bench: unexpected arguments %q", pos)
	}
	return bench.Run(ctx, o, stdout, stderr, environ)
}
