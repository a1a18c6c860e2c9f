package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// benchCRM is the fake CRM: it answers 201 and records when each
// idempotency key first arrived.
type benchCRM struct {
	url  string
	srv  *http.Server
	ln   net.Listener
	mu   sync.Mutex
	at   map[string]time.Time
	reqs int64
	dups int64
	// waiting holds the keys wait still expects; allIn is closed when the
	// last of them arrives.
	waiting map[string]struct{}
	allIn   chan struct{}
}

func startBenchCRM() (*benchCRM, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: fake CRM: %w", err)
	}
	c := &benchCRM{ln: ln, url: "http://" + ln.Addr().String() + "/activities", at: map[string]time.Time{}}
	c.srv = &http.Server{Handler: http.HandlerFunc(c.serve), ReadHeaderTimeout: 10 * time.Second}
	go c.srv.Serve(ln)
	return c, nil
}

func (c *benchCRM) serve(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	now := time.Now()
	k := r.Header.Get("Idempotency-Key")
	c.mu.Lock()
	c.reqs++
	status := http.StatusCreated
	if _, ok := c.at[k]; ok {
		c.dups++
		status = http.StatusOK
	} else {
		c.at[k] = now
		if _, ok := c.waiting[k]; ok {
			delete(c.waiting, k)
			if len(c.waiting) == 0 {
				close(c.allIn)
			}
		}
	}
	c.mu.Unlock()
	w.WriteHeader(status)
}

// wait waits until every key has arrived or until deadline, and returns
// the latest arrival among keys and how many arrived. It costs the CRM one
// map lookup per request, so that waiting does not take CPU from the
// daemon under test.
func (c *benchCRM) wait(ctx context.Context, keys []string, deadline time.Time) (time.Time, int) {
	c.mu.Lock()
	c.waiting, c.allIn = make(map[string]struct{}, len(keys)), make(chan struct{})
	for _, k := range keys {
		if _, ok := c.at[k]; !ok {
			c.waiting[k] = struct{}{}
		}
	}
	if len(c.waiting) == 0 {
		close(c.allIn)
	}
	allIn := c.allIn
	c.mu.Unlock()
	timer := time.NewTimer(time.Until(deadline))
	select {
	case <-allIn:
	case <-timer.C:
	case <-ctx.Done():
	}
	timer.Stop()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting = nil
	var last time.Time
	got := 0
	for _, k := range keys {
		if at, ok := c.at[k]; ok {
			got++
			if at.After(last) {
				last = at
			}
		}
	}
	return last, got
}

func (c *benchCRM) arrivals() map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]time.Time, len(c.at))
	for k, v := range c.at {
		m[k] = v
	}
	return m
}

func (c *benchCRM) counts() (requests, duplicates int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reqs, c.dups
}

func (c *benchCRM) close() { c.srv.Close() }

// benchDaemon is the daemon under test, in a child process.
type benchDaemon struct {
	cmd     *exec.Cmd
	addr    string
	started time.Duration // from exec to listening
	exited  chan struct{} // closed when its stderr ends
	mu      sync.Mutex
	tail    []string // its last log lines
}

var benchAddrLine = regexp.MustCompile(`msg="ctibridge serving" addr=(\S+)`)

// startDaemon runs `ctibridge serve --config path` and waits until it
// listens.
func (b *bench) startDaemon(ctx context.Context, path string) (*benchDaemon, error) {
	cmd, err := b.opts.Daemon(b.environ, "serve", "--config", path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start the daemon: %w", err)
	}
	d := &benchDaemon{cmd: cmd, exited: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		defer close(d.exited)
		s := bufio.NewScanner(stderr)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			line := s.Text()
			d.mu.Lock()
			d.tail = append(d.tail, line)
			if len(d.tail) > 20 {
				d.tail = d.tail[1:]
			}
			d.mu.Unlock()
			if m := benchAddrLine.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case d.addr = <-found:
		d.started = time.Since(t0)
		return d, nil
	case <-d.exited:
		cmd.Wait()
		return nil, fmt.Errorf("bench: the daemon exited before listening:\n%s", d.logTail())
	case <-time.After(60 * time.Second):
		d.kill()
		return nil, fmt.Errorf("bench: the daemon did not listen within 60s:\n%s", d.logTail())
	case <-ctx.Done():
		d.kill()
		return nil, ctx.Err()
	}
}

func (d *benchDaemon) logTail() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.tail, "\n")
}

// stop stops the daemon with SIGTERM, as an operator would.
func (d *benchDaemon) stop() error {
	if d.cmd.ProcessState != nil {
		return nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		d.kill()
		return errors.New("the daemon did not stop within 30s of SIGTERM; killed it")
	}
	if err := d.cmd.Wait(); err != nil {
		return fmt.Errorf("the daemon exited with %v:\n%s", err, d.logTail())
	}
	return nil
}

func (d *benchDaemon) kill() {
	if d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Kill()
	<-d.exited
	d.cmd.Wait()
}

// procMemory returns the peak (VmHWM) and current (VmRSS) resident set
// size of process pid, in bytes.
func procMemory(pid int) (peak, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmHWM" && name != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(val), "kB")), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %v", pid, name, err)
		}
		if name == "VmHWM" {
			peak = kb << 10
		} else {
			rss = kb << 10
		}
	}
	if peak == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
	}
	return peak, rss, nil
}

// cpuTimes are the CPU times used so far by the daemon and by this process.
type cpuTimes struct{ daemon, self time.Duration }

// cpuShare is the CPU used over a period, in cores.
type cpuShare struct{ daemon, self float64 }

func (c cpuShare) String() string {
	return fmt.Sprintf("%.2f / %.2f cores of %d", c.daemon, c.self, runtime.NumCPU())
}

func (c cpuTimes) share(before cpuTimes, wall time.Duration) cpuShare {
	if wall <= 0 {
		return cpuShare{}
	}
	return cpuShare{(c.daemon - before.daemon).Seconds() / wall.Seconds(), (c.self - before.self).Seconds() / wall.Seconds()}
}

func readCPU(pid int) cpuTimes {
	return cpuTimes{procCPU(pid), procCPU(os.Getpid())}
}

// procCPU returns the user and system CPU time process pid used, or 0 if
// it cannot tell.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after it. utime and stime are fields 14 and 15, in clock ticks of
	// 1/100 s (USER_HZ on Linux).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
