package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/outbox"
)

// outboxVerbs lists the verbs of `ctibridge outbox`, for error messages.
const outboxVerbs = "ls, show, retry, purge or stats"

// runOutbox runs `ctibridge outbox VERB`. Results go to stdout; errors are
// returned, for run to print on stderr.
func runOutbox(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	if len(args) == 0 {
		return errors.New("outbox: want a verb: " + outboxVerbs)
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "ls":
		return outboxList(ctx, rest, stdout, environ)
	case "show":
		return outboxShow(ctx, rest, stdout, environ)
	case "retry":
		return outboxRetry(ctx, rest, stdout, environ)
	case "purge":
		return outboxPurge(ctx, rest, stdout, environ)
	case "stats":
		return outboxStats(ctx, rest, stdout, environ)
	}
	return fmt.Errorf("outbox: unknown verb %q (want %s)", verb, outboxVerbs)
}

// outboxFlags returns the flag set of `outbox VERB`, with the --config flag
// every verb takes.
func outboxFlags(verb string) (*flag.FlagSet, *string) {
	fs := newFlagSet("outbox " + verb)
	return fs, fs.String("config", "", "TOML config `file` (default: embedded defaults)")
}

// parseFlags parses args with fs, allowing flags after the positional
// arguments (`outbox show 7 --json`), and returns the positional ones.
// Asked for help, it prints the flags to stdout and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, usage string, stdout io.Writer) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: ctibridge %s %s\n", fs.Name(), usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w (usage: ctibridge %s %s)", fs.Name(), err, fs.Name(), usage)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
}

