// Command ctibridge saves contact-center interactions as CRM activity
// records: it takes the platforms' events over HTTP, maps them with the
// admin's mapping files, and delivers the records from a durable SQLite
// outbox.
//
// Usage:
//
//	ctibridge serve [--config FILE]      run the daemon
//	ctibridge outbox ls [flags]          list deliveries
//	ctibridge version                    print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ()))
}

// run is the whole program, with the operating system passed in so that
// tests can run it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = runServe(ctx, rest, stderr, environ)
	case "outbox":
		err = runOutbox(ctx, rest, stdout, environ)
	case "events":
		err = runEvents(ctx, rest, stdout, environ)
	case "mapping":
		err = runMapping(ctx, rest, stdout, stderr, environ)
	case "config":
		err = runConfig(rest, stdout, environ)
	case "targets":
		err = runTargets(ctx, rest, stdout, stderr, environ)
	case "backup":
		err = runBackup(ctx, rest, stdout, environ)
	case "bench":
		err = runBench(ctx, rest, stdout, stderr, environ)
	case "dial":
		err = runDial(ctx, rest, stdout, environ)
	case "version":
		fmt.Fprintln(stdout, "ctibridge", version())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "ctibridge: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 2
	}
	fmt.Fprintln(stderr, "ctibridge:", err)
	return 1
}

const usage = `ctibridge saves contact-center interactions as CRM activity records.

Usage:
  ctibridge serve [--config FILE]   run the daemon (embedded defaults without a file)
  ctibridge outbox ls [flags]       list deliveries: state, attempts, last error
                                    (--state S, --target T, --limit N, --json)
  ctibridge outbox show ID [--json] one delivery: payload and every attempt
  ctibridge outbox retry ID... [--force] | --dead [--target T]
                                    move dead deliveries back to the queue
  ctibridge outbox purge --older-than 720h
                                    delete delivered rows older than that
  ctibridge outbox stats [--json]   deliveries per target and state, events
  ctibridge mapping check [DIR]     list every problem of a mapping directory, and
                                    every field a CRM schema file says it would reject
  ctibridge mapping preview --event FILE [--platform P] [--dir DIR]
                                    what the rules make of an event, or why not
  ctibridge mapping fields          the fields and functions a mapping can use
  ctibridge events ls [--failed] [--json]
                                    stored events; --failed: mapping failed
  ctibridge events remap --failed   map failed events again after a fix
  ctibridge config check [FILE]     validate a config, resolving its secrets, starting nothing
  ctibridge config show [FILE]      the effective config (file, defaults, environment), secrets redacted
  ctibridge targets check [NAME] [--config FILE]
                                    sign in to each target, check its objects and key
                                    field, writing nothing; one line per finding
  ctibridge targets describe NAME OBJECT [--out FILE]
                                    write a Salesforce or HubSpot object's fields as
                                    NAME.OBJECT.schema.json, for mapping check
  ctibridge backup FILE [--config FILE]
                                    a consistent copy of the live outbox, while the daemon runs
  ctibridge dial --agent A --to N [--object Type:ID] [--name NAME]
                                    have the running daemon dial from A's desktop,
                                    and follow the dial until it is dialing
  ctibridge version                 print the version
  ctibridge bench [flags]           benchmark a child daemon against a fake CRM

Environment variables CTIBRIDGE_SECTION__KEY override the config file,
for example CTIBRIDGE_SERVER__LISTEN=127.0.0.1:9090. Every outbox and
events verb takes --config FILE, and may run while the daemon runs.
`

// newFlagSet returns a flag set for a subcommand, for parseFlags: its
// errors are returned, and its help goes to stdout.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}
