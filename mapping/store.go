package mapping

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Store holds the current Set and replaces it when the files change. A
// reload that fails keeps the last good Set serving and records why.
type Store struct {
	// Dir is the mapping directory; its *.toml files are the mapping.
	// Empty means the Fixed files, which never change.
	Dir     string
	Fixed   []File
	Options Options

	current atomic.Pointer[Set]
	mu      sync.Mutex // serializes loads and saves
	status  Status
	sum     [32]byte // fingerprint of the files of the current Set
}

// Status says what a Store serves and how its last reload went.
type Status struct {
	Files    []string  `json:"files"`
	Rules    int       `json:"rules"`
	LoadedAt time.Time `json:"loadedAt"`
	// LastError is why the last reload failed, while the previous Set
	// still serves; empty once a reload succeeds.
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	Reloads     int       `json:"reloads"`
	Failures    int       `json:"failures"`
}

// Current returns the Set in use. It is nil before the first successful
// Reload.
func (s *Store) Current() *Set { return s.current.Load() }

// Status returns the Store's status.
func (s *Store) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Files = append([]string(nil), st.Files...)
	return st
}

// Files returns the mapping files as they are now on disk.
func (s *Store) Files() ([]File, error) {
	if s.Dir == "" {
		return append([]File(nil), s.Fixed...), nil
	}
	names, err := filepath.Glob(filepath.Join(s.Dir, "*.toml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	files := make([]File, 0, len(names))
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: name, Data: data})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no mapping files (*.toml)", s.Dir)
	}
	return files, nil
}

// Reload loads the files if they changed since the current Set was loaded
// and, when they load without problems, makes them current. It reports
// whether the Set changed. On error the current Set stays.
func (s *Store) Reload() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	files, err := s.Files()
	if err == nil && s.current.Load() != nil && fingerprint(files) == s.sum {
		// The files are the ones in use again (a broken edit was
		// reverted): the last failure no longer describes them.
		s.status.LastError, s.status.LastErrorAt = "", time.Time{}
		return false, nil
	}
	if err == nil {
		err = s.use(files)
	}
	if err != nil {
		s.status.Failures++
		s.status.LastError, s.status.LastErrorAt = err.Error(), time.Now()
		return false, err
	}
	return true, nil
}

// use loads files and makes them current.
func (s *Store) use(files []File) error {
	set, err := Load(files, s.Options)
	if err != nil {
		return err
	}
	s.current.Store(set)
	s.sum = fingerprint(files)
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f.Name)
	}
	s.status = Status{Files: names, Rules: len(set.rules), LoadedAt: time.Now(),
		Reloads: s.status.Reloads + 1, Failures: s.status.Failures}
	return nil
}

// Check loads the mapping as it would be with the file name (a base name
// in Dir) holding data, without writing anything: what an editor shows
// while an admin types.
func (s *Store) Check(name string, data []byte) (*Set, error) {
	files, err := s.withFile(name, data)
	if err != nil {
		return nil, err
	}
	return Load(files, s.Options)
}

// Save writes data to the file name (a base name in Dir) if, and only if,
// the whole mapping loads without problems with it; the file is replaced
// atomically and the new Set is current when Save returns.
//
// check, when not nil, is called first with the file's content as it is on
// disk (exists false when there is none), under the same lock as the
// write, so that "refuse if it changed since I read it" cannot race with
// another Save; its error is returned as is and nothing is written.
func (s *Store) Save(name string, data []byte, check func(old []byte, exists bool) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if check != nil && s.Dir != "" && name == filepath.Base(name) {
		old, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := check(old, err == nil); err != nil {
			return err
		}
	}
	files, err := s.withFile(name, data)
	if err != nil {
		return err
	}
	if _, err := Load(files, s.Options); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(s.Dir, name), data); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	return s.use(files)
}

// withFile returns the files on disk with name replaced by, or added as,
// data.
func (s *Store) withFile(name string, data []byte) ([]File, error) {
	if s.Dir == "" {
		return nil, errors.New("no mapping directory is configured (mapping.dir): the embedded default cannot be edited")
	}
	if name != filepath.Base(name) || !strings.HasSuffix(name, ".toml") || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("%q: a mapping file is a plain name ending in .toml", name)
	}
	files, err := s.Files()
	if err != nil && !strings.Contains(err.Error(), "no mapping files") {
		return nil, err
	}
	path := filepath.Join(s.Dir, name)
	out := make([]File, 0, len(files)+1)
	for _, f := range files {
		if f.Name != path {
			out = append(out, f)
		}
	}
	out = append(out, File{Name: path, Data: data})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Watch polls the files every interval until ctx ends and reloads them
// when they changed and then stayed the same for one more interval, so
// that a file caught halfway through an editor's save is never loaded.
// report is called after every reload attempt.
func (s *Store) Watch(ctx context.Context, interval time.Duration, report func(changed bool, err error)) {
	if s.Dir == "" {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	s.mu.Lock()
	acted := s.sum // the files as last loaded or tried
	s.mu.Unlock()
	var pending [32]byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		files, err := s.Files()
		sum := fingerprint(files)
		if err != nil {
			sum = sha256.Sum256([]byte(err.Error()))
		}
		switch {
		case sum == acted:
			pending = [32]byte{}
			continue
		case sum != pending:
			pending = sum // changed: wait until it stays put
			continue
		}
		acted, pending = sum, [32]byte{}
		if changed, err := s.Reload(); changed || err != nil {
			report(changed, err)
		}
	}
}

// fingerprint identifies a set of files by names and contents.
func fingerprint(files []File) [32]byte {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Data))
		h.Write(f.Data)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, synced, then renamed over path, so that a reader (or a crash)
// never sees half a file.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
