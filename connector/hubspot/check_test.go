package hubspot

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connector/connectortest"
)

func checkTarget(t *testing.T, fake *connectortest.HubSpot, token, idProperty string) *Target {
	t.Helper()
	tg, err := New(Config{Token: token, BaseURL: fake.URL, IDProperty: idProperty}, fake.Client())
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// TestCheck: against the fake, a good token and key property are two OK
// findings; a property that is not there, or a refused token, is a
// problem, and the token never shows.
func TestCheck(t *testing.T) {
	fake := connectortest.NewHubSpot(t, connectortest.HubSpotOptions{PrivateAppToken: testPrivateToken})
	ctx := context.Background()

	got := checkTarget(t, fake, testPrivateToken, testIDProperty).Check(ctx)
	if len(got) != 2 || !got[0].OK || !got[1].OK || !strings.Contains(got[1].Text, "unique value") {
		t.Errorf("good config: %+v, want two OK findings", got)
	}
	got = checkTarget(t, fake, testPrivateToken, "call_key").Check(ctx)
	if len(got) != 2 || !got[0].OK || got[1].OK || !strings.Contains(got[1].Text, "id_property call_key: calls have no such property") {
		t.Errorf("unknown id_property: %+v", got)
	}
	got = checkTarget(t, fake, "pat-na1-wrong", testIDProperty).Check(ctx)
	if len(got) != 1 || got[0].OK || !strings.Contains(got[0].Text, "INVALID_AUTHENTICATION") {
		t.Errorf("refused token: %+v", got)
	}
	for _, f := range got {
		if strings.Contains(f.Text, "pat-na1-wrong") {
			t.Errorf("the token shows: %s", f.Text)
		}
	}
	if n := len(fake.Calls()); n != 0 {
		t.Errorf("check wrote %d calls", n)
	}
}

// TestDescribe: the properties API's answer, from the versioned path
// beside ObjectsPath.
func TestDescribe(t *testing.T) {
	fake := connectortest.NewHubSpot(t, connectortest.HubSpotOptions{PrivateAppToken: testPrivateToken,
		ObjectsPath: "/crm/objects/2026-03"})
	tg, err := New(Config{Token: testPrivateToken, BaseURL: fake.URL, IDProperty: testIDProperty,
		ObjectsPath: "/crm/objects/2026-03"}, fake.Client())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := tg.Describe(context.Background(), "calls")
	if err != nil {
		t.Fatal(err)
	}
	var props struct {
		Results []struct{ Name string } `json:"results"`
	}
	if err := json.Unmarshal(raw, &props); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range props.Results {
		names = append(names, p.Name)
	}
	if s := strings.Join(names, ","); !strings.Contains(s, "hs_timestamp") || !strings.Contains(s, testIDProperty) {
		t.Errorf("properties %s", s)
	}
	if _, err := tg.Describe(context.Background(), "calls/../x"); err == nil {
		t.Error("an object name with a slash was sent")
	}
}
