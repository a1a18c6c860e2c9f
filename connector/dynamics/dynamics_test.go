package dynamics

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
	"github.com/ctibridge/ctibridge/connector/connectortest/spectest"
)

const (
	contactID = "5d0e6b1f-7a10-4c3f-9a44-2d0e6b1f7a10"
	caseID    = "7e2a9c41-0b3d-4e8f-a1c2-3d4e5f607182"
)

// t0 is the tests' clock: any fixed time works.
var t0 = time.Date(2026, 3, 14, 17, 2, 11, 0, time.UTC)

func config(f *connectortest.FakeDataverse) Config {
	return Config{
		URL:          f.URL,
		TokenURL:     f.TokenURL(),
		ClientID:     connectortest.DataverseClientID,
		ClientSecret: connectortest.DataverseClientSecret,
	}
}

// newTarget returns a target for f whose every request is checked against
// the Dataverse subset spec, with a clock the test moves.
func newTarget(t *testing.T, f *connectortest.FakeDataverse, cfg Config) (*Target, *time.Time) {
	t.Helper()
	return newTargetTimeout(t, f, cfg, 2*time.Second)
}

// newTargetTimeout is newTarget with a client timeout.
func newTargetTimeout(t *testing.T, f *connectortest.FakeDataverse, cfg Config, timeout time.Duration) (*Target, *time.Time) {
	t.Helper()
	tg, err := New(cfg, spectest.Client(t, "testdata/dataverse.yaml", f.URL, timeout))
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	tg.now = func() time.Time { return now }
	return tg, &now
}

func activity(t *testing.T, a connector.Activity) []byte {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// inboundCall is a call from a contact about a case.
func inboundCall(t *testing.T) connector.Delivery {
	return connector.Delivery{Key: "genesys:0001:calls", Attempt: 1, Body: activity(t, connector.Activity{
		Key: "genesys:0001:calls", Object: "phonecall",
		Fields: map[string]any{
			"subject":       "Call from Maria Lopez",
			"phonenumber":   "+14155550100",
			"directioncode": false,
			"actualstart":   "2026-03-14T17:02:11Z",
		},
		Who:  &connector.CRMObject{Type: "Contact", ID: contactID},
		What: &connector.CRMObject{Type: "Case", ID: "{" + strings.ToUpper(caseID) + "}"},
	})}
}

func deliveryError(t *testing.T, err error) *connector.DeliveryError {
	t.Helper()
	var de *connector.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *connector.DeliveryError", err, err)
	}
	return de
}

// methods lists the method of each request to the Web API, in order.
func methods(f *connectortest.FakeDataverse) []string {
	var out []string
	for _, r := range f.Requests() {
		if r.Header.Get("OData-Version") != "" {
			out = append(out, methodOf(r))
		}
	}
	return out
}

// methodOf tells the requests apart by what they carry: the fake's log has
// no method.
func methodOf(r connectortest.Request) string {
	switch {
	case r.Header.Get("If-None-Match") == "*":
		return "create"
	case r.Header.Get("If-Match") == "*":
		return "complete"
	default:
		return "read"
	}
}

