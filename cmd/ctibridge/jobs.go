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
	if _, err := m.cron.AddFunc(m.Config.Store.PurgeSchedule, m.purgeDelivered); err != nil {
		return err
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

// cronLogger adapts slog to robfig/cron's logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug(msg, kv...) }

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error(msg, append(kv, "err", err)...)
}
