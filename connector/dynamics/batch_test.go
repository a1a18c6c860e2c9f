package dynamics

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

func TestDeliverBatch(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	tg, _ := newTarget(t, f, config(f))
	// An earlier attempt created "open" and was cut off before completing
	// it; another delivered "done" whole.
	openCfg := config(f)
	openCfg.LeaveOpen = true
	opener, _ := newTarget(t, f, openCfg)
	if _, err := opener.Deliver(t.Context(), connector.Delivery{Key: "open", Body: inboundCall(t).Body}); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "done", Body: inboundCall(t).Body}); err != nil {
		t.Fatal(err)
	}
	before := f.Batches()

	bad := activity(t, connector.Activity{Object: "phonecall", Fields: map[string]any{"subject": "x", "regardingobjectid_contact@odata.bind": "/contacts(" + contactID + ")"}})
	ds := []connector.Delivery{
		{Key: "new1", Body: inboundCall(t).Body},
		{Key: "open", Body: inboundCall(t).Body},
		{Key: "bad", Body: bad},
		{Key: "done", Body: inboundCall(t).Body},
		{Key: "unknown-table", Body: activity(t, connector.Activity{Object: "new_chat"})},
		{Key: "new2", Body: inboundCall(t).Body},
	}
	res := tg.DeliverBatch(t.Context(), ds)
	for i, d := range ds {
		r := res[i]
		switch d.Key {
		case "bad", "unknown-table":
			if r.Err == nil || !deliveryError(t, r.Err).Permanent() {
				t.Errorf("%s: %v, want dead", d.Key, r.Err)
			}
			if d.Key == "bad" && !strings.Contains(r.Err.Error(), "undeclared property") {
				t.Errorf("bad: %v, want Dataverse's message", r.Err)
			}
		default:
			if r.Err != nil || r.Result.RecordID != ActivityID(d.Key) {
				t.Errorf("%s: %+v", d.Key, r)
			}
			if rec := f.Record("phonecalls", ActivityID(d.Key)); rec["statecode"] != 1.0 {
				t.Errorf("%s: statecode %v, want completed", d.Key, rec["statecode"])
			}
		}
	}
	if n := f.Batches() - before; n != 3 {
		t.Errorf("%d $batch calls, want 3: creates, the reads of the rows that existed, completions", n)
	}
	if n := f.Count("phonecalls"); n != 4 {
		t.Errorf("%d phonecalls, want 4", n)
	}
	// The whole batch again: nothing new, nothing completed twice.
	for i, r := range tg.DeliverBatch(t.Context(), ds) {
		if (r.Err == nil) != (res[i].Err == nil) {
			t.Errorf("again, %s: %v", ds[i].Key, r.Err)
		}
	}
	if n := f.Count("phonecalls"); n != 4 {
		t.Errorf("%d phonecalls after the batch again, want 4", n)
	}
}

func TestDeliverBatch_WholeBatchFails(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	tg, now := newTarget(t, f, config(f))
	ds := []connector.Delivery{{Key: "a", Body: inboundCall(t).Body}, {Key: "b", Body: inboundCall(t).Body}}
	for _, fault := range []connectortest.RequestFault{
		{Method: http.MethodPost, Response: connectortest.Response{Status: 429, Header: http.Header{"Retry-After": {"20"}}}},
		{Method: http.MethodPost, Response: connectortest.Response{Status: 200, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html>"}},
		{Method: http.MethodPost, Response: connectortest.Response{Reset: true}},
	} {
		f.FailRequest(fault)
		for _, r := range tg.DeliverBatch(t.Context(), ds) {
			if r.Err == nil || deliveryError(t, r.Err).Permanent() {
				t.Errorf("%+v: %v, want a retry", fault.Response, r.Err)
			}
		}
		*now = now.Add(time.Minute)
	}
	for _, r := range tg.DeliverBatch(t.Context(), ds) {
		if r.Err != nil {
			t.Error(r.Err)
		}
	}
	if n := f.Count("phonecalls"); n != 2 {
		t.Errorf("%d phonecalls, want 2", n)
	}
}

// BenchmarkDeliverBatch delivers new phone calls 1,000 at a time: two
// $batch calls (creates, completions) per 1,000.
func BenchmarkDeliverBatch(b *testing.B) {
	f := connectortest.NewFakeDataverse(b)
	tg, err := New(Config{URL: f.URL, TokenURL: f.TokenURL(), ClientID: connectortest.DataverseClientID, ClientSecret: connectortest.DataverseClientSecret}, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"object":"phonecall","fields":{"subject":"Call from Maria Lopez","directioncode":false},"who":{"type":"contact","id":"` + contactID + `"}}`)
	n := 0
	for b.Loop() {
		ds := make([]connector.Delivery, MaxBatch)
		for i := range ds {
			n++
			ds[i] = connector.Delivery{Key: fmt.Sprint("bench:", n), Body: body}
		}
		for _, r := range tg.DeliverBatch(b.Context(), ds) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	b.ReportMetric(float64(n)/float64(f.Batches()), "records/call")
}
