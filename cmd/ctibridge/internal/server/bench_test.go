package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/server"
)

// BenchmarkEvents posts b.N distinct Bright Pattern calls over loopback
// HTTP, 8 clients per GOMAXPROCS at once, to a server with a real outbox:
// the ingest path from the request to the durable 202, in this one process
// (clients included in the allocations). ns/op is wall time per event on
// the whole machine, not CPU.
func BenchmarkEvents(b *testing.B) {
	f := open(b, func(s *server.Server) { s.MaxInFlight = 64 })
	example := readExample(b)
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport}
	var next atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bytes.Replace(example, []byte(exampleID), fmt.Appendf(nil, "bench-%012d", next.Add(1)), 1)
			resp, err := client.Post(f.url+"/v1/events/brightpattern", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("HTTP %d, want 202", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	st, err := f.DB.Stats(context.Background(), t0)
	if err != nil {
		b.Fatal(err)
	}
	if len(st.Targets) != 1 || st.Events != b.N || st.Targets[0].Pending != b.N {
		b.Fatalf("outbox holds %d events and %+v, want %d events each with a pending delivery", st.Events, st.Targets, b.N)
	}
}
