package dynamics

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
	"github.com/ctibridge/ctibridge/connector/connectortest"
)

// TestSecretsStayOut makes the Web API and the token endpoint echo the
// client secret and the access token, and checks that no error or result
// shows them.
func TestSecretsStayOut(t *testing.T) {
	secret := connectortest.DataverseClientSecret
	for _, tc := range []struct {
		status   int
		tokenURL bool // the fault is the token endpoint's
	}{{403, false}, {503, false}, {400, true}, {500, true}} {
		f := connectortest.NewFakeDataverse(t)
		tg, _ := newTarget(t, f, config(f))
		fault := connectortest.RequestFault{Response: connectortest.Response{Status: tc.status}}
		var token string // none issued before a token endpoint's fault
		if tc.tokenURL {
			fault.Path = "/" + connectortest.DataverseTenant
		} else {
			// Get a token first, so that the fault hits the Web API.
			if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "warm", Body: inboundCall(t).Body}); err != nil {
				t.Fatal(err)
			}
			token = f.Tokens()[0]
		}
		fault.Body = `{"error":{"code":"0x80040220","message":"Authorization: Bearer ` + token + ` client_secret=` + url.QueryEscape(secret) + " " + secret + `"}}`
		f.FailRequest(fault)
		res, err := tg.Deliver(t.Context(), inboundCall(t))
		if err == nil {
			t.Fatalf("%d: delivered", tc.status)
		}
		for _, s := range []string{err.Error(), deliveryError(t, err).Body, res.RecordID, fmt.Sprintf("%v %+v %#v", tg, tg, tg)} {
			for _, leak := range []string{secret, url.QueryEscape(secret), token} {
				if leak != "" && strings.Contains(s, leak) {
					t.Errorf("%d: %q shows %q", tc.status, s, leak)
				}
			}
		}
	}
}
