package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/targets"
	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/tlsfile"
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
		return checkConfig(cfg, stdout)
	}
	out, err := cfg.Show()
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// checkConfig builds what serve would build from cfg without starting it:
// each target (its keys, key files and URLs; nothing is sent to a CRM), the
// TLS certificate, and the mappings against the targets.
func checkConfig(cfg config.Config, stdout io.Writer) error {
	var errs []error
	discard := slog.New(slog.DiscardHandler)
	for _, name := range cfg.TargetNames() {
		if cfg.Targets[name].Type == config.TypeJSONL {
			continue // building it would create its file
		}
		t, err := targets.New(name, cfg.Targets[name], discard, func(string, int, int) {})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if c, ok := t.(io.Closer); ok {
			c.Close()
		}
	}
	if cfg.Server.TLSCertFile != "" {
		if _, err := tlsfile.New(cfg.Server.TLSCertFile, cfg.Server.TLSKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("server.tls_cert_file: %w", err))
		}
	}
	if _, err := cfg.LoadMappings(); err != nil {
		errs = append(errs, fmt.Errorf("mappings: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	_, err := fmt.Fprintf(stdout, "ok: %d targets (%v)\n", len(cfg.Targets), cfg.TargetNames())
	return err
}
