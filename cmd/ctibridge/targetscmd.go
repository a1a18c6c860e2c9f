package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/targets"
	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/dynamics"
	"github.com/ctibridge/ctibridge/connector/hubspot"
	"github.com/ctibridge/ctibridge/connector/salesforce"
	"github.com/ctibridge/ctibridge/connector/servicenow"
	"github.com/ctibridge/ctibridge/connector/webhook"
	"github.com/ctibridge/ctibridge/connector/zendesk"
	"github.com/ctibridge/ctibridge/mapping"
)

// runTargets runs `ctibridge targets VERB`.
func runTargets(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	if len(args) == 0 {
		return errors.New("targets: want a verb: check, describe")
	}
	switch args[0] {
	case "check":
		return targetsCheck(ctx, args[1:], stdout, stderr, environ)
	case "describe":
		return targetsDescribe(ctx, args[1:], stdout, environ)
	}
	return fmt.Errorf("targets: unknown verb %q (want check or describe)", args[0])
}

// finding is one line of `targets check`.
type finding struct {
	ok   bool
	text string
}

// targetsCheck builds each configured target (or the one named) as the
// daemon does, signs in and reads what it needs, writing nothing, and
// prints one line per finding. Any problem makes it fail.
func targetsCheck(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	fs := newFlagSet("targets check")
	configPath := fs.String("config", "", "TOML config `file` (default: embedded defaults)")
	pos, err := parseFlags(fs, args, "[NAME] [--config FILE]", stdout)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return errors.New("targets check: one target at most")
	}
	cfg, err := config.Load(*configPath, environ)
	if err != nil {
		return err
	}
	names := cfg.TargetNames()
	if len(pos) == 1 {
		if _, ok := cfg.Targets[pos[0]]; !ok {
			return fmt.Errorf("targets check: no target %q (configured: %v)", pos[0], names)
		}
		names = pos
	}
	// The rules say which objects each target writes; without them, each
	// target checks its configured object.
	set, err := cfg.LoadMappings()
	if err != nil {
		fmt.Fprintf(stderr, "note: the mappings do not load, so only the configured objects are checked (run `ctibridge mapping check`)\n")
	}
	problems := 0
	for _, name := range names {
		var objects []string
		if set != nil {
			objects = set.Objects(name)
		}
		for _, f := range checkTarget(ctx, name, cfg.Targets[name], objects) {
			state := "OK     "
			if !f.ok {
				state = "PROBLEM"
				problems++
			}
			fmt.Fprintf(stdout, "%s %s: %s\n", state, name, f.text)
		}
	}
	if problems > 0 {
		return fmt.Errorf("%d problems", problems)
	}
	return nil
}

// checkTarget checks target name of config tc, which the rules use to
// write objects.
func checkTarget(ctx context.Context, name string, tc config.TargetConfig, objects []string) []finding {
	if tc.Type == config.TypeJSONL {
		return checkJSONL(tc.Path) // building it would create its file
	}
	t, err := targets.New(name, tc, slog.New(slog.DiscardHandler), func(string, int, int) {})
	if err != nil {
		return []finding{{text: err.Error()}}
	}
	if c, ok := t.(io.Closer); ok {
		defer c.Close()
	}
	done := func(err error, what string) []finding {
		if err != nil {
			return []finding{{text: err.Error()}}
		}
		return []finding{{ok: true, text: what}}
	}
	switch t := t.(type) {
	case *salesforce.Target:
		var out []finding
		for _, f := range t.Check(ctx, objects...) {
			out = append(out, finding{f.OK, f.Text})
		}
		return out
	case *hubspot.Target:
		var out []finding
		for _, f := range t.Check(ctx) {
			out = append(out, finding{f.OK, f.Text})
		}
		return out
	case *dynamics.Target:
		return done(t.Check(ctx, objects...), fmt.Sprintf("signed in; tables readable (%s)", orDefault(objects, "phonecall")))
	case *servicenow.Target:
		return done(t.Check(ctx, objects...), fmt.Sprintf("signed in; tables readable (%s)", orDefault(objects, tc.ServiceNow.Table)))
	case *zendesk.Target:
		return done(t.Check(ctx), "signed in as an agent or admin")
	case *webhook.Target:
		return []finding{{ok: true, text: "not checked: a POST would deliver a record (config check validates its keys)"}}
	}
	return []finding{{ok: true, text: fmt.Sprintf("type %s: nothing to check", tc.Type)}}
}

