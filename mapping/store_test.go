package mapping_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/mapping"
)

const ruleA = `
[[rule]]
name = "a"
target = "crm"
object = "Task"
fields = { Subject = '"A"' }
`

func newStore(t *testing.T, files map[string]string) *mapping.Store {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := &mapping.Store{Dir: dir, Options: targets}
	if _, err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore_SaveValidatesBeforeWriting(t *testing.T) {
	s := newStore(t, map[string]string{"a.toml": ruleA})
	before := s.Current()
	bad := strings.Replace(ruleA, `'"A"'`, `'nosuchfield'`, 1)
	if err := s.Save("a.toml", []byte(bad), nil); err == nil || !strings.Contains(err.Error(), "nosuchfield") {
		t.Fatalf("Save of a broken mapping = %v, want the problem", err)
	}
	if data, _ := os.ReadFile(filepath.Join(s.Dir, "a.toml")); string(data) != ruleA {
		t.Fatalf("a broken Save changed the file on disk")
	}
	if s.Current() != before {
		t.Fatalf("a broken Save replaced the current set")
	}
	good := strings.Replace(ruleA, `'"A"'`, `'"B"'`, 1)
	if err := s.Save("a.toml", []byte(good), nil); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(s.Dir, "a.toml")); string(data) != good || s.Current() == before {
		t.Fatalf("a good Save did not write the file and swap the set")
	}
	for _, name := range []string{"../x.toml", "x.txt", ".hidden.toml"} {
		if err := s.Save(name, []byte(ruleA), nil); err == nil {
			t.Errorf("Save(%q) succeeded, want a refusal", name)
		}
	}
}

// TestStore_Watch edits, breaks, deletes and recreates files under a
// running watcher.
func TestStore_Watch(t *testing.T) {
	s := newStore(t, map[string]string{"a.toml": ruleA})
	var mu sync.Mutex
	var reports []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Watch(ctx, 20*time.Millisecond, func(changed bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			reports = append(reports, "error: "+err.Error())
		} else {
			reports = append(reports, "reloaded")
		}
	})
	waitReports := func(n int) []string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			r := append([]string(nil), reports...)
			mu.Unlock()
			if len(r) >= n {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("reports = %q, want %d", r, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	path := filepath.Join(s.Dir, "a.toml")

	// A valid edit is applied.
	os.WriteFile(path, []byte(strings.Replace(ruleA, `name = "a"`, `name = "a2"`, 1)), 0o644)
	if r := waitReports(1); r[0] != "reloaded" || s.Current().Rules()[0] != "a2" {
		t.Fatalf("after a valid edit: %q, rules %v", r, s.Current().Rules())
	}
	// An invalid edit is rejected; the old set keeps serving.
	os.WriteFile(path, []byte("[[rule]]\nname = \"a3\"\nbogus = 1\n"), 0o644)
	if r := waitReports(2); !strings.HasPrefix(r[1], "error: ") || s.Current().Rules()[0] != "a2" {
		t.Fatalf("after an invalid edit: %q, rules %v", r, s.Current().Rules())
	}
	if st := s.Status(); st.LastError == "" || st.Failures != 1 {
		t.Fatalf("status after a failed reload = %+v, want the error recorded", st)
	}
	// Deleted, then recreated.
	os.Remove(path)
	if r := waitReports(3); !strings.Contains(r[2], "no mapping files") || s.Current().Rules()[0] != "a2" {
		t.Fatalf("after deleting the file: %q", r)
	}
	os.WriteFile(path, []byte(ruleA), 0o644)
	if r := waitReports(4); r[3] != "reloaded" || s.Current().Rules()[0] != "a" {
		t.Fatalf("after recreating the file: %q, rules %v", r, s.Current().Rules())
	}
	if st := s.Status(); st.LastError != "" {
		t.Fatalf("status after a good reload still has an error: %+v", st)
	}
}

// TestStore_SaveCheckIsAtomic: saves that all started from the same
// content race; the check runs under the store's lock, so exactly one of
// them writes and the others see the file changed.
func TestStore_SaveCheckIsAtomic(t *testing.T) {
	s := newStore(t, map[string]string{"a.toml": ruleA})
	base := ruleA
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			edit := strings.Replace(ruleA, `'"A"'`, `'"edit `+string(rune('0'+i))+`"'`, 1)
			err := s.Save("a.toml", []byte(edit), func(old []byte, exists bool) error {
				if !exists || string(old) != base {
					return errChanged
				}
				return nil
			})
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if err != errChanged {
				t.Errorf("save %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d of 8 saves from the same base were written, want exactly 1", wins)
	}
}

var errChanged = errors.New("changed on disk")
