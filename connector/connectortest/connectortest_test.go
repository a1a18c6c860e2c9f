package connectortest_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector/connectortest"
)

func send(t *testing.T, url, key, body string) (int, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	req.Header.Set("Idempotency-Key", key)
	// No reused connections: net/http silently resends a request whose
	// reused connection dies, which would blur the counts below.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestFakeCRM(t *testing.T) {
	f := connectortest.NewFakeCRM(t)
	if s, _ := send(t, f.URL, "k1", "a"); s != 201 {
		t.Errorf("first send = %d, want 201", s)
	}
	if s, _ := send(t, f.URL, "k1", "a"); s != 200 {
		t.Errorf("repeat send = %d, want 200 (already stored)", s)
	}
	send(t, f.URL, "k1", "b")
	if c := f.Conflicts(); len(c) != 1 || c[0] != "k1" {
		t.Errorf("Conflicts = %v, want [k1]: k1 arrived with two bodies", c)
	}

	f.Respond(func(r connectortest.Request) connectortest.Response {
		if r.Try == 1 {
			return connectortest.Response{Status: 429, Header: http.Header{"Retry-After": {"1"}}}
		}
		return connectortest.Response{}
	})
	if s, _ := send(t, f.URL, "k2", "x"); s != 429 {
		t.Errorf("scripted first try = %d, want 429", s)
	}
	if s, _ := send(t, f.URL, "k2", "x"); s != 201 {
		t.Errorf("scripted second try = %d, want 201", s)
	}

	f.Respond(func(connectortest.Request) connectortest.Response { return connectortest.Response{Reset: true} })
	if _, err := send(t, f.URL, "k3", "y"); err == nil {
		t.Errorf("send to a resetting fake succeeded, want a connection error")
	}
	f.WaitAccepted(t, time.Second, "k1", "k2", "k3") // k3 was processed although the client never heard
	if n := len(f.Requests()); n != 6 {
		t.Errorf("Requests = %d, want 6", n)
	}
}
