package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SendFunc delivers one message. It returns what the target answered, and
// nil on success. A failure is retried unless the error has a method
// Permanent() bool that returns true; an error with a method RetryAfter()
// time.Duration asks for that wait instead of the schedule's, and one with
// ResponseBody() string has the target's answer recorded with the attempt.
type SendFunc func(ctx context.Context, m Message) (Receipt, error)

// SendBatchFunc delivers several messages of one target at once, such as a
// CRM's batch endpoint does. It returns one Receipt and one error per
// message, in the order of ms, each with the meaning SendFunc's has: a
// batch may deliver some messages and fail others.
type SendBatchFunc func(ctx context.Context, ms []Message) ([]Receipt, []error)

// Receipt is what a target answered to one send.
type Receipt struct {
	// Status is the HTTP status of the final response, 0 when none arrived.
	Status int
	// RecordID is the target's own id of the record it wrote, when it says:
	// kept with the delivery so that a later step can find the record.
	RecordID string
}

// Target is one destination the dispatcher delivers to. Each target has its
// own loop and its own concurrency, so a slow or failing target never holds
// up another.
type Target struct {
	Name string
	Send SendFunc
	// SendBatch, when set, is used instead of Send: each send takes up to
	// BatchSize due messages. Concurrency, RateLimit and the breaker then
	// count batches; each message's attempt is still recorded on its own.
	SendBatch SendBatchFunc
	// BatchSize bounds the messages of one SendBatch; default 200.
	BatchSize int
	// Concurrency bounds the sends in flight; default 4.
	Concurrency int
	Retry       RetryPolicy
	// RateLimit caps sends per second; 0 means no limit.
	RateLimit float64
	// BreakerFailures failed attempts in a row pause the target for
	// BreakerCooldown, doubling while probes keep failing; 0 disables the
	// breaker.
	BreakerFailures int
	BreakerCooldown time.Duration
}

// Dispatcher claims due deliveries and sends them, recording every attempt.
//
// Only one Dispatcher runs per database: Open takes a lock file beside it.
// That is what lets Open return at once every delivery a crashed process
// left running, instead of waiting for its lease to expire.
type Dispatcher struct {
	DB      *DB
	Targets []Target
	Logger  *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Lease is how long a claimed delivery stays running before the rescuer
	// may hand it out again. A delivery claimed ahead may start its send
	// with half of it left, so half the lease must outlast the longest
	// send, or a slow delivery would be sent twice. Default 5 minutes.
	Lease time.Duration
	// PollInterval bounds how long an idle target waits before it looks
	// for due deliveries again (rows may be changed by other processes, such
	// as `ctibridge outbox retry`). Default 1 second.
	PollInterval time.Duration
	// OnAttempt, when set, is told of every attempt once it is recorded,
	// for metrics. It must not block.
	OnAttempt func(target string, a Attempt)

	lock     *lockFile
	health   map[string]*breaker
	stop     context.CancelFunc // stops claiming
	hardStop context.CancelFunc // cancels sends in flight
	sendCtx  context.Context
	wake     map[string]chan struct{}
	wg       sync.WaitGroup
	records  chan record   // attempts waiting for recordLoop
	recorded chan struct{} // closed when recordLoop has written them all
}

