package bridge

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, method, path string, header http.Header) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func TestBridgeHandler_ServesEachPlatform(t *testing.T) {
	h := Handler()
	core, err := files.ReadFile("js/core.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Platforms {
		t.Run(p, func(t *testing.T) {
			resp := get(t, h, http.MethodGet, "/bridge/"+p+".js", nil)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET = %d %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != CacheControl {
				t.Errorf("Cache-Control = %q, want %q", cc, CacheControl)
			}
			if resp.Header.Get("ETag") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers = %v, want an ETag and nosniff", resp.Header)
			}
			own, err := files.ReadFile("js/" + p + ".js")
			if err != nil {
				t.Fatal(err)
			}
			want, _ := Script(p)
			if !bytes.Equal(body, want) {
				t.Errorf("served bytes differ from Script(%q)", p)
			}
			if !bytes.Contains(body, core) || !bytes.Contains(body, own) {
				t.Errorf("served %s.js lacks core.js or %s.js", p, p)
			}
			if !bytes.HasPrefix(body, []byte("/* ctibridge browser bridge for "+p)) || !bytes.HasSuffix(body, []byte("})();\n")) {
				t.Errorf("served %s.js is not wrapped in one function scope", p)
			}

			// Revalidation: the same ETag is 304 with no body.
			resp = get(t, h, http.MethodGet, "/bridge/"+p+".js", http.Header{"If-None-Match": {resp.Header.Get("ETag")}})
			if resp.StatusCode != http.StatusNotModified {
				t.Errorf("GET with If-None-Match = %d, want 304", resp.StatusCode)
			}
			resp = get(t, h, http.MethodHead, "/bridge/"+p+".js", nil)
			if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || len(b) != 0 {
				t.Errorf("HEAD = %d with %d bytes, want 200 and none", resp.StatusCode, len(b))
			}
		})
	}
}

func TestBridgeHandler_UnknownIs404(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/bridge/avaya.js", "/bridge/five9", "/bridge/five9.css", "/bridge/core.js", "/bridge/"} {
		resp := get(t, h, http.MethodGet, path, nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "brightpattern.js, five9.js, genesys.js") {
			t.Errorf("GET %s = %d %q, want 404 naming the bridges", path, resp.StatusCode, body)
		}
	}
	resp := get(t, h, http.MethodPost, "/bridge/five9.js", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d, want 405", resp.StatusCode)
	}
}

// TestScript_ParsesInNode checks that each served file is valid
// JavaScript, when Node.js is installed (the browser tests in cmd/ctibridge
// run it for real).
func TestBridgeScript_ParsesInNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node not found on PATH (CI is set, so this cannot be skipped): %v", err)
		}
		t.Skipf("node not found on PATH: %v", err)
	}
	dir := t.TempDir()
	for _, p := range Platforms {
		body, _ := Script(p)
		path := filepath.Join(dir, p+".js")
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		out, err := exec.CommandContext(ctx, node, "--check", path).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("node --check %s.js: %v\n%s", p, err, out)
		}
	}
}
