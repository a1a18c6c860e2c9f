package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/ingest"
	"github.com/ctibridge/ctibridge/outbox"
)

// runEvents runs `ctibridge events VERB`.
func runEvents(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	if len(args) == 0 {
		return errors.New("events: want a verb: ls, remap")
	}
	switch args[0] {
	case "ls":
		return eventsList(ctx, args[1:], stdout, environ)
	case "remap":
		return eventsRemap(ctx, args[1:], stdout, environ)
	}
	return fmt.Errorf("events: unknown verb %q (want ls or remap)", args[0])
}

// eventsList prints stored events, newest first.
func eventsList(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	fs := newFlagSet("events ls")
	configPath := fs.String("config", "", "TOML config `file` (default: embedded defaults)")
	failed := fs.Bool("failed", false, "only events whose mapping failed")
	limit := fs.Int("limit", 100, "at most `n` events")
	asJSON := fs.Bool("json", false, "print JSON, one array")
	if _, err := parseFlags(fs, args, "[--failed] [--limit N] [--json] [--config FILE]", stdout); err != nil {
		return err
	}
	db, err := openExistingOutbox(*configPath, environ)
	if err != nil {
		return err
	}
	defer db.Close()
	f := outbox.EventFilter{Limit: *limit}
	if *failed {
		f.State = outbox.EventMappingFailed
	}
	evs, err := db.Events(ctx, f)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, append([]outbox.StoredEvent{}, evs...))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPLATFORM\tTYPE\tRECEIVED\tSTATE\tERROR")
	for _, e := range evs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Platform, e.Type,
			e.ReceivedAt.Local().Format(time.DateTime), e.State, oneLine(e.Error, 80))
	}
	return tw.Flush()
}

// eventsRemap maps the mapping_failed events again with the configured
// mappings. The daemon, if it runs, delivers what they make within a
// second.
func eventsRemap(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	fs := newFlagSet("events remap")
	configPath := fs.String("config", "", "TOML config `file` (default: embedded defaults)")
	failed := fs.Bool("failed", false, "remap every event whose mapping failed (required)")
	if _, err := parseFlags(fs, args, "--failed [--config FILE]", stdout); err != nil {
		return err
	}
	if !*failed {
		return errors.New("events remap: say --failed to remap every event whose mapping failed")
	}
	cfg, err := config.Load(*configPath, environ)
	if err != nil {
		return err
	}
	set, err := cfg.LoadMappings()
	if err != nil {
		return fmt.Errorf("the mappings still have problems; fix them first:\n%w", err)
	}
	db, err := openExistingOutbox(*configPath, environ)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := ingest.Remap(ctx, db, set, time.Now(), nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "remapped %d events into %d activities; %d still fail\n", r.Remapped, r.Activities, r.StillFailing)
	return nil
}
