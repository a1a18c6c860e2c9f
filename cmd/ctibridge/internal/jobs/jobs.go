// Package jobs runs the daemon's scheduled housekeeping with robfig/cron:
// purge of delivered rows, WAL checkpoints, the optional redrive of dead
// deliveries, a daily summary, and the flush of interactions whose
// completing event never came.
package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/ctibridge/ctibridge/outbox"
)

// Jobs are the scheduled jobs. Set the fields, then Start.
type Jobs struct {
	DB *outbox.DB
	// Notify wakes a target's deliveries; Targets are the targets' names.
	Notify  func(target string)
	Targets []string
	// Retention is how long delivered rows are kept.
	Retention time.Duration
	// Cron specs, in UTC; an empty one leaves its job off.
	PurgeSchedule, CheckpointSchedule, RedriveSchedule, SummarySchedule, FlushSchedule string
	// Flush logs the interactions whose completing event never came.
	Flush  func(ctx context.Context)
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time

	cron *cron.Cron
}

// Parser accepts 5- or 6-field specs and descriptors such as @every 1h.
var Parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// CheckSchedule parses a cron spec. robfig/cron panics on some malformed
// specs (such as "TZ=UTC" alone), so the panic becomes an error here.
func CheckSchedule(spec string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid schedule %q", spec)
		}
	}()
	if _, err := Parser.Parse(spec); err != nil {
		return fmt.Errorf("invalid schedule %q: %v", spec, err)
	}
	return nil
}

// Start schedules the jobs.
func (j *Jobs) Start() error {
	log := cronLogger{j.Logger.With("component", "cron")}
	j.cron = cron.New(
		cron.WithParser(Parser),
		cron.WithLocation(time.UTC),
		cron.WithLogger(log),
		// This order matters with robfig/cron v3.0.1: the other way round,
		// one panic would leave the job skipped for good.
		cron.WithChain(cron.SkipIfStillRunning(log), cron.Recover(log)),
	)
	jobs := []struct {
		spec string
		run  func()
	}{
		{j.PurgeSchedule, j.Purge},
		{j.CheckpointSchedule, j.Checkpoint},
		{j.RedriveSchedule, j.Redrive},
		{j.SummarySchedule, j.Summary},
		{j.FlushSchedule, j.flush},
	}
	for _, job := range jobs {
		if job.spec == "" {
			continue // a job left off
		}
		if _, err := j.cron.AddFunc(job.spec, job.run); err != nil {
			return err
		}
	}
	j.cron.Start()
	return nil
}

func (j *Jobs) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now()
}

// Stop stops scheduling and waits for the jobs running.
func (j *Jobs) Stop() {
	if j.cron != nil {
		<-j.cron.Stop().Done()
	}
}

// flush runs Flush with a deadline.
func (j *Jobs) flush() {
	if j.Flush == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	j.Flush(ctx)
}

// Purge deletes deliveries delivered longer ago than the retention
// period, in small batches.
func (j *Jobs) Purge() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cutoff := j.now().Add(-j.Retention)
	n, err := j.DB.Purge(ctx, cutoff, 1000)
	if err != nil {
		j.Logger.Error("purge of delivered rows failed", "err", err, "purged", n)
		return
	}
	if n > 0 {
		j.Logger.Info("purged delivered rows", "count", n, "older_than", cutoff)
	}
}

// Checkpoint folds the write-ahead log back into the database file.
func (j *Jobs) Checkpoint() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := j.DB.Checkpoint(ctx); err != nil {
		j.Logger.Warn("WAL checkpoint did not complete", "err", err)
	}
}

// Redrive gives every dead delivery a fresh retry window, for
// deployments whose CRMs reject records only for a while (maintenance
// windows, expired credentials that an admin renews).
func (j *Jobs) Redrive() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := j.DB.RetryDead(ctx, "", j.now())
	if err != nil {
		j.Logger.Error("scheduled redrive of dead deliveries failed", "err", err)
		return
	}
	if n > 0 {
		j.Logger.Info("scheduled redrive: dead deliveries retried", "count", n)
		for _, name := range j.Targets {
			j.Notify(name)
		}
	}
}

// Summary logs one line of outbox counts: what an operator reads first
// in the morning.
func (j *Jobs) Summary() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := j.DB.Stats(ctx, j.now())
	if err != nil {
		j.Logger.Error("outbox summary failed", "err", err)
		return
	}
	args := []any{"events", st.Events, "mapping_failed", st.MappingFailed, "dead", st.Dead}
	for _, t := range st.Targets {
		args = append(args, slog.Group(t.Target, "delivered", t.Delivered, "waiting", t.Pending+t.Retrying+t.Running,
			"dead", t.Dead, "oldest_waiting", t.OldestWaitingAge.Round(time.Second)))
	}
	j.Logger.Info("outbox summary", args...)
}

// cronLogger adapts slog to robfig/cron's logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug(msg, kv...) }

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error(msg, append(kv, "err", err)...)
}
