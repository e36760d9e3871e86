//go:build !linux

package blockstore

import "os"

// fdatasync flushes a pack to disk.
func fdatasync(f *os.File) error { return f.Sync() }
