package dial

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cookieName is the signed cookie that names the agent using this
// browser: the bridge has it set when its commands stream opens, and
// GET /dial reads it when the link names no agent.
const cookieName = "ctibridge_agent"

// cookieLife is how long the cookie is good for: a working day and more;
// the bridge sets it again every time its stream opens.
const cookieLife = 16 * time.Hour

// loadKey returns the cookie signing key kept in path, generated (32
// random bytes, in hex) into a new file of mode 0600 on the first start,
// as the admin token is.
func loadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil && len(strings.TrimSpace(string(b))) >= 32:
		return []byte(strings.TrimSpace(string(b))), nil
	case err == nil: // empty or cut short: a crash interrupted its creation
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("dial cookie key: %w", err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("dial cookie key: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("dial cookie key: %w", err)
	}
	key := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dial cookie key: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("dial cookie key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("dial cookie key: %w", err)
	}
	return []byte(key), nil
}

// signAgent returns the cookie value naming agent until expires:
// base64url(agent).unix-seconds.base64url(HMAC-SHA256).
func signAgent(key []byte, agent string, expires time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(agent)) + "." + strconv.FormatInt(expires.Unix(), 10)
	return payload + "." + base64.RawURLEncoding.EncodeToString(mac(key, payload))
}

// verifyAgent returns the agent a cookie value names, if its signature is
// good and it has not expired.
func verifyAgent(key []byte, value string, now time.Time) (string, bool) {
	i := strings.LastIndexByte(value, '.')
	if i < 0 {
		return "", false
	}
	payload, sig := value[:i], value[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, payload)) {
		return "", false
	}
	enc, exp, ok := strings.Cut(payload, ".")
	if !ok {
		return "", false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !now.Before(time.Unix(unix, 0)) {
		return "", false
	}
	agent, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(agent) == 0 {
		return "", false
	}
	return string(agent), true
}

func mac(key []byte, payload string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("ctibridge-agent-cookie\x00" + payload))
	return h.Sum(nil)
}
