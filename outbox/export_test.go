package outbox

import "database/sql"

// RawForTest exposes the writer connection to tests that check the schema
// itself.
func RawForTest(db *DB) *sql.DB { return db.wconn }
