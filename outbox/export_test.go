package outbox

import (
	"database/sql"
	"time"
)

// RawForTest exposes the writer connection to tests that check the schema
// itself.
func RawForTest(db *DB) *sql.DB { return db.wconn }

// SetFullRetryForTest sets how often the writer tries a write of its own
// while the disk is full. Call it before Open.
func SetFullRetryForTest(db *DB, d time.Duration) { db.fullRetry = d }
