package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/outbox"
)

// exampleEvent is the Bright Pattern event the bench posts by default.
const exampleEvent = "../../../../examples/events/brightpattern-call.json"

const exampleID = "7E0C4B2A-1F3D-4A5B-9C8D-2E6F7A8B9C0D"

func TestPercentiles(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var ds []time.Duration
		for _, n := range ns {
			ds = append(ds, time.Duration(n)*time.Millisecond)
		}
		return ds
	}
	var hundred []time.Duration
	for i := 100; i >= 1; i-- { // unsorted: percentiles sorts
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		name     string
		in       []time.Duration
		p50, p99 time.Duration
	}{
		{"none", nil, 0, 0},
		{"one", ms(7), 7 * time.Millisecond, 7 * time.Millisecond},
		{"two", ms(9, 1), 1 * time.Millisecond, 9 * time.Millisecond},
		{"three", ms(3, 1, 2), 2 * time.Millisecond, 3 * time.Millisecond},
		{"a hundred, nearest rank", hundred, 50 * time.Millisecond, 99 * time.Millisecond},
		{"one slow outlier in 200", append(ms(slices.Repeat([]int{1}, 199)...), 500*time.Millisecond),
			time.Millisecond, time.Millisecond},
	}
	for _, tt := range tests {
		p50, p99 := percentiles(tt.in)
		if p50 != tt.p50 || p99 != tt.p99 {
			t.Errorf("%s: percentiles = %v, %v; want %v, %v", tt.name, p50, p99, tt.p50, tt.p99)
		}
	}
}

func TestFormatting(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 7.4: "7", 999: "999", 999.5: "1,000", 12345: "12,345",
		1234567.6: "1,234,568", 100000: "100,000"} {
		if got := count(v); got != want {
			t.Errorf("count(%v) = %q, want %q", v, got, want)
		}
	}
	if got := msec(1234567 * time.Nanosecond); got != "1.2 ms" {
		t.Errorf("msec(1.234567ms) = %q, want 1.2 ms", got)
	}
	if got := mbytes(87_650_000); got != "87.7 MB" {
		t.Errorf("mbytes(87,650,000) = %q, want 87.7 MB", got)
	}
	if got := truncateString("abcdef", 3); got != "abc…" {
		t.Errorf("truncateString = %q, want abc…", got)
	}
	if got := truncateString("abc", 3); got != "abc" {
		t.Errorf("truncateString of a short string = %q, want it whole", got)
	}
}

func TestCPUShare(t *testing.T) {
	before := cpuTimes{daemon: time.Second, self: 2 * time.Second}
	after := cpuTimes{daemon: 4 * time.Second, self: 3 * time.Second}
	if got := after.share(before, 2*time.Second); got != (cpuShare{daemon: 1.5, self: 0.5}) {
		t.Errorf("share over 2s = %+v, want 1.5 and 0.5 cores", got)
	}
	if got := after.share(before, 0); got != (cpuShare{}) {
		t.Errorf("share over no time = %+v, want zero", got)
	}
	if got := (cpuShare{1.5, 0.25}).String(); !strings.HasPrefix(got, "1.50 / 0.25 cores of ") {
		t.Errorf("cpuShare.String = %q", got)
	}
}

func TestProcReaders(t *testing.T) {
	peak, rss, err := procMemory(os.Getpid())
	if err != nil || rss <= 0 || peak < rss {
		t.Errorf("procMemory(self) = %d, %d, %v; want 0 < rss <= peak", peak, rss, err)
	}
	if _, _, err := procMemory(-1); err == nil {
		t.Error("procMemory(-1) = nil error, want one")
	}
	if got := procCPU(-1); got != 0 {
		t.Errorf("procCPU(-1) = %v, want 0", got)
	}
}

// passing is a result that meets every target, with no backlog run.
func passing() *benchResult {
	r := &benchResult{opts: Options{Events: 10000, Clients: 64, Rate: 1000, Steady: time.Second, RawRows: 1000,
		RawBatch: 100}, machine: "test machine"}
	r.rawRate, r.rawSingleRate = 40000, 300
	r.burst.sent, r.burst.acked, r.burst.elapsed = 10000, 10000, 500*time.Millisecond
	r.burst.p50, r.burst.p99 = 2*time.Millisecond, 10*time.Millisecond
	r.deliver.delivered, r.deliver.elapsed, r.deliver.duringBurst = 10000, time.Second, 9000
	r.steady.planned, r.steady.acked, r.steady.delivered, r.steady.elapsed = 1000, 1000, 1000, time.Second
	r.steady.e2eP50, r.steady.e2eP99 = 5*time.Millisecond, 20*time.Millisecond
	r.requests = 11000
	return r
}

