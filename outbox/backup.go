package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database to path, a new file
// readable only by its owner, while the daemon keeps accepting and
// delivering: it is one read transaction (VACUUM INTO), so the copy is the
// database as of one moment, compacted. It refuses to overwrite a file.
//
// Restoring is putting the copy in place of the database while ctibridge is
// stopped. A restored copy delivers what was waiting at the moment of the
// backup; the rows it shows delivered stay delivered. Deliveries running at
// that moment are sent again under their idempotency key.
func (db *DB) Backup(ctx context.Context, path string) error {
	if path == "" {
		return errors.New("backup: file name required")
	}
	// VACUUM INTO writes into a file that does not exist or is empty;
	// creating it first, exclusively, refuses to overwrite a backup and
	// gives the copy its mode (SQLite would make it world-readable).
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	f.Close()
	if err := db.vacuumInto(ctx, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	return nil
}

// vacuumInto copies the database into the empty file at path and makes the
// copy durable.
func (db *DB) vacuumInto(ctx context.Context, path string) error {
	// Its own connection: the read pool is query_only, which VACUUM INTO
	// counts as writing, and the writer must keep writing meanwhile.
	c, err := sql.Open("sqlite", db.dsn())
	if err != nil {
		return err
	}
	_, err = c.ExecContext(ctx, `VACUUM INTO ?`, path)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	// The directory entry too, or a crash could lose the whole file.
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
