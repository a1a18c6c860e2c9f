package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// remapped counts the outcome of remapFailed.
type remapped struct {
	Remapped     int `json:"remapped"`     // events now mapped
	Activities   int `json:"activities"`   // deliveries they enqueued
	StillFailing int `json:"stillFailing"` // events whose mapping fails still
}

// remapFailed maps every mapping_failed event again with set, newest
// first, a page at a time, enqueuing the activities of those that now map.
// notify, when not nil, is told each target of the set afterwards.
func remapFailed(ctx context.Context, db *outbox.DB, set *mapping.Set, notify func(target string)) (remapped, error) {
	const page = 500
	var r remapped
	f := outbox.EventFilter{State: outbox.EventMappingFailed, Limit: page}
	for {
		evs, err := db.Events(ctx, f)
		if err != nil {
			return r, err
		}
		for _, e := range evs {
			n, ok, err := remapOne(ctx, db, set, e)
			if err != nil {
				return r, err
			}
			if ok {
				r.Remapped++
				r.Activities += n
			} else {
				r.StillFailing++
			}
		}
		if len(evs) < page {
			break
		}
		f.BeforeID = evs[len(evs)-1].ID
	}
	if notify != nil && r.Activities > 0 {
		for _, t := range set.Targets() {
			notify(t)
		}
	}
	return r, nil
}

// remapOne maps one stored event again and records the outcome.
func remapOne(ctx context.Context, db *outbox.DB, set *mapping.Set, e outbox.StoredEvent) (int, bool, error) {
	var mapErr error
	var ds []outbox.NewDelivery
	if e.Interaction == nil {
		mapErr = errors.New("the event stored no interaction to map")
	} else {
		var in connector.Interaction
		if err := json.Unmarshal(e.Interaction, &in); err != nil {
			mapErr = fmt.Errorf("stored interaction: %w", err)
		} else {
			ds, mapErr = encodeActivities(set, &in)
		}
	}
	n, err := db.Remap(ctx, e.ID, ds, mapErr, time.Now())
	return n, mapErr == nil, err
}

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
	cfg, err := LoadConfig(*configPath, environ)
	if err != nil {
		return err
	}
	set, err := loadMappings(cfg)
	if err != nil {
		return fmt.Errorf("the mappings still have problems; fix them first:\n%w", err)
	}
	db, err := openExistingOutbox(*configPath, environ)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := remapFailed(ctx, db, set, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "remapped %d events into %d activities; %d still fail\n", r.Remapped, r.Activities, r.StillFailing)
	return nil
}