// rows returns the report's table rows by metric: the cells after it.
func rows(t *testing.T, r *benchResult) map[string][]string {
	t.Helper()
	var b strings.Builder
	r.write(&b)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) < 3 || lines[0] != "| Metric | Result | Target | |" || lines[1] != "|---|---|---|---|" {
		t.Fatalf("report does not start with the table's header:\n%s", b.String())
	}
	m := map[string][]string{}
	for _, l := range lines[2:] {
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(l, "| "), " |"), " | ")
		if len(cells) != 4 {
			t.Fatalf("row %q has %d cells, want 4", l, len(cells))
		}
		m[cells[0]] = cells[1:]
	}
	return m
}

func TestReport_AllTargetsMet(t *testing.T) {
	got := rows(t, passing())
	want := map[string][]string{
		"Machine":                                           {"test machine", "—", "—"},
		"Durable ingest, 64 clients":                        {"20,000 events/s (10000 acked in 500ms)", "≥ 10,000 events/s (64 clients)", "PASS"},
		"Ingest ÷ raw ceiling":                              {"50.0%", "—", "—"},
		"Ack latency p50 / p99 (burst)":                     {"2.0 ms / 10.0 ms", "p99 ≤ 25 ms", "PASS"},
		"Ingest errors (not 202), burst + steady":           {"0", "0", "PASS"},
		"Deliveries/s (burst drain)":                        {"10,000 deliveries/s (10000 in 1s, from the burst's start)", "≥ 5,000 deliveries/s", "PASS"},
		"Deliveries during the burst ÷ ingest":              {"0.90 (18,000 deliveries/s while 20,000 events/s were acked)", "≥ 0.8", "PASS"},
		"Records delivered, burst + steady":                 {"11000 of 11000 acked (11000 requests, 0 duplicates)", "all", "PASS"},
		"Daemon peak RSS with a backlog":                    {"not run (--backlog 0)", "≤ 100 MB with 1,000,000 pending", "—"},
		"End-to-end p50 / p99 (202 → CRM received, steady)": {"5.0 ms / 20.0 ms", "p99 ≤ 50 ms at 1,000 events/s", "PASS"},
	}
	for metric, cells := range want {
		if !slices.Equal(got[metric], cells) {
			t.Errorf("row %q = %q, want %q", metric, got[metric], cells)
		}
	}
	if !strings.Contains(got["Settings"][0], "10000 events, 64 clients") {
		t.Errorf("settings = %q", got["Settings"][0])
	}
}