func TestDeliver_CreatesLinksAndCompletes(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	tg, _ := newTarget(t, f, config(f))
	d := inboundCall(t)

	res, err := tg.Deliver(t.Context(), d)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	id := ActivityID(d.Key)
	if res.RecordID != id || res.Status != http.StatusNoContent {
		t.Errorf("Result = %+v, want record %s and 204", res, id)
	}
	rec := f.Record("phonecalls", id)
	if rec == nil {
		t.Fatalf("no phonecall %s; fake has %d", id, f.Count("phonecalls"))
	}
	want := map[string]any{
		"subject": "Call from Maria Lopez",
		"regardingobjectid_incident_phonecall@odata.bind": "/incidents(" + caseID + ")",
		"statecode":  1.0,
		"statuscode": 4.0, // Received: an incoming call
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
	parties, _ := json.Marshal(rec["phonecall_activity_parties"])
	if string(parties) != `[{"participationtypemask":1,"partyid_contact@odata.bind":"/contacts(`+contactID+`)"}]` {
		t.Errorf("parties = %s, want the contact as the sender of an incoming call", parties)
	}
	if got := methods(f); strings.Join(got, ",") != "create,complete" {
		t.Errorf("requests = %v, want create then complete", got)
	}
}

func TestDeliver_RuleFieldsWin(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	tg, _ := newTarget(t, f, config(f))
	d := connector.Delivery{Key: "five9:9:calls", Body: activity(t, connector.Activity{
		Object: "phonecall",
		Fields: map[string]any{
			"subject": "Outbound", "directioncode": true,
			"regardingobjectid_account_phonecall@odata.bind": "/accounts(" + contactID + ")",
			"phonecall_activity_parties":                     []any{},
			"statecode":                                      1, "statuscode": 2,
		},
		Who: &connector.CRMObject{Type: "contact", ID: contactID},
	})}
	if _, err := tg.Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	rec := f.Record("phonecalls", ActivityID(d.Key))
	if _, ok := rec["regardingobjectid_contact_phonecall@odata.bind"]; ok {
		t.Error("the target bound who although the rule set a regarding lookup")
	}
	if p, _ := rec["phonecall_activity_parties"].([]any); len(p) != 0 || rec["statuscode"] != 2.0 {
		t.Errorf("parties %v, statuscode %v: want the rule's", rec["phonecall_activity_parties"], rec["statuscode"])
	}
}

func TestDeliver_AgainIsNotADuplicate(t *testing.T) {
	f := connectortest.NewFakeDataverse(t)
	tg, _ := newTarget(t, f, config(f))
	d := inboundCall(t)
	for attempt := 1; attempt <= 3; attempt++ {
		d.Attempt = attempt
		res, err := tg.Deliver(t.Context(), d)
		if err != nil || res.RecordID != ActivityID(d.Key) {
			t.Fatalf("attempt %d: %+v, %v", attempt, res, err)
		}
	}
	if n := f.Count("phonecalls"); n != 1 {
		t.Errorf("%d phonecalls, want 1", n)
	}
	// The later attempts find the row (412), read that it is completed,
	// and leave it.
	if got := strings.Join(methods(f), ","); got != "create,complete,create,read,create,read" {
		t.Errorf("requests = %s", got)
	}
}

func TestDeliver_ResumesAfterACrashBetweenSteps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault connectortest.RequestFault
		want  string // the requests of both attempts
	}{
		{
			"create written, answer lost",
			connectortest.RequestFault{Commit: true, Response: connectortest.Response{Reset: true}},
			"create,create,read,complete",
		},
		{
			"completion lost",
			connectortest.RequestFault{Method: http.MethodPatch, Skip: 1, Response: connectortest.Response{Reset: true}},
			"create,complete,create,read,complete",
		},
		{
			"completion written, answer lost",
			connectortest.RequestFault{Method: http.MethodPatch, Skip: 1, Commit: true, Response: connectortest.Response{Status: 503}},
			"create,complete,create,read",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := connectortest.NewFakeDataverse(t)
			tg, _ := newTarget(t, f, config(f))
			d := inboundCall(t)
			f.FailRequest(tc.fault)
			_, err := tg.Deliver(t.Context(), d)
			if de := deliveryError(t, err); de.Permanent() {
				t.Fatalf("first attempt: %v is permanent, want a retry", err)
			}
			d.Attempt = 2
			if res, err := tg.Deliver(t.Context(), d); err != nil || res.RecordID != ActivityID(d.Key) {
				t.Fatalf("second attempt: %+v, %v", res, err)
			}
			rec := f.Record("phonecalls", ActivityID(d.Key))
			if f.Count("phonecalls") != 1 || rec["statecode"] != 1.0 {
				t.Errorf("%d phonecalls, statecode %v: want one, completed", f.Count("phonecalls"), rec["statecode"])
			}
			if got := strings.Join(methods(f), ","); got != tc.want {
				t.Errorf("requests = %s, want %s", got, tc.want)
			}
		})
	}
}
