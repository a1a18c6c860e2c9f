package dynamics

import (
	"net/url"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// TestSecretsStayOut makes the fake echo the client secret and the access
// token in every way a CRM or token endpoint might, and checks that no
// error or result shows them.
func TestSecretsStayOut(t *testing.T) {
	secret := connectortest.DataverseClientSecret
	// The fake's first token is dv-1; the echo names it whole, as a
	// bearer header, to be sure.
	const token = "dv-1"
	echo := `{"error":{"code":"0x80040220","message":"Authorization: Bearer ` + token + ` client_secret=` + url.QueryEscape(secret) + `"}}`
	for _, fault := range []connectortest.Fault{
		{Response: connectortest.Response{Status: 403, Body: echo}},
		{Response: connectortest.Response{Status: 503, Body: echo}},
		{Path: "/" + connectortest.DataverseTenant, Response: connectortest.Response{Status: 400, Body: `{"error":"invalid_client","error_description":"bad secret ` + secret + `"}`}},
		{Path: "/" + connectortest.DataverseTenant, Response: connectortest.Response{Status: 500, Body: "client_secret=" + url.QueryEscape(secret)}},
	} {
		f := connectortest.NewFakeDataverse(t)
		tg, _ := newTarget(t, f, config(f))
		if fault.Path == "" {
			// Get the token first, so that the fault hits the Web API.
			if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "warm", Body: inboundCall(t).Body}); err != nil {
				t.Fatal(err)
			}
		}
		f.Fail(fault)
		res, err := tg.Deliver(t.Context(), inboundCall(t))
		if err == nil {
			t.Fatalf("%+v: delivered", fault.Response)
		}
		de := deliveryError(t, err)
		for _, s := range []string{err.Error(), de.Body, res.RecordID} {
			if strings.Contains(s, secret) || strings.Contains(s, url.QueryEscape(secret)) || strings.Contains(s, "Bearer "+token) {
				t.Errorf("%d %q shows a secret: %s", fault.Status, fault.Body, s)
			}
		}
		if f := tg.String(); strings.Contains(f, secret) {
			t.Errorf("String() = %s", f)
		}
	}
}
