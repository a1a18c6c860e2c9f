package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ctibridge/ctibridge/outbox"
)

// runOutbox runs `ctibridge outbox VERB`.
func runOutbox(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	if len(args) == 0 {
		return errors.New("outbox: want a verb: ls")
	}
	switch args[0] {
	case "ls":
		return outboxList(ctx, args[1:], stdout, environ)
	}
	return fmt.Errorf("outbox: unknown verb %q (want ls)", args[0])
}

// outboxList prints deliveries, newest first.
func outboxList(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	fs := newFlagSet("outbox ls", stdout)
	configPath := fs.String("config", "", "TOML config `file` (default: embedded defaults)")
	state := fs.String("state", "", "only deliveries in this `state`: pending, running, retrying, delivered, dead")
	target := fs.String("target", "", "only deliveries to this `target`")
	limit := fs.Int("limit", 100, "at most `n` deliveries")
	asJSON := fs.Bool("json", false, "print JSON, one array")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f := outbox.Filter{Target: *target, Limit: *limit}
	if *state != "" {
		st, err := outbox.ParseState(*state)
		if err != nil {
			return err
		}
		f.State = st
	}
	db, err := openExistingOutbox(*configPath, environ)
	if err != nil {
		return err
	}
	defer db.Close()
	ds, err := db.List(ctx, f)
	if err != nil {
		return err
	}
	if *asJSON {
		if ds == nil {
			ds = []outbox.Delivery{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ds)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTARGET\tSTATE\tATTEMPTS\tNEXT ATTEMPT\tKEY\tLAST ERROR")
	for _, d := range ds {
		next := "-"
		if d.State == outbox.StatePending || d.State == outbox.StateRetrying {
			next = d.NextAttemptAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.Target, d.State, d.Attempts, next, d.Key,
			oneLine(d.LastError, 80))
	}
	return tw.Flush()
}

// openExistingOutbox opens the configured outbox, refusing to create one:
// a typo in a path should not show an empty, new outbox.
func openExistingOutbox(configPath string, environ []string) (*outbox.DB, error) {
	cfg, err := LoadConfig(configPath, environ)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.Store.Path); err != nil {
		return nil, fmt.Errorf("no outbox at %s (store.path): %w", cfg.Store.Path, err)
	}
	db := outbox.NewDB(cfg.Store.Path)
	if err := db.Open(); err != nil {
		return nil, err
	}
	return db, nil
}

// oneLine shortens s to one line of at most n runes, for tables.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
