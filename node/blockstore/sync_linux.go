package blockstore

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// fdatasync flushes a pack's data (and the size that finds it) to disk.
func fdatasync(f *os.File) error {
	return unix.Fdatasync(int(f.Fd()))
}

// statfsSpace is the default DiskSpace: statfs of dir.
func statfsSpace(dir string) (free, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize, nil
}

// punchHole frees the disk blocks of f's bytes [off, off+n), keeping its
// size; reads of them return zeros. It reports false when the filesystem
// cannot punch holes.
func punchHole(f *os.File, off, n int64) (bool, error) {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return false, nil
	}
	return err == nil, err
}

// allocated returns the bytes of disk a file uses, which is less than its
// size once holes are punched.
func allocated(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