func TestReport_Misses(t *testing.T) {
	r := passing()
	r.burst.elapsed = 2 * time.Second // 5,000 events/s
	r.burst.p99 = 30 * time.Millisecond
	r.burst.errors = map[string]int{"HTTP 503: busy | retry": 3, "transport: reset": 1, "b": 1, "c": 1}
	r.deliver.delivered, r.deliver.duringBurst = 9000, 7000
	r.steady.delivered = 999
	r.backlog.n, r.backlog.peakRSS, r.backlog.rss = 1_000_000, 150e6, 90e6
	r.backlog.crmUp, r.backlog.delivered = true, 12

	got := rows(t, r)
	for _, metric := range []string{"Durable ingest, 64 clients", "Ack latency p50 / p99 (burst)",
		"Ingest errors (not 202), burst + steady", "Deliveries/s (burst drain)", "Deliveries during the burst ÷ ingest",
		"End-to-end p50 / p99 (202 → CRM received, steady)", "Records delivered, burst + steady",
		"Daemon peak RSS with 1,000,000 pending"} {
		if cells := got[metric]; len(cells) != 3 || cells[2] != "MISS" {
			t.Errorf("row %q = %q, want MISS", metric, cells)
		}
	}
	// The total, then three messages at most.
	if e := got["Ingest errors (not 202), burst + steady"][0]; !strings.HasPrefix(e, "6: ") ||
		!strings.HasSuffix(e, "; …") || strings.Count(e, "×") != 3 {
		t.Errorf("errors cell = %q, want the total and three of the four messages", e)
	}
	if d := got["Deliveries/s (burst drain)"][0]; !strings.Contains(d, "INCOMPLETE: 9000 of 10000") {
		t.Errorf("deliveries cell = %q, want it marked incomplete", d)
	}
	if d := got["End-to-end p50 / p99 (202 → CRM received, steady)"][0]; !strings.Contains(d, "INCOMPLETE: 999 of 1000 delivered") {
		t.Errorf("end-to-end cell = %q, want it marked incomplete", d)
	}
	if d := got["Daemon peak RSS with 1,000,000 pending"][0]; !strings.HasPrefix(d, "150.0 MB peak, 90.0 MB at the end") ||
		!strings.Contains(d, "CRM up, 12 delivered") {
		t.Errorf("backlog cell = %q", d)
	}

	// The RSS target is for a million pending: a smaller backlog is
	// reported, not judged.
	r.backlog.n = 1000
	if cells := rows(t, r)["Daemon peak RSS with 1,000 pending"]; len(cells) != 3 || cells[2] != "—" {
		t.Errorf("small backlog row = %q, want no verdict", cells)
	}

	// An error message with "|" is escaped.
	r.burst.errors = map[string]int{"HTTP 503: a | b": 2}
	if e := rows(t, r)["Ingest errors (not 202), burst + steady"][0]; e != `2: 2× HTTP 503: a \| b` {
		t.Errorf("errors cell = %q, want the | escaped", e)
	}
}

func TestRun_RefusesBadOptions(t *testing.T) {
	o := Options{EventFile: exampleEvent, Clients: 1, Events: 1, Rate: 1, Steady: time.Second, RawRows: 1,
		RawBatch: 1, Duration: time.Second, DrainTimeout: time.Second, BacklogRun: time.Second}
	for name, edit := range map[string]func(*Options){
		"no clients":           func(o *Options) { o.Clients = 0 },
		"negative backlog":     func(o *Options) { o.Backlog = -1 },
		"negative concurrency": func(o *Options) { o.Concurrency = -1 },
		"no rate":              func(o *Options) { o.Rate = 0 },
	} {
		bad := o
		edit(&bad)
		var out strings.Builder
		if err := Run(context.Background(), bad, &out, &out, nil); err == nil || !strings.Contains(err.Error(), "--clients") {
			t.Errorf("%s: Run = %v, want the flags named", name, err)
		}
		if out.Len() != 0 {
			t.Errorf("%s: Run wrote %q before refusing", name, out.String())
		}
	}
}

func newTestBench(t *testing.T, o Options, environ []string) *bench {
	t.Helper()
	if o.EventFile == "" {
		o.EventFile = exampleEvent
	}
	o.Dir = t.TempDir()
	b, err := newBench(o, new(strings.Builder), environ)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.cleanup)
	return b
}

func TestNewBench(t *testing.T) {
	dir := t.TempDir()
	noID := filepath.Join(dir, "no-id.json")
	os.WriteFile(noID, []byte(`{"event":"ON_SAVE_ACTIVITY_RECORD","data":{}}`), 0o644)
	for _, file := range []string{filepath.Join(dir, "missing.json"), noID} {
		if _, err := newBench(Options{EventFile: file, Dir: dir}, new(strings.Builder), nil); err == nil {
			t.Errorf("newBench with %s = nil error, want one", file)
		}
	}

	b := newTestBench(t, Options{Clients: 1}, []string{"PATH=/bin", config.EnvPrefix + "SERVER_LISTEN=0.0.0.0:80", "HOME=/root"})
	if !slices.Equal(b.environ, []string{"PATH=/bin", "HOME=/root"}) {
		t.Errorf("daemon environment = %q, want the %s variables left out", b.environ, config.EnvPrefix)
	}
	ev := string(b.event("bench-burst-00000001"))
	if strings.Contains(ev, exampleID) || strings.Count(ev, "bench-burst-00000001") < 2 {
		t.Errorf("event copy still has the template's id or lacks the new one:\n%s", ev)
	}
	if got := b.key("x-1"); got != "brightpattern:x-1:jane.doe:calls" {
		t.Errorf("key = %q", got)
	}
	b.cleanup()
	if _, err := os.Stat(b.dir); !os.IsNotExist(err) {
		t.Errorf("cleanup left %s (%v)", b.dir, err)
	}
}

