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
	"sort"
	"strings"

	"github.com/ctibridge/ctibridge/connector"
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

// mappingStore returns a store for dir, or for the config's mappings when
// dir is empty.
func mappingStore(configPath, dir string, environ []string) (*mapping.Store, error) {
	cfg, err := LoadConfig(configPath, environ)
	if err != nil {
		return nil, err
	}
	if dir != "" {
		cfg.Mapping.Dir = dir
	}
	return newMappingStore(cfg), nil
}

// mappingCheck loads a mapping directory and lists every problem.
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
	s, err := mappingStore(*configPath, dir, environ)
	if err != nil {
		return err
	}
	if _, err := s.Reload(); err != nil {
		var ps mapping.Problems
		if errors.As(err, &ps) {
			fmt.Fprintln(stdout, err)
			return fmt.Errorf("%d problems", len(ps))
		}
		return err
	}
	st := s.Status()
	fmt.Fprintf(stdout, "ok: %d rules in %d files (%s)\n", st.Rules, len(st.Files), strings.Join(st.Files, ", "))
	return nil
}

// mappingPreview decodes an event (or a sequence of them, one per line, as
// a platform posts them) and prints what each rule makes of the interaction
// it completes, or why a rule did not match. Nothing is stored or sent.
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
	s, err := mappingStore(*configPath, *dir, environ)
	if err != nil {
		return err
	}
	if _, err := s.Reload(); err != nil {
		return fmt.Errorf("the mappings have problems; run `ctibridge mapping check`:\n%w", err)
	}
	cfg, _ := LoadConfig(*configPath, environ)
	in, used, err := previewInteraction(newDecoders(cfg), *platform, body)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s interaction %s (%s, %s)\n", used, in.ID, in.Channel, in.Direction)
	return printJSON(stdout, s.Current().Explain(in))
}

// previewInteraction runs body through platform's decoder (or each one in
// turn, when platform is empty) with an in-memory snapshot, as the daemon
// would, and returns the last interaction it completes.
func previewInteraction(decoders map[string]decoder, platform string, body []byte) (*connector.Interaction, string, error) {
	names := []string{platform}
	if platform == "" {
		names = names[:0]
		for n := range decoders {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	var errs []error
	for _, name := range names {
		dec, ok := decoders[name]
		if !ok {
			return nil, "", fmt.Errorf("unknown platform %q", name)
		}
		in, err := replay(dec, body)
		if err == nil {
			return in, name, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return nil, "", fmt.Errorf("no platform makes an interaction of this event:\n%w", errors.Join(errs...))
}

// replay decodes each line of body (or body whole, when it is one JSON
// document) with an in-memory snapshot store and duplicate detection.
func replay(dec decoder, body []byte) (*connector.Interaction, error) {
	lines := [][]byte{body}
	if !json.Valid(body) {
		lines = bytes.Split(body, []byte("\n"))
	}
	states, seen := map[string][]byte{}, map[string]bool{}
	var last *connector.Interaction
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev, err := dec.Decode(line, func(key string) ([]byte, error) { return states[key], nil })
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if seen[ev.Key] {
			continue
		}
		seen[ev.Key] = true
		if ev.StateKey != "" {
			if ev.State == nil {
				delete(states, ev.StateKey)
			} else {
				states[ev.StateKey] = ev.State
			}
		}
		if ev.Interaction != nil {
			last = ev.Interaction
		}
	}
	if last == nil {
		return nil, errors.New("the events complete no interaction (a sequence needs its last event, such as callFinished or MARKDONE_APPLY)")
	}
	return last, nil
}