func orDefault(objects []string, def string) string {
	if len(objects) == 0 {
		return def
	}
	return strings.Join(objects, ", ")
}

// checkJSONL checks that the jsonl target's file can be appended to,
// without writing: an existing file is opened for appending and closed; a
// new one needs its directory.
func checkJSONL(path string) []finding {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		f.Close()
		return []finding{{ok: true, text: "path " + path + ": writable"}}
	}
	if !errors.Is(err, os.ErrNotExist) {
		return []finding{{text: "path: " + err.Error()}}
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return []finding{{text: fmt.Sprintf("path %s: its directory %s does not exist", path, dir)}}
	}
	return []finding{{ok: true, text: fmt.Sprintf("path %s: not there yet; the daemon creates it in %s", path, dir)}}
}

// targetsDescribe fetches the field list of a target's object from the
// CRM and writes it as a schema file for `mapping check`.
func targetsDescribe(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	fs := newFlagSet("targets describe")
	configPath := fs.String("config", "", "TOML config `file` (default: embedded defaults)")
	out := fs.String("out", "", "schema `file` to write (default: TARGET.OBJECT.schema.json in mapping.schema_dir, or else mapping.dir)")
	pos, err := parseFlags(fs, args, "NAME OBJECT [--out FILE] [--config FILE]", stdout)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("targets describe: want a target and an object, such as: targets describe salesforce Task")
	}
	name, object := pos[0], pos[1]
	cfg, err := config.Load(*configPath, environ)
	if err != nil {
		return err
	}
	tc, ok := cfg.Targets[name]
	if !ok {
		return fmt.Errorf("targets describe: no target %q (configured: %v)", name, cfg.TargetNames())
	}
	if *out == "" {
		dir := cfg.Mapping.SchemaDirectory()
		if dir == "" {
			return errors.New("targets describe: set mapping.schema_dir or mapping.dir, or give --out FILE")
		}
		*out = filepath.Join(dir, mapping.SchemaFileName(name, object))
	}
	if tc.Type != config.TypeSalesforce && tc.Type != config.TypeHubSpot {
		return fmt.Errorf("targets describe: %s is a %s target; describe reads Salesforce and HubSpot objects", name, tc.Type)
	}
	t, err := targets.New(name, tc, slog.New(slog.DiscardHandler), func(string, int, int) {})
	if err != nil {
		return err
	}
	s, err := describe(ctx, t, object)
	if err != nil {
		return err
	}
	s.Source = fmt.Sprintf("ctibridge targets describe %s %s, %s", name, object, time.Now().UTC().Format(time.DateOnly))
	if err := s.WriteFile(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d fields of %s %s\n", *out, len(s.Fields), s.CRM, object)
	return nil
}

// describe asks a Salesforce or HubSpot target for object's fields.
func describe(ctx context.Context, t connector.Target, object string) (*mapping.Schema, error) {
	switch t := t.(type) {
	case *salesforce.Target:
		raw, err := t.Describe(ctx, object)
		if err != nil {
			return nil, err
		}
		return mapping.SchemaFromSalesforce(object, raw)
	case *hubspot.Target:
		raw, err := t.Describe(ctx, object)
		if err != nil {
			return nil, err
		}
		return mapping.SchemaFromHubSpot(object, raw)
	}
	return nil, fmt.Errorf("describe reads Salesforce and HubSpot objects, not %T", t)
}
