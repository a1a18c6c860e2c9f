package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// standardwebhooksVersion is the npm package pinned in .ci/node/package.json.
const standardwebhooksVersion = "1.1.1"

// skipOrFatal skips a test whose peer is missing, except in CI, where a
// missing peer is a broken setup that must not pass as a skip.
func skipOrFatal(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format+" (CI is set, so this cannot be skipped)", args...)
	}
	t.Skipf(format, args...)
}

// nodeVerifier returns the node binary and the node_modules directory that
// holds standardwebhooks, found from the module root so the test runs from
// any working directory inside the repository.
func nodeVerifier(t *testing.T) (node, modules string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFatal(t, "node not found on PATH: %v", err)
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
	modules = filepath.Join(dir, ".ci", "node", "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "standardwebhooks", "package.json")); err != nil {
		skipOrFatal(t, "standardwebhooks not installed (run npm ci --prefix .ci/node): %v", err)
	}
	return node, modules
}

// nodeVerify runs testdata/verify.mjs on one request: it returns nil when
// the npm library accepts it, and the library's message otherwise.
func nodeVerify(t *testing.T, secret string, r request) error {
	t.Helper()
	node, modules := nodeVerifier(t)
	in, err := json.Marshal(map[string]any{
		"secret": secret,
		"headers": map[string]string{
			"webhook-id":        r.header.Get("webhook-id"),
			"webhook-timestamp": r.header.Get("webhook-timestamp"),
			"webhook-signature": r.header.Get("webhook-signature"),
		},
		"body": base64.StdEncoding.EncodeToString(r.body),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "verify.mjs"), modules)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return errors.New(strings.TrimSpace(stderr.String()))
	case err != nil:
		t.Fatalf("run node verifier: %v: %s", err, stderr.Bytes())
	}
	if got, want := strings.TrimSpace(stdout.String()), "ok standardwebhooks@"+standardwebhooksVersion; got != want {
		t.Fatalf("node verifier said %q, want %q", got, want)
	}
	return nil
}

// TestDeliver_NodeVerifies has the real npm standardwebhooks library verify
// what Deliver sent, including a tampered copy that it must reject: a test
// that could not fail would prove nothing.
func TestDeliver_NodeVerifies(t *testing.T) {
	nodeVerifier(t) // skip or fail before sending anything
	rc := newReceiver(t, nil)
	for _, secret := range []string{testSecret, strings.TrimPrefix(testSecret, "whsec_")} {
		tg := mustNew(t, Config{URL: rc.URL, Secret: secret}, nil)
		if _, err := tg.Deliver(t.Context(), connector.Delivery{Key: "brightpattern:IX-1:calls", Body: testBody, Attempt: 1}); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}
	reqs := rc.requests()
	for i, r := range reqs {
		if err := nodeVerify(t, testSecret, r); err != nil {
			t.Errorf("request %d: standardwebhooks rejected the signature: %v", i+1, err)
		}
	}

	r := reqs[0]
	tampered := r
	tampered.body = bytes.Replace(r.body, []byte("42"), []byte("43"), 1)
	if bytes.Equal(tampered.body, r.body) {
		t.Fatal("tampering left the body unchanged")
	}
	if err := nodeVerify(t, testSecret, tampered); err == nil || !strings.Contains(err.Error(), "No matching signature found") {
		t.Errorf("standardwebhooks on a tampered body: %v, want No matching signature found", err)
	}

	otherID := r
	otherID.header = r.header.Clone()
	otherID.header.Set("webhook-id", "brightpattern:IX-2:calls")
	if err := nodeVerify(t, testSecret, otherID); err == nil {
		t.Errorf("standardwebhooks accepted a signature replayed under another webhook-id")
	}
}
