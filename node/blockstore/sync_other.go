//go:build !linux

package blockstore

import (
	"math"
	"os"
)

// fdatasync flushes a pack to disk.
func fdatasync(f *os.File) error { return f.Sync() }

// statfsSpace is the default DiskSpace. Off Linux the space is not
// measured: it reports room without limit.
func statfsSpace(string) (free, total int64, err error) {
	return math.MaxInt64 / 4, math.MaxInt64 / 4, nil
}

// punchHole reports that holes cannot be punched off Linux.
func punchHole(*os.File, int64, int64) (bool, error) { return false, nil }

// allocated returns the file's size.
func allocated(fi os.FileInfo) int64 { return fi.Size() }
