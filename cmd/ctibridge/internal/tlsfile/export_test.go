package tlsfile

import "time"

// SetClockForTest replaces r's clock, so that tests need not wait out the
// second between two looks at the files.
func SetClockForTest(r *Reloader, now func() time.Time) { r.now = now }
