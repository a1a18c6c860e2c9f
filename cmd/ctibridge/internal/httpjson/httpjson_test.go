package httpjson_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/httpjson"
)

func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	httpjson.Write(w, http.StatusAccepted, map[string]any{"id": 7, "note": "a > b"})

	if w.Code != http.StatusAccepted {
		t.Errorf("status = %d, want 202", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got struct {
		ID   int    `json:"id"`
		Note string `json:"note"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body, err)
	}
	if got.ID != 7 || got.Note != "a > b" {
		t.Errorf("body = %+v, want id 7 and note %q", got, "a > b")
	}
}

func TestError(t *testing.T) {
	w := httptest.NewRecorder()
	httpjson.Error(w, http.StatusNotFound, `unknown platform "x"`)

	if w.Code != http.StatusNotFound {
		t.Errorf("status = %d, want 404", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body, err)
	}
	if len(got) != 1 || got["error"] != `unknown platform "x"` {
		t.Errorf("body = %v, want only error: %q", got, `unknown platform "x"`)
	}
}
