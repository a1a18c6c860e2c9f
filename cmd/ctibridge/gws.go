package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/genesys/cometd"
)

// gwsPlatform is the decoder that reads GWS notifications: the Genesys
// one, which tells them from the bridge's posts by their envelope.
const gwsPlatform = "genesys"

// gwsSource is the Genesys Web Services subscription: a CometD client whose
// messages go through the same ingest path as posted events.
type gwsSource struct {
	client *cometd.Client
	// ingest stores one envelope. It is m.ingest unless a test set it
	// before Open.
	ingest func(ctx context.Context, platform string, body []byte) error
}

// startGWS subscribes to the configured GWS channels when
// sources.genesys.gws.url is set. It does not wait for GWS: /readyz shows
// how the subscription goes.
func (m *Main) startGWS() error {
	cfg := m.Config.Sources.Genesys.GWS
	if cfg.URL == "" {
		return nil
	}
	if m.gws == nil {
		m.gws = &gwsSource{}
	}
	if m.gws.ingest == nil {
		if _, ok := m.decoders[gwsPlatform]; !ok {
			return fmt.Errorf("sources.genesys.gws.url is set, but this build has no %s decoder to read GWS notifications", gwsPlatform)
		}
		m.gws.ingest = func(ctx context.Context, platform string, body []byte) error {
			_, err := m.ingest(ctx, platform, body)
			return err
		}
	}
	m.gws.client = cometd.New(cometd.Config{
		URL:      cfg.URL,
		Username: cfg.Username,
		Password: cfg.Password,
		Channels: cfg.Channels,
		Handler:  m.handleGWS,
		Logger:   m.Logger.With("component", "gws"),
	})
	if err := m.gws.client.Open(); err != nil {
		return fmt.Errorf("sources.genesys.gws: %w", err)
	}
	return nil
}

// closeGWS ends the subscription; the messages that come with its end are
// still stored, so it runs before the outbox closes.
func (m *Main) closeGWS(ctx context.Context) error {
	if m.gws == nil || m.gws.client == nil {
		return nil
	}
	return m.gws.client.Close(ctx)
}

// gwsStatus is the subscription's health, nil when there is none.
func (m *Main) gwsStatus() *cometd.Status {
	if m.gws == nil || m.gws.client == nil {
		return nil
	}
	st := m.gws.client.Status()
	return &st
}

// handleGWS stores one GWS notification as
// {"source":"gws","channel":…,"data":…,"receivedAt":…}, data being the
// bytes GWS sent. An error (nothing could be stored) makes the client retry
// the notification; one that will never be accepted is logged and passed.
func (m *Main) handleGWS(ctx context.Context, channel string, data json.RawMessage) error {
	body := gwsEnvelope(channel, data, time.Now())
	err := m.gws.ingest(ctx, gwsPlatform, body)
	var se storageError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return err
	case errors.Is(err, connector.ErrUnknownEvent):
		// GWS sends many notifications ctibridge has no use for.
		m.Logger.Debug("GWS notification ignored", "channel", channel, "err", err)
	default:
		m.Logger.Warn("GWS notification refused", "channel", channel, "bytes", len(data), "err", err)
	}
	return nil
}

// gwsEnvelope wraps a notification; data is copied as it came, not
// re-encoded.
func gwsEnvelope(channel string, data json.RawMessage, now time.Time) []byte {
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
