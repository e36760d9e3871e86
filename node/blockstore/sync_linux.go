package blockstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync flushes a pack's data (and the size that finds it) to disk.
func fdatasync(f *os.File) error {
	return unix.Fdatasync(int(f.Fd()))
}
