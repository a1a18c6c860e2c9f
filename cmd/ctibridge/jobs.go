package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"
)

// startJobs schedules the housekeeping jobs.
func (m *Main) startJobs() error {
	log := cronLogger{m.Logger.With("component", "cron")}
	m.cron = cron.New(
		cron.WithParser(cronParser),
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
		{m.Config.Store.PurgeSchedule, m.purgeDelivered},
		{m.Config.Store.CheckpointSchedule, m.checkpoint},
		{m.Config.Store.RedriveSchedule, m.redriveDead},
		{m.Config.Store.SummarySchedule, m.logSummary},
		{m.Config.Store.FlushSchedule, m.flushStale},
	}
	for _, j := range jobs {
		if j.spec == "" {
			continue // a job left off
		}
		if _, err := m.cron.AddFunc(j.spec, j.run); err != nil {
			return err
		}
	}
	m.cron.Start()
	return nil
}

// purgeDelivered deletes deliveries delivered longer ago than the
// retention period, in small batches.
func (m *Main) purgeDelivered() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cutoff := time.Now().Add(-m.Config.Store.Retention)
	n, err := m.DB.Purge(ctx, cutoff, 1000)
	if err != nil {
		m.Logger.Error("purge of delivered rows failed", "err", err, "purged", n)
		return
	}
	if n > 0 {
		m.Logger.Info("purged delivered rows", "count", n, "older_than", cutoff)
	}
}

// checkpoint folds the write-ahead log back into the database file.
func (m *Main) checkpoint() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.DB.Checkpoint(ctx); err != nil {
		m.Logger.Warn("WAL checkpoint did not complete", "err", err)
	}
}

// redriveDead gives every dead delivery a fresh retry window, for
// deployments whose CRMs reject records only for a while (maintenance
// windows, expired credentials that an admin renews).
func (m *Main) redriveDead() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := m.DB.RetryDead(ctx, "", time.Now())
	if err != nil {
		m.Logger.Error("scheduled redrive of dead deliveries failed", "err", err)
		return
	}
	if n > 0 {
		m.Logger.Info("scheduled redrive: dead deliveries retried", "count", n)
		for _, name := range m.Config.targetNames() {
			m.Dispatcher.Notify(name)
		}
	}
}

// logSummary logs one line of outbox counts: what an operator reads first
// in the morning.
func (m *Main) logSummary() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := m.DB.Stats(ctx, time.Now())
	if err != nil {
		m.Logger.Error("outbox summary failed", "err", err)
		return
	}
	args := []any{"events", st.Events, "mapping_failed", st.MappingFailed, "dead", st.Dead}
	for _, t := range st.Targets {
		args = append(args, slog.Group(t.Target, "delivered", t.Delivered, "waiting", t.Pending+t.Retrying+t.Running,
			"dead", t.Dead, "oldest_waiting", t.OldestWaitingAge.Round(time.Second)))
	}
	m.Logger.Info("outbox summary", args...)
}

// cronLogger adapts slog to robfig/cron's logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug(msg, kv...) }

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error(msg, append(kv, "err", err)...)
}
