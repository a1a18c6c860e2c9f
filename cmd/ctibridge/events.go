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
	failed := fs.Bool("failed", false, "only events with a failed rule (one line per rule)")
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
	// One line per failed rule, each with its target and error; the
	// other rules of such an event were mapped and enqueued.
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPLATFORM\tTYPE\tRECEIVED\tSTATE\tRULE\tERROR")
	for _, e := range evs {
		head := fmt.Sprintf("%d\t%s\t%s\t%s\t%s", e.ID, e.Platform, e.Type,
			e.ReceivedAt.Local().Format(time.DateTime), e.State)
		if len(e.Failures) == 0 {
			fmt.Fprintf(tw, "%s\t-\t%s\n", head, oneLine(e.Error, 80))
			continue
		}
		for _, f := range e.Failures {
			fmt.Fprintf(tw, "%s\t%s (%s)\t%s\n", head, f.Rule, f.Target, oneLine(f.Error, 80))
		}
	}
	return tw.Flush()
}

// eventsRemap maps the failed rules of the mapping_failed events again
// with the configured mappings (only those rules: the others' records were
// enqueued already). The daemon, if it runs, delivers what they make
// within a second.
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
	if r.Rules > 0 {
		fmt.Fprintf(stdout, "%d failed rules now map\n", r.Rules)
	}
	return nil
}
