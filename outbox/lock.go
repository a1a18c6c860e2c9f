package outbox

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile holds an exclusive advisory lock on a file for as long as it is
// open. The kernel releases it when the process dies, however it dies.
type lockFile struct{ f *os.File }

// lock takes the exclusive lock on path, failing at once if another process
// holds it.
func lock(path string) (*lockFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is locked by another process", path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &lockFile{f}, nil
}

func (l *lockFile) unlock() error {
	if l == nil {
		return nil
	}
	return l.f.Close() // closing the descriptor releases the lock
}