// outboxList prints deliveries, newest first.
func outboxList(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	fs, configPath := outboxFlags("ls")
	state := fs.String("state", "", "only deliveries in this `state`: pending, running, retrying, delivered, dead")
	target := fs.String("target", "", "only deliveries to this `target`")
	limit := fs.Int("limit", 100, "at most `n` deliveries")
	asJSON := fs.Bool("json", false, "print JSON, one array")
	pos, err := parseFlags(fs, args, "[flags]", stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("outbox ls: unexpected argument %q", pos[0])
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
		return printJSON(stdout, ds)
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

// outboxShow prints one delivery: its fields, its payload, and every
// attempt.
func outboxShow(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	fs, configPath := outboxFlags("show")
	asJSON := fs.Bool("json", false, "print JSON: the delivery, its payload and its attempts")
	pos, err := parseFlags(fs, args, "ID [--json]", stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("outbox show: want one delivery ID")
	}
	id, err := outbox.ParseID(pos[0])
	if err != nil {
		return fmt.Errorf("outbox show: %w", err)
	}
	db, err := openExistingOutbox(*configPath, environ)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := db.Show(ctx, id)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	d := res.Delivery
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	field := func(name, value string) { fmt.Fprintf(tw, "%s\t%s\n", name, value) }
	field("id", strconv.FormatInt(d.ID, 10))
	field("target", d.Target)
	field("key", d.Key)
	field("state", string(d.State))
	field("attempts", strconv.Itoa(d.Attempts))
	field("accepted", formatTime(res.AcceptedAt))
	field("created", formatTime(d.CreatedAt))
	if d.State == outbox.StatePending || d.State == outbox.StateRetrying {
		field("next attempt", formatTime(d.NextAttemptAt))
	}
	field("finished", formatTime(d.FinishedAt))
	if d.RecordID != "" {
		field("record id", d.RecordID)
	}
	if d.LastStatus != 0 {
		field("last status", strconv.Itoa(d.LastStatus))
	}
	if d.LastError != "" {
		field("last error", oneLine(d.LastError, 200))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(stdout, "\npayload:")
	var pretty bytes.Buffer
	if json.Indent(&pretty, res.Payload, "", "  ") == nil {
		pretty.WriteTo(stdout)
	} else {
		stdout.Write(res.Payload)
	}
	fmt.Fprintln(stdout)

	fmt.Fprintln(stdout, "\nattempts:")
	if len(res.Attempts) == 0 {
		fmt.Fprintln(stdout, "none yet")
		return nil
	}
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WINDOW\tATTEMPT\tSTARTED\tLATENCY\tSTATUS\tOUTCOME\tCLASS\tERROR\tRESPONSE")
	for _, a := range res.Attempts {
		status := "-"
		if a.Status != 0 {
			status = strconv.Itoa(a.Status)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Window, a.Attempt, formatTime(a.StartedAt),
			a.Latency, status, a.Outcome, dash(a.ErrorClass), dash(oneLine(a.Error, 60)), dash(oneLine(a.ResponseBody, 80)))
	}
	return tw.Flush()
}

// outboxRetry moves dead deliveries back to the queue: the ones named, or
// every dead one (of a target) with --dead.
func outboxRetry(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	const usage = "ID... [--force] | --dead [--target T]"
	fs, configPath := outboxFlags("retry")
	dead := fs.Bool("dead", false, "retry every dead delivery")
	target := fs.String("target", "", "with --dead, only the dead deliveries to this `target`")
	force := fs.Bool("force", false, "also make deliveries waiting in retrying due now")
	pos, err := parseFlags(fs, args, usage, stdout)
	if err != nil {
		return err
	}
	switch {
	case *dead && len(pos) > 0:
		return errors.New("outbox retry: give IDs or --dead, not both")
	case !*dead && len(pos) == 0:
		return errors.New("outbox retry: want delivery IDs or --dead (usage: ctibridge outbox retry " + usage + ")")
	case *target != "" && !*dead:
		return errors.New("outbox retry: --target goes with --dead")
	case *force && *dead:
		return errors.New("outbox retry: --force goes with IDs, not --dead")
	}
	ids := make([]int64, 0, len(pos))
	for _, p := range pos {
		id, err := outbox.ParseID(p)
		if err != nil {
			return fmt.Errorf("outbox retry: %w", err)
		}
		ids = append(ids, id)
	}
	db, err := openExistingOutbox(*configPath, environ)
	if err != nil {
		return err
	}
	defer db.Close()
	now := time.Now()
	if *dead {
		n, err := db.RetryDead(ctx, *target, now)
		if err != nil {
			return err
		}
		of := ""
		if *target != "" {
			of = " to " + *target
		}
		fmt.Fprintf(stdout, "retried %d dead %s%s\n", n, plural(n, "delivery", "deliveries"), of)
		return nil
	}
	retry := db.Retry
	if *force {
		retry = db.RetryForce
	}
	var failed []error
	for _, id := range ids {
		// One at a time, to say which moved.
		n, err := retry(ctx, []int64{id}, now)
		if errors.Is(err, outbox.ErrNotFound) || errors.Is(err, outbox.ErrNotDead) {
			failed = append(failed, err)
			continue
		}
		if err != nil {
			return err
		}
		if n == 1 {
			fmt.Fprintf(stdout, "retried delivery %d\n", id)
		}
	}
	if len(failed) > 0 {
		return &listError{
			head: fmt.Sprintf("outbox retry: %d of %d not retried", len(failed), len(ids)),
			errs: failed,
		}
	}
	return nil
}

// outboxPurge deletes delivered deliveries older than --older-than.
func outboxPurge(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	fs, configPath := outboxFlags("purge")
	olderThan := fs.Duration("older-than", 0, "delete deliveries delivered longer ago than this `duration`, such as 720h")
	pos, err := parseFlags(fs, args, "--older-than DURATION", stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("outbox purge: unexpected argument %q", pos[0])
	}
	if *olderThan <= 0 {
		return errors.New("outbox purge: want --older-than with a positive duration, such as 720h")
	}
	db, err := openExistingOutbox(*configPath, environ)
	if err != nil {
		return err
	}
	defer db.Close()
	cutoff := time.Now().Add(-*olderThan)
	n, err := db.Purge(ctx, cutoff, 1000)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "purged %d delivered %s older than %s\n", n, plural(n, "delivery", "deliveries"), *olderThan)
	return nil
}

// outboxStats prints the deliveries per target and state, and the events.
func outboxStats(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	fs, configPath := outboxFlags("stats")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args, "[--json]", stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("outbox stats: unexpected argument %q", pos[0])
	}
	db, err := openExistingOutbox(*configPath, environ)
	if err != nil {
		return err
	}
	defer db.Close()
	s, err := db.Stats(ctx, time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, s)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tPENDING\tRUNNING\tRETRYING\tDELIVERED\tDEAD\tOLDEST WAITING")
	for _, t := range s.Targets {
		oldest := "-"
		if !t.OldestWaiting.IsZero() {
			oldest = t.OldestWaitingAge.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", t.Target, t.Pending, t.Running, t.Retrying, t.Delivered,
			t.Dead, oldest)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "\ndead: %d\nevents: %d stored, %d mapping failed\n", s.Dead, s.Events, s.MappingFailed)
	return err
}

// openExistingOutbox opens the configured outbox, refusing to create one:
// a typo in a path should not show an empty, new outbox.
func openExistingOutbox(configPath string, environ []string) (*outbox.DB, error) {
	cfg, err := config.Load(configPath, environ)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.Store.Path); err != nil {
		return nil, fmt.Errorf("no outbox at %s (store.path): %w", cfg.Store.Path, err)
	}
	db := openDB(cfg.Store)
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

// printJSON writes v as indented JSON, leaving <, > and & as they are
// for people to read.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// formatTime formats t for tables, in local time; "-" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// dash returns s, or "-" for an empty s, so that tables have no holes.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// listError is several errors under one heading, printed one per line.
type listError struct {
	head string
	errs []error
}

func (e *listError) Error() string {
	var b strings.Builder
	b.WriteString(e.head + ":")
	for _, err := range e.errs {
		b.WriteString("\n  " + err.Error())
	}
	return b.String()
}

func (e *listError) Unwrap() []error { return e.errs }