// Open validates the targets, returns expired leases to the queue, and
// starts one delivery loop per target.
func (d *Dispatcher) Open() error {
	if d.DB == nil {
		return errors.New("dispatcher: DB required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Lease <= 0 {
		d.Lease = 5 * time.Minute
	}
	if d.PollInterval <= 0 {
		d.PollInterval = time.Second
	}
	d.wake = make(map[string]chan struct{}, len(d.Targets))
	d.health = make(map[string]*breaker, len(d.Targets))
	for i := range d.Targets {
		t := &d.Targets[i]
		if t.Name == "" || (t.Send == nil && t.SendBatch == nil) {
			return fmt.Errorf("dispatcher: target %d needs a name and a send function", i)
		}
		if _, dup := d.wake[t.Name]; dup {
			return fmt.Errorf("dispatcher: target %q listed twice", t.Name)
		}
		if t.Concurrency <= 0 {
			t.Concurrency = 4
		}
		if t.BatchSize <= 0 {
			t.BatchSize = 200
		}
		d.wake[t.Name] = make(chan struct{}, 1)
		d.health[t.Name] = newBreaker(t.BreakerFailures, t.BreakerCooldown)
	}
	l, err := lock(d.DB.Path + ".dispatcher-lock")
	if err != nil {
		return fmt.Errorf("dispatcher: another ctibridge is delivering from %s: %w", d.DB.Path, err)
	}
	// Holding the lock, we know that any running delivery belongs to a
	// process that is gone: all of them are due again now.
	n, err := d.DB.rescue(context.Background(), time.UnixMilli(math.MaxInt64), d.Now())
	if err != nil {
		l.unlock()
		return err
	}
	if n > 0 {
		d.Logger.Warn("returned deliveries left running by a stopped process", "count", n)
	}
	d.lock = l

	var ctx context.Context
	ctx, d.stop = context.WithCancel(context.Background())
	d.sendCtx, d.hardStop = context.WithCancel(context.Background())
	d.records, d.recorded = make(chan record, maxRecordBatch), make(chan struct{})
	go d.recordLoop()
	for i := range d.Targets {
		t := &d.Targets[i]
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.loop(ctx, t)
		}()
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.rescueLoop(ctx)
	}()
	return nil
}

// Status returns each target's delivery health.
func (d *Dispatcher) Status() map[string]TargetStatus {
	m := make(map[string]TargetStatus, len(d.health))
	for name, b := range d.health {
		m[name] = b.status()
	}
	return m
}

