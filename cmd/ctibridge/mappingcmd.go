package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/ingest"
	"github.com/ctibridge/ctibridge/mapping"
)

// runMapping runs `ctibridge mapping VERB`.
func runMapping(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	if len(args) == 0 {
		return errors.New("mapping: want a verb: check, preview, fields")
	}
	switch args[0] {
	case "check":
		return mappingCheck(args[1:], stdout, stderr, environ)
	case "preview":
		return mappingPreview(args[1:], stdout, stderr, environ)
	case "fields":
		return mapping.Reference().WriteText(stdout)
	}
	return fmt.Errorf("mapping: unknown verb %q (want check, preview or fields)", args[0])
}

// mappingFlags are the flags every mapping verb shares: the config (for
// its targets and default region) and the mapping directory.
func mappingFlags(fs *flag.FlagSet) (configPath *string) {
	return fs.String("config", "", "TOML config `file` whose targets the rules may name (default: embedded defaults)")
}

// mappingConfig loads the config for a mapping verb, which needs the
// targets' names, not their secrets: a secret that cannot be resolved here
// is a note on stderr, not an error.
func mappingConfig(configPath string, environ []string, stderr io.Writer) (config.Config, error) {
	cfg, unresolved, err := config.LoadWithoutSecrets(configPath, environ)
	if err != nil {
		return cfg, err
	}
	if unresolved != nil {
		fmt.Fprintf(stderr, "note: secrets not resolved here (the daemon needs them, checking mappings does not):\n%v\n", unresolved)
	}
	return cfg, nil
}

// mappingStore returns a store for dir, or for the config's mappings when
// dir is empty.
func mappingStore(cfg config.Config, dir string) *mapping.Store {
	if dir != "" {
		cfg.Mapping.Dir = dir
	}
	return cfg.MappingStore()
}

// mappingCheck loads a mapping directory and lists every problem, and
// then checks the rules against the CRM schema files in mapping.schema_dir
// (by default the mapping directory itself).
func mappingCheck(args []string, stdout, stderr io.Writer, environ []string) error {
	fs := newFlagSet("mapping check")
	configPath := mappingFlags(fs)
	pos, err := parseFlags(fs, args, "[DIR] [--config FILE]", stdout)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return errors.New("mapping check: one directory at most")
	}
	dir := ""
	if len(pos) == 1 {
		dir = pos[0]
	}
	cfg, err := mappingConfig(*configPath, environ, stderr)
	if err != nil {
		return err
	}
	s := mappingStore(cfg, dir)
	if _, err := s.Reload(); err != nil {
		var ps mapping.Problems
		if errors.As(err, &ps) {
			fmt.Fprintln(stdout, err)
			return fmt.Errorf("%d problems", len(ps))
		}
		return err
	}
	schemaDir := cfg.Mapping.SchemaDir
	if schemaDir == "" {
		schemaDir = s.Dir
	}
	var schemas mapping.Schemas
	if schemaDir != "" {
		if schemas, err = mapping.LoadSchemas(schemaDir); err != nil {
			return err
		}
	}
	if ps := s.Current().CheckSchemas(schemas); len(ps) > 0 {
		fmt.Fprintln(stdout, ps)
		return fmt.Errorf("%d problems against the CRM schemas (%s)", len(ps), strings.Join(schemas.Names(), ", "))
	}
	st := s.Status()
	fmt.Fprintf(stdout, "ok: %d rules in %d files (%s)\n", st.Rules, len(st.Files), strings.Join(st.Files, ", "))
	if len(schemas) > 0 {
		fmt.Fprintf(stdout, "ok: the fields fit the CRM schemas %s\n", strings.Join(schemas.Names(), ", "))
	}
	return nil
}

// mappingPreview decodes an event (or a sequence of them, one per line, as
// a platform posts them) and prints what each rule makes of each
// interaction it completes, or why a rule did not match: one JSON array per
// interaction, in the order the daemon stores them (a transferred call
// makes one per agent's leg). Like the daemon, it maps the interaction with
// card numbers and the [redact] patterns masked. Nothing is stored or sent.
func mappingPreview(args []string, stdout, stderr io.Writer, environ []string) error {
	fs := newFlagSet("mapping preview")
	configPath := mappingFlags(fs)
	dir := fs.String("dir", "", "mapping `directory` (default: the config's mapping.dir)")
	eventPath := fs.String("event", "", "event `file`: one JSON event, or one per line for a sequence (required)")
	platform := fs.String("platform", "", "the event's `platform`: brightpattern, five9 or genesys (default: guessed)")
	if _, err := parseFlags(fs, args, "--event FILE [--platform P] [--dir DIR] [--config FILE]", stdout); err != nil {
		return err
	}
	if *eventPath == "" {
		return errors.New("mapping preview: --event FILE is required")
	}
	body, err := os.ReadFile(*eventPath)
	if err != nil {
		return err
	}
	cfg, err := mappingConfig(*configPath, environ, stderr)
	if err != nil {
		return err
	}
	s := mappingStore(cfg, *dir)
	if _, err := s.Reload(); err != nil {
		return fmt.Errorf("the mappings have problems; run `ctibridge mapping check`:\n%w", err)
	}
	ins, used, err := ingest.PreviewAll(newDecoders(cfg, time.Now), *platform, body)
	if err != nil {
		return err
	}
	set := s.Current()
	for _, in := range ins {
		leg := ""
		if in.Leg != "" {
			leg = ", leg " + in.Leg
		}
		fmt.Fprintf(stderr, "%s interaction %s (%s, %s)%s\n", used, in.ID, in.Channel, in.Direction, leg)
		if err := printJSON(stdout, set.Explain(set.MaskInteraction(in))); err != nil {
			return err
		}
	}
	return nil
}
