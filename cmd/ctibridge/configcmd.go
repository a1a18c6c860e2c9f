package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
)

// runConfig runs `ctibridge config VERB`.
func runConfig(args []string, stdout io.Writer, environ []string) error {
	if len(args) == 0 {
		return errors.New("config: want a verb: show, check")
	}
	verb := args[0]
	if verb != "show" && verb != "check" {
		return fmt.Errorf("config: unknown verb %q (want show or check)", verb)
	}
	fs := newFlagSet("config " + verb)
	configPath := fs.String("config", "", "TOML config `file` (default: embedded defaults)")
	pos, err := parseFlags(fs, args[1:], "[FILE | --config FILE]", stdout)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 1:
		return fmt.Errorf("config %s: one file at most", verb)
	case len(pos) == 1 && *configPath != "":
		return fmt.Errorf("config %s: name the file once", verb)
	case len(pos) == 1:
		*configPath = pos[0]
	}
	// Loading validates everything and resolves every secret: what
	// `serve` would do, without starting anything.
	cfg, err := config.Load(*configPath, environ)
	if err != nil {
		return err
	}
	if verb == "check" {
		fmt.Fprintf(stdout, "ok: %d targets (%v)\n", len(cfg.Targets), cfg.TargetNames())
		return nil
	}
	out, err := cfg.Show()
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