// Notify tells target's loop that new deliveries may be due.
func (d *Dispatcher) Notify(target string) {
	if c, ok := d.wake[target]; ok {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Close stops claiming and waits for the sends in flight to finish. If ctx
// ends first, it cancels them; they are recorded as failed attempts and
// retried at the next start. Close is idempotent.
func (d *Dispatcher) Close(ctx context.Context) error {
	if d.stop == nil {
		return nil
	}
	d.stop()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("dispatcher: sends still in flight at shutdown were cancelled: %w", ctx.Err())
	}
	d.hardStop()
	<-done
	// Every send has ended and handed its attempt over: write them all
	// before giving up the lock.
	close(d.records)
	<-d.recorded
	err = errors.Join(err, d.lock.unlock())
	d.stop, d.lock = nil, nil // closed: a second Close does nothing
	return err
}

// aheadPerSlot bounds how many deliveries a target keeps claimed ahead,
// per send slot: when a send ends, the next one starts at once from those,
// instead of after a claim, which waits its turn at the writer behind the
// accepted events. During a burst of events a claim takes a few
// milliseconds while a send to a fast target takes one or two: sixteen per
// slot keep four slots busy (measured in docs/benchmarks.md).
const aheadPerSlot = 16

// loop claims and sends target's due deliveries until ctx ends. It claims
// no more than the free concurrency slots, the rate limit and the circuit
// breaker allow and, for a target that takes one message per send and has
// no rate limit, some more ahead (see aheadFor).
func (d *Dispatcher) loop(ctx context.Context, t *Target) {
	log := d.Logger.With("target", t.Name)
	brk := d.health[t.Name]
	rate := &limiter{rate: t.RateLimit}
	slots := make(chan struct{}, t.Concurrency)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	var sendTime atomic.Int64 // a moving average of the sends' durations, in ns
	q := &aheadQueue{}
	// At shutdown, what was claimed ahead is given back, not left running.
	defer func() { d.release(q.drain(), log) }()
	// next is the claimed-ahead delivery a sender goes on with, if it may
	// still start one: no shutdown has begun, the breaker is closed and
	// the claim is fresh.
	next := func() (Message, bool) {
		if ctx.Err() != nil || brk.status().Breaker != BreakerClosed {
			return Message{}, false
		}
		m, ok, low := q.pop(d.Now().Add(-d.Lease / 2))
		if low {
			d.Notify(t.Name) // claim more while these are sent
		}
		return m, ok
	}
	failures := 0
	for {
		now := d.Now()
		// A claim ahead must start with most of its lease left for the
		// send, and a paused target sends nothing: give those back.
		closed := brk.status().Breaker == BreakerClosed
		if !closed || q.stale(now.Add(-d.Lease/2)) {
			d.release(q.drain(), log)
		}
		free := cap(slots) - len(slots)
		allowed, wait, probe := brk.allow(now, free)
		if allowed > 0 {
			var rwait time.Duration
			allowed, rwait = rate.take(now, allowed)
			wait = max(wait, rwait)
		}
		// Each send takes one message, or up to BatchSize with SendBatch.
		per := 1
		if t.SendBatch != nil {
			per = t.BatchSize
		}
		var sends [][]Message
		for range allowed {
			m, ok := q.popFirst()
			if !ok {
				break
			}
			sends = append(sends, []Message{m})
		}
		want := (allowed - len(sends)) * per
		topUp := 0
		ahead := d.aheadFor(t, time.Duration(sendTime.Load()))
		q.setAhead(ahead)
		if ahead > 0 && closed && !probe && q.len() <= ahead/2 {
			topUp = ahead - q.len()
		}
		more := false // the claim took all it asked for: more may be due
		// A size with a statement of its own is planned once; the top-up
		// gives way to it, the free slots' share never does.
		if n := max(literalClaim(want+topUp), want); n > 0 {
			msgs, err := d.DB.Claim(ctx, t.Name, n, now, d.Lease)
			if err != nil && ctx.Err() == nil {
				failures++
				log.Error("claim failed", "err", err, "consecutive_errors", failures)
			} else {
				failures = 0
			}
			more = len(msgs) == n
			for len(msgs) > 0 && len(sends) < allowed {
				batch := msgs[:min(per, len(msgs))]
				msgs = msgs[len(batch):]
				sends = append(sends, batch)
			}
			q.push(msgs, now)
		}
		for _, batch := range sends {
			slots <- struct{}{}
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				if t.SendBatch != nil {
					d.deliverBatch(t, batch, log)
				} else {
					for m, ok := batch[0], true; ok; m, ok = next() {
						took := d.deliver(t, m, log)
						avg := sendTime.Load()
						// Two senders may race here and lose one
						// sample: harmless for an average.
						sendTime.Store(avg + (int64(took)-avg)/8)
					}
				}
				<-slots
				d.Notify(t.Name)
			}()
		}
		rate.giveBack(allowed - len(sends))
		if more || len(sends) > 0 && len(sends) == allowed {
			continue
		}
		if probe && len(sends) == 0 {
			brk.unusedProbe()
		}
		if wait <= 0 {
			wait = d.PollInterval
			if failures > 0 {
				wait = min(time.Duration(failures)*d.PollInterval, 30*time.Second)
			} else if free > 0 {
				if due, err := d.DB.NextDue(ctx, t.Name); err == nil && !due.IsZero() {
					wait = min(wait, max(due.Sub(d.Now()), time.Millisecond))
				}
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-d.wake[t.Name]:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// aheadFor is how many deliveries t keeps claimed ahead when its sends
// take sendTime on average: none with a rate limit or a batch endpoint,
// and no more than its senders can start within a quarter of the lease,
// so that a slow target is not claimed far ahead only to have its claims
// go stale.
func (d *Dispatcher) aheadFor(t *Target, sendTime time.Duration) int {
	if t.SendBatch != nil || t.RateLimit > 0 {
		return 0
	}
	n := aheadPerSlot * t.Concurrency
	if sendTime > 0 {
		n = min(n, t.Concurrency*int(d.Lease/4/sendTime))
	}
	return n
}

// release gives claimed deliveries that were not sent back to the queue.
// If that fails, their lease expires and the rescuer gives them back.
func (d *Dispatcher) release(ms []Message, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.DB.Release(ctx, ms); err != nil {
		log.Error("giving back claimed deliveries failed; they are due again when their lease ends", "err", err)
	}
}

// aheadQueue holds a target's deliveries claimed ahead of a free send
// slot, oldest first, each with the time of its claim.
type aheadQueue struct {
	mu    sync.Mutex
	items []claimedAhead
	ahead int // what the loop keeps claimed ahead, for pop's low
}

type claimedAhead struct {
	m  Message
	at time.Time
}

func (q *aheadQueue) setAhead(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ahead = n
}

func (q *aheadQueue) push(ms []Message, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range ms {
		q.items = append(q.items, claimedAhead{m, at})
	}
}

// pop takes the oldest delivery if it was claimed after notBefore. low
// reports that the queue has just come down to half of what the loop
// keeps in it, or is empty.
func (q *aheadQueue) pop(notBefore time.Time) (m Message, ok, low bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 || q.items[0].at.Before(notBefore) {
		return Message{}, false, len(q.items) == 0
	}
	m, q.items = q.items[0].m, q.items[1:]
	// Only the crossing of the half asks for more: a claim per pop below
	// it would be a write per send, most of them finding nothing.
	return m, true, len(q.items) == q.ahead/2
}

func (q *aheadQueue) popFirst() (Message, bool) {
	m, ok, _ := q.pop(time.Time{})
	return m, ok
}

func (q *aheadQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// stale reports whether the oldest delivery was claimed before notBefore.
func (q *aheadQueue) stale(notBefore time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) > 0 && q.items[0].at.Before(notBefore)
}

// drain empties the queue and returns what it held.
func (q *aheadQueue) drain() []Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	ms := make([]Message, len(q.items))
	for i, c := range q.items {
		ms[i] = c.m
	}
	q.items = nil
	return ms
}

// deliver sends one message, hands its attempt to the recorder, and
// returns how long the send took.
func (d *Dispatcher) deliver(t *Target, m Message, log *slog.Logger) time.Duration {
	start, began := d.Now(), time.Now()
	r, err := t.Send(d.sendCtx, m)
	took := time.Since(began)
	d.finish(t, m, r, err, start, log)
	return took
}

// deliverBatch sends several messages at once and hands each one's
// attempt to the recorder.
func (d *Dispatcher) deliverBatch(t *Target, ms []Message, log *slog.Logger) {
	start := d.Now()
	rs, errs := t.SendBatch(d.sendCtx, ms)
	for i, m := range ms {
		var r Receipt
		err := fmt.Errorf("target answered %d receipts and %d errors for a batch of %d", len(rs), len(errs), len(ms))
		if len(rs) == len(ms) && len(errs) == len(ms) {
			r, err = rs[i], errs[i]
		}
		d.finish(t, m, r, err, start, log)
	}
}

// finish classifies the attempt at m that started at start and ended with
// r and err, feeds the breaker, and queues the attempt for recordLoop.
func (d *Dispatcher) finish(t *Target, m Message, r Receipt, err error, start time.Time, log *slog.Logger) {
	status := r.Status
	now := d.Now()
	a := Attempt{StartedAt: start, Latency: now.Sub(start), Status: status, RecordID: r.RecordID,
		ResponseBody: responseBody(err)}
	log = log.With("outbox_id", m.ID, "attempt", m.Attempt)
	switch {
	case err == nil:
		a.Outcome = OutcomeDelivered
		if m.Attempt > 1 {
			log.Info("delivered after retries", "status", status)
		} else {
			log.Debug("delivered", "status", status)
		}
	case isPermanent(err):
		a.Outcome, a.Class, a.Error = OutcomeDead, errorClass(status, err), err.Error()
		log.Error("delivery failed permanently", "status", status, "error_class", a.Class, "err", logError(m, err))
		log.Debug("delivery failed permanently", "err", err)
	default:
		a.Class, a.Error = errorClass(status, err), err.Error()
		if d.sendCtx.Err() != nil {
			// Cancelled by shutdown: due again at the next start.
			a.Outcome, a.NextAttemptAt = OutcomeRetry, now
		} else if next, ok := t.Retry.Next(now, m.CreatedAt, m.Attempt, retryAfter(err)); ok {
			a.Outcome, a.NextAttemptAt = OutcomeRetry, next
			log.Warn("delivery failed, will retry", "status", status, "error_class", a.Class, "err", logError(m, err),
				"next_attempt_at", next)
			log.Debug("delivery failed, will retry", "err", err)
		} else {
			a.Outcome = OutcomeDead
			a.Error = fmt.Sprintf("gave up after %d attempts over %s: %s",
				m.Attempt, now.Sub(m.CreatedAt).Round(time.Second), a.Error)
			log.Error("delivery given up", "status", status, "error_class", a.Class, "err", logError(m, err))
			log.Debug("delivery given up", "err", err)
		}
	}
	if d.sendCtx.Err() == nil {
		d.reportHealth(t.Name, now, err != nil && !isPermanent(err), log)
	}
	d.records <- record{target: t.Name, m: m, a: a, now: now, log: log}
}

// maxRecordBatch bounds the attempts recordLoop writes at once, and the
// attempts waiting for it: a send that ends while it is full waits.
const maxRecordBatch = 256

// record is an attempt waiting to be recorded.
type record struct {
	target string
	m      Message
	a      Attempt
	now    time.Time
	log    *slog.Logger
}

// recordLoop writes the attempts of ended sends, all that are waiting in
// one write, so that recording costs a delivery neither a send slot nor a
// trip through the writer of its own. It returns once d.records is closed
// and drained.
func (d *Dispatcher) recordLoop() {
	defer close(d.recorded)
	batch := make([]record, 0, maxRecordBatch)
	for r := range d.records {
		batch = append(batch[:0], r)
	gather:
		for len(batch) < maxRecordBatch {
			select {
			case r, ok := <-d.records:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		d.recordAll(batch)
	}
}

// recordAll records batch in one write, or, if that fails, each attempt
// on its own, so that one bad record does not lose the others. Recording
// goes on during shutdown; an attempt that cannot be recorded leaves its
// delivery running until the lease ends and the rescuer hands it out
// again (the target deduplicates by key).
func (d *Dispatcher) recordAll(batch []record) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.DB.recordEach(ctx, batch); err != nil {
		for _, r := range batch {
			if err := d.DB.Record(ctx, r.m, r.a, r.now); err != nil {
				r.log.Error("recording attempt failed", "err", err)
			}
		}
	}
	for _, r := range batch {
		if r.a.Outcome == OutcomeRetry {
			d.Notify(r.target) // it may be due at once
		}
		if d.OnAttempt != nil {
			d.OnAttempt(r.target, r.a)
		}
	}
}

// reportHealth feeds an attempt's result to the target's breaker and logs
// the breaker's changes.
func (d *Dispatcher) reportHealth(target string, now time.Time, failed bool, log *slog.Logger) {
	state, changed := d.health[target].report(now, failed)
	if !changed {
		return
	}
	switch st := d.health[target].status(); state {
	case BreakerOpen:
		log.Warn("target paused after repeated failures; its deliveries wait without using attempts",
			"consecutive_failures", st.ConsecutiveFailures, "paused_until", st.PausedUntil)
	case BreakerClosed:
		log.Info("target answers again; deliveries resume")
	}
}

// rescueLoop periodically returns expired leases to the queue.
func (d *Dispatcher) rescueLoop(ctx context.Context) {
	tick := time.NewTicker(max(d.Lease/4, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := d.DB.Rescue(ctx, d.Now())
		if err != nil && ctx.Err() == nil {
			d.Logger.Error("rescue failed", "err", err)
		}
		if n > 0 {
			d.Logger.Warn("returned deliveries whose lease expired", "count", n)
			for _, t := range d.Targets {
				d.Notify(t.Name)
			}
		}
	}
}

func isPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

func responseBody(err error) string {
	var r interface{ ResponseBody() string }
	if errors.As(err, &r) {
		return r.ResponseBody()
	}
	return ""
}

func retryAfter(err error) time.Duration {
	var r interface{ RetryAfter() time.Duration }
	if errors.As(err, &r) {
		return r.RetryAfter()
	}
	return 0
}

// logError is err as the log shows it above debug: without the target's
// answer, which may quote the record (names, numbers, notes); the attempt
// keeps it, for `ctibridge outbox show`.
func logError(m Message, err error) string {
	text := err.Error()
	if body := responseBody(err); body != "" {
		text = strings.ReplaceAll(text, body, fmt.Sprintf("[the CRM's answer: ctibridge outbox show %d]", m.ID))
	}
	return text
}

// errorClass names the kind of failure, for filtering and metrics.
func errorClass(status int, err error) string {
	var ne net.Error
	switch {
	case status == 429:
		return "http_429"
	case status >= 500:
		return "http_5xx"
	case status >= 400:
		return "http_4xx"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ne):
		return "network"
	case isPermanent(err):
		return "permanent"
	}
	return "error"
}
