// Package httpjson writes the daemon's JSON responses: every body is JSON,
// and every error body is {"error": "…"} in plain words.
package httpjson

import (
	"encoding/json"
	"net/http"
)

// Write writes v as the JSON response body with status.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error writes the {"error": msg} body every error response has.
func Error(w http.ResponseWriter, status int, msg string) {
	Write(w, status, map[string]string{"error": msg})
}
