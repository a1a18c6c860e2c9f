package targets

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/config"
	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/outbox"
)

// TestNew_ErrorsNameTheKey: a target its package refuses is refused with
// the configuration key, as targets.NAME.key.
func TestNew_ErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		cfg  config.TargetConfig
		want string
	}{
		{config.TargetConfig{Type: config.TypeWebhook, URL: "ftp://x"}, "targets.crm.url: "},
		{config.TargetConfig{Type: config.TypeHubSpot, HubSpot: &config.HubSpotOptions{Token: "pat-x"}}, "targets.crm.id_property: "},
		{config.TargetConfig{Type: config.TypeSalesforce, ClientID: "id", ClientSecret: "s",
			Salesforce: &config.SalesforceOptions{LoginURL: "https://acme.my.salesforce.com"}}, "targets.crm.external_id_field: "},
		{config.TargetConfig{Type: config.TypeZendesk, URL: "https://acme.zendesk.com", Zendesk: &config.ZendeskOptions{}}, "targets.crm."},
		{config.TargetConfig{Type: "sugarcrm"}, `targets.crm.type: unknown type "sugarcrm"`},
	} {
		_, err := New("crm", tc.cfg, slog.New(slog.DiscardHandler), nil)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("New(%s) = %v, want an error starting %q", tc.cfg.Type, err, tc.want)
		}
	}
}

// TestLease: the lease outlasts the longest attempt of the slowest target,
// a batch with caller searches included, and never drops below 5 minutes.
func TestLease(t *testing.T) {
	jsonl := config.TargetConfig{Type: config.TypeJSONL}
	if got := Lease(map[string]config.TargetConfig{"file": jsonl}); got != 5*time.Minute {
		t.Errorf("lease of a jsonl target = %v, want the 5m floor", got)
	}
	sf := config.TargetConfig{Type: config.TypeSalesforce, Timeout: 15 * time.Second, Salesforce: &config.SalesforceOptions{}}
	plain := Lease(map[string]config.TargetConfig{"sf": sf})
	perRequest := 3*15*time.Second + 2*quickWaitMax
	if want := 2 * 12 * perRequest; plain != want {
		t.Errorf("lease of a salesforce target = %v, want %v (12 requests of %v, twice)", plain, want, perRequest)
	}
	sf.Salesforce = &config.SalesforceOptions{MatchRules: []string{"*"}}
	if got, want := Lease(map[string]config.TargetConfig{"sf": sf}), 2*(12+2*matchBatch)*perRequest; got != want {
		t.Errorf("lease with caller match = %v, want %v: a search per record of a batch", got, want)
	}
	if batchSize(sf) != matchBatch {
		t.Errorf("batch with caller match = %d, want %d", batchSize(sf), matchBatch)
	}
}

// fakeBatch is a BatchTarget that fails every other record.
type fakeBatch struct{ connector.Target }

func (fakeBatch) DeliverBatch(ctx context.Context, ds []connector.Delivery) []connector.BatchResult {
	out := make([]connector.BatchResult, len(ds))
	for i, d := range ds {
		if i%2 == 1 {
			out[i].Err = connector.Permanent(context.Canceled)
			continue
		}
		out[i].Result = connector.Result{Status: 201, RecordID: "rec-" + d.Key}
	}
	return out
}

// TestSendBatch: each message of a batch gets its own receipt or error,
// with the record id, in order.
func TestSendBatch(t *testing.T) {
	rs, errs := sendBatch(fakeBatch{})(context.Background(), []outbox.Message{{Key: "a"}, {Key: "b"}, {Key: "c"}})
	if len(rs) != 3 || rs[0].RecordID != "rec-a" || rs[2].Status != 201 || errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Errorf("sendBatch = %+v, %v; want a and c delivered with their ids, b failed", rs, errs)
	}
}

// TestDebugLogger: go-retryablehttp's messages, which carry URLs with
// their queries, are logged at debug only.
func TestDebugLogger(t *testing.T) {
	var out bytes.Buffer
	l := debugLogger{slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	l.Error("request failed", "url", "https://crm.example/search?q=%2B14155550142")
	l.Warn("retrying")
	if out.Len() != 0 {
		t.Errorf("logged above debug: %s", &out)
	}
}