// TestWriteConfigAndSeedBacklog writes the daemon's config, loads it as
// the daemon would, and seeds a backlog into its outbox: every seeded
// delivery is pending, with the key and payload the daemon would give it.
func TestWriteConfigAndSeedBacklog(t *testing.T) {
	b := newTestBench(t, Options{Concurrency: 3}, nil)
	path, err := b.writeConfig("backlog", "http://127.0.0.1:9/activities")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("config.Load of the bench's config: %v", err)
	}
	crm, ok := cfg.Targets["crm"]
	if !ok || crm.URL != "http://127.0.0.1:9/activities" || crm.Concurrency != 3 {
		t.Errorf("target crm = %+v, want the CRM's URL and concurrency 3", crm)
	}
	if err := b.seedBacklog(context.Background(), path, 3); err != nil {
		t.Fatal(err)
	}

	db := outbox.NewDB(cfg.Store.Path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ds, err := db.List(context.Background(), outbox.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("seeded %d deliveries, want 3", len(ds))
	}
	for i, d := range slices.Backward(ds) { // List is newest first
		id := fmt.Sprintf("bench-backlog-%08d", len(ds)-1-i)
		if d.Target != "crm" || d.Key != b.key(id) || d.State != outbox.StatePending {
			t.Errorf("delivery %d = %s %s %s, want crm %s pending", d.ID, d.Target, d.Key, d.State, b.key(id))
		}
		res, err := db.Show(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p := string(res.Payload); !strings.Contains(p, `"interactionId":"`+id+`"`) || strings.Contains(p, "TEMPLATE") {
			t.Errorf("payload of %s = %s, want its own interactionId", id, p)
		}
	}
}

func TestRawInsertRate(t *testing.T) {
	b := newTestBench(t, Options{}, nil)
	path := filepath.Join(t.TempDir(), "raw.db")
	rate, err := rawInsertRate(context.Background(), path, b, 25, 10, time.Minute)
	if err != nil || rate <= 0 {
		t.Fatalf("rawInsertRate = %v, %v; want a positive rate", rate, err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil || n != 25 {
		t.Errorf("the table has %d rows (%v), want 25 in batches of 10", n, err)
	}
}

func TestBenchCRM(t *testing.T) {
	crm, err := startBenchCRM()
	if err != nil {
		t.Fatal(err)
	}
	defer crm.close()
	send := func(key string) int {
		req, _ := http.NewRequest(http.MethodPost, crm.url, strings.NewReader(`{}`))
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := send("a"); s != http.StatusCreated {
		t.Errorf("first record = %d, want 201", s)
	}
	if s := send("a"); s != http.StatusOK {
		t.Errorf("same key again = %d, want 200", s)
	}
	done := make(chan int)
	go func() {
		_, got := crm.wait(context.Background(), []string{"a", "b"}, time.Now().Add(time.Minute))
		done <- got
	}()
	// wait returns once b arrives, long before its deadline.
	for {
		crm.mu.Lock()
		waiting := crm.waiting != nil
		crm.mu.Unlock()
		if waiting {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	send("b")
	select {
	case got := <-done:
		if got != 2 {
			t.Errorf("wait saw %d of 2 keys", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("wait did not return when the last key arrived")
	}
	if reqs, dups := crm.counts(); reqs != 3 || dups != 1 {
		t.Errorf("counts = %d requests, %d duplicates; want 3, 1", reqs, dups)
	}
	if at := crm.arrivals(); len(at) != 2 {
		t.Errorf("arrivals = %v, want a and b", at)
	}
}

func TestPost(t *testing.T) {
	answers := map[string]struct {
		status int
		body   string
	}{
		"/ok":      {http.StatusAccepted, `{"id":1,"activities":1}`},
		"/busy":    {http.StatusServiceUnavailable, `{"error":"busy: server.max_in_flight"}`},
		"/nothing": {http.StatusAccepted, `{"id":1,"activities":0}`},
		"/garbled": {http.StatusAccepted, `<html>`},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Path]
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	}))
	defer srv.Close()
	b := newTestBench(t, Options{Clients: 1}, nil)
	for path, want := range map[string]string{
		"/ok": "", "/busy": "HTTP 503: busy: server.max_in_flight", "/nothing": "0 activities", "/garbled": "unreadable body",
	} {
		err := b.post(context.Background(), srv.URL+path, []byte(`{}`))
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("post to %s = %v, want %q", path, err, want)
		}
	}
	srv.Close()
	if err := b.post(context.Background(), srv.URL+"/ok", []byte(`{}`)); err == nil || !strings.HasPrefix(err.Error(), "transport: ") ||
		strings.Contains(err.Error(), srv.URL) {
		t.Errorf("post to a closed server = %v, want a transport error without the URL", err)
	}
}

// measured is a result with the CPU readings the cost rows need. Its
// windows and counts differ, so that a formula dividing by the wrong one
// shows.
func measured() *benchResult {
	r := passing()
	r.httpRate, r.httpCPU = 20000, 1.6
	r.burst.acked, r.burst.elapsed = 10000, 2*time.Second
	r.deliver.delivered, r.deliver.duringBurst = 8000, 2000
	r.burstCPU = cpuShare{daemon: 0.6, self: 0.35}
	r.drainCPU, r.drainWall = cpuShare{daemon: 2.4, self: 1.2}, 500*time.Millisecond
	return r
}

func TestReport_CPUCosts(t *testing.T) {
	r := measured()

	const (
		perDelivery = "CPU per delivery after the burst: daemon + bench (CRM)"
		perEvent    = "CPU per event in the burst, deliveries taken out: daemon + bench (clients)"
		budget      = "Cores both ratio targets need at these costs"
	)
	got := rows(t, r)
	want := map[string]string{
		// 1.6 cores for 20,000 events/s
		"HTTP ceiling: bare server, decode + group commit, WAL+FULL, 64 clients": "20,000 events/s (1.60 cores: 80 µs of CPU per event)",
		// 6,000 deliveries after the burst in 2.4 × 0.5 + 1.2 × 0.5 CPU seconds
		perDelivery: "200 µs + 100 µs",
		// the burst's 0.6 × 2 + 0.35 × 2 CPU seconds less 2,000 deliveries
		// at that cost, for 10,000 events
		perEvent: "80 µs + 50 µs",
		// 16,000 events/s at 130 µs and 12,800 deliveries/s at 300 µs;
		// with the ceiling's 80 µs per event instead of 130
		budget: fmt.Sprintf("5.9 of %d; 5.1 if an event cost no more than in the ceiling", runtime.NumCPU()),
	}
	for metric, result := range want {
		if cells := got[metric]; len(cells) != 3 || cells[0] != result {
			t.Errorf("row %q = %q, want %q", metric, cells, result)
		}
	}

	// Each row is printed, and says why, when the costs cannot be told.
	for name, tt := range map[string]struct {
		edit func(r *benchResult)
		why  string
	}{
		"no CPU times": {func(r *benchResult) { r.drainCPU = cpuShare{} }, "no CPU times"},
		"no ceiling":   {func(r *benchResult) { r.httpRate = 0 }, "no events acked"},
		"short drain": {func(r *benchResult) { r.deliver.duringBurst = r.deliver.delivered - 999 },
			"999 deliveries in 500ms after the burst; it takes 1000 in 500ms"},
		"drain too quick": {func(r *benchResult) { r.drainWall = 100 * time.Millisecond },
			"6000 deliveries in 100ms after the burst"},
		"coarse burst": {func(r *benchResult) { r.burstCPU.daemon = 0.1 }, "took more CPU than the whole burst"},
	} {
		r := measured()
		tt.edit(r)
		got := rows(t, r)
		for _, metric := range []string{perDelivery, perEvent, budget} {
			if cells := got[metric]; len(cells) != 3 || !strings.HasPrefix(cells[0], "not measured: ") ||
				!strings.Contains(cells[0], tt.why) {
				t.Errorf("%s: row %q = %q, want not measured because %q", name, metric, cells, tt.why)
			}
		}
	}
}
