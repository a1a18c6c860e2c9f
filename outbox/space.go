package outbox

import (
	"errors"
	"path/filepath"
	"syscall"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrDiskFull is wrapped by the errors of writes refused because the disk
// holding the database is full. An ingest handler answers them with 503 and
// Retry-After: the event was not stored, and the sender should try again.
var ErrDiskFull = errors.New("refusing: disk full")

// Health is the database's ability to take writes, as its writes found it.
type Health struct {
	// DiskFull is set from the first write that failed for lack of disk
	// space until a write that stored something succeeds with MinFree bytes
	// free on the filesystem. Writes are still tried meanwhile: those that
	// fit are stored.
	DiskFull bool
	// Since is when the disk was first found full.
	Since time.Time
	// LastError is the last disk-full error.
	LastError string
}

// diskFull is the state behind Health; a nil pointer means not full.
type diskFull struct {
	since time.Time
	err   string
}

// Health reports whether the database is refusing writes for lack of disk
// space. It costs nothing: it reads what the last writes found.
func (db *DB) Health() Health {
	s := db.full.Load()
	if s == nil {
		return Health{}
	}
	return Health{DiskFull: true, Since: s.since, LastError: s.err}
}

// setFull records a disk-full failure, keeping the time of the first one.
// Since is for people reading it; nothing decides by it.
func (db *DB) setFull(err error) {
	since := time.Now()
	if old := db.full.Load(); old != nil {
		since = old.since
	}
	db.full.Store(&diskFull{since: since, err: err.Error()})
}

// isDiskFull reports whether err is SQLite's "database or disk is full", or
// a disk I/O error on a filesystem with less than MinFree bytes free: SQLite
// reports a failed write as SQLITE_FULL, but a failed growth of its
// shared-memory file only as a disk I/O error.
func (db *DB) isDiskFull(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary code, without the extended part
	case sqlite3.SQLITE_FULL:
		return true
	case sqlite3.SQLITE_IOERR:
		free, ok := db.freeSpace()
		return ok && free < db.MinFree
	}
	return false
}

// freeSpace returns the bytes free to this process on the database's
// filesystem, and false when the filesystem does not say.
func (db *DB) freeSpace() (int64, bool) {
	var st syscall.Statfs_t
	if syscall.Statfs(filepath.Dir(db.Path), &st) != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}

// roomAgain reports whether, after a disk-full failure, the filesystem has
// MinFree bytes free again. A small write that succeeds proves little: it
// may fit in the room a failed write left allocated in the log.
func (db *DB) roomAgain() bool {
	free, ok := db.freeSpace()
	return !ok || free >= db.MinFree
}
