package gws

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestGWS_Envelope: data is copied byte for byte, whatever its spacing or
// escapes; absent data is null.
func TestGWS_Envelope(t *testing.T) {
	at := time.Date(2026, 11, 21, 9, 30, 0, 123456789, time.FixedZone("CET", 3600))
	data := json.RawMessage(`{ "b": "<x> & \u00e9",  "a": [1, 2] }`)
	got := Envelope(`/v2/me/"odd"`, data, at)
	want := `{"source":"gws","channel":"/v2/me/\"odd\"","data":{ "b": "<x> & \u00e9",  "a": [1, 2] },"receivedAt":"2026-11-21T08:30:00.123456789Z"}`
	if string(got) != want {
		t.Errorf("envelope\n%s\nwant\n%s", got, want)
	}
	if !json.Valid(got) {
		t.Error("envelope is not valid JSON")
	}
	if got := Envelope("/c", nil, at); !bytes.Contains(got, []byte(`"data":null`)) || !json.Valid(got) {
		t.Errorf("envelope without data: %s", got)
	}
}
