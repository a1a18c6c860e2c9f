package brightpattern_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ctibridge/ctibridge/connector/brightpattern"
)

// BenchmarkDecode decodes the newcomer's sample call (1.2 KB, the
// body the ingest bench posts), the per-event decoding cost of ingest.
func BenchmarkDecode(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("..", "..", "examples", "events", "brightpattern-call.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (brightpattern.Decoder{}).Decode(body, nil); err != nil {
			b.Fatal(err)
		}
	}
}
