package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// runBackup runs `ctibridge backup FILE`: a consistent copy of the live
// outbox (SQLite's VACUUM INTO), taken while the daemon keeps running. The
// copy is a complete database: to restore, stop the daemon and put the copy
// at store.path (docs/operations.md).
func runBackup(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	fs := newFlagSet("backup")
	configPath := fs.String("config", "", "TOML config `file` (default: embedded defaults)")
	pos, err := parseFlags(fs, args, "FILE [--config FILE]", stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("backup: want the file to write, which must not exist yet")
	}
	db, err := openExistingOutbox(*configPath, environ)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Backup(ctx, pos[0]); err != nil {
		return err
	}
	fi, err := os.Stat(pos[0])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "backed up %s to %s (%d bytes)\n", db.Path, pos[0], fi.Size())
	return err
}
