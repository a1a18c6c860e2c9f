// Package gws is the Genesys Web Services subscription: a CometD client
// whose notifications go, each wrapped in an envelope that tells them from
// the bridge's posts, through the same ingest path as posted events.
package gws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/ingest"
	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/genesys/cometd"
)

// Platform is the decoder that reads GWS notifications: the Genesys one,
// which tells them from the bridge's posts by their envelope.
const Platform = "genesys"

// Subscription subscribes to GWS channels and ingests what they carry.
type Subscription struct {
	// URL is the CometD endpoint; Username and Password sign in.
	URL, Username, Password string
	Channels                []string
	// Ingest stores one envelope of Platform. An error that wraps an
	// ingest.StorageError makes the notification come again.
	Ingest func(ctx context.Context, platform string, body []byte) error
	Logger *slog.Logger
	// Now is the clock the envelopes are stamped with; default time.Now.
	Now func() time.Time

	client *cometd.Client
}

// Open subscribes. It does not wait for GWS: Status shows how the
// subscription goes.
func (s *Subscription) Open() error {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	s.client = cometd.New(cometd.Config{
		URL:      s.URL,
		Username: s.Username,
		Password: s.Password,
		Channels: s.Channels,
		Handler:  s.handle,
		Logger:   s.Logger,
	})
	return s.client.Open()
}

// Close ends the subscription; the messages that come with its end are
// still ingested, so it must run before the outbox closes.
func (s *Subscription) Close(ctx context.Context) error {
	if s.client == nil {
		return nil
	}
	return s.client.Close(ctx)
}

// Status is the subscription's health.
func (s *Subscription) Status() cometd.Status {
	return s.client.Status()
}

// handle ingests one GWS notification as
// {"source":"gws","channel":…,"data":…,"receivedAt":…}, data being the
// bytes GWS sent. An error (nothing could be stored) makes the client retry
// the notification; one that will never be accepted is logged and passed.
func (s *Subscription) handle(ctx context.Context, channel string, data json.RawMessage) error {
	body := Envelope(channel, data, s.Now())
	err := s.Ingest(ctx, Platform, body)
	var se ingest.StorageError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return err
	case errors.Is(err, connector.ErrUnknownEvent):
		// GWS sends many notifications ctibridge has no use for.
		s.Logger.Debug("GWS notification ignored", "channel", channel, "err", err)
	default:
		s.Logger.Warn("GWS notification refused", "channel", channel, "bytes", len(data), "err", err)
	}
	return nil
}

// Envelope wraps a notification as the genesys decoder reads it; data is
// copied as it came, not re-encoded.
func Envelope(channel string, data json.RawMessage, now time.Time) []byte {
	ch, _ := json.Marshal(channel) // a string always encodes
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	var b bytes.Buffer
	b.WriteString(`{"source":"gws","channel":`)
	b.Write(ch)
	b.WriteString(`,"data":`)
	b.Write(data)
	b.WriteString(`,"receivedAt":"`)
	b.WriteString(now.UTC().Format(time.RFC3339Nano))
	b.WriteString(`"}`)
	return b.Bytes()
}
