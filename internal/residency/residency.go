// Package residency keeps the memory maps of bbolt files from counting in
// the process's resident memory without bound.
//
// bbolt reads its file through a shared memory map, and every page a read
// touches counts in the process's RSS (RssFile) until the map drops it. A
// catalog of a million artifacts is a file of gigabytes, and under a
// write load the pages that commits move and reads fault back in come at
// hundreds of MB a second: left alone, most of the file ends up resident.
// Trim drops a file's pages from the map; they stay in the kernel's page
// cache, and the next read maps them again at the cost of a minor fault.
// FileResident tells when that is due.
package residency

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Trim drops db's pages from the process's memory map (madvise
// MADV_DONTNEED over the mapped file). A read transaction is held
// meanwhile, so that bbolt cannot remap the file under it.
func Trim(db *bolt.DB) error {
	tx, err := db.Begin(false)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	addr, size := db.Info().Data, tx.Size()
	if addr == 0 || size <= 0 {
		return nil
	}
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, uintptr(size), unix.MADV_DONTNEED); errno != 0 {
		return fmt.Errorf("madvise %s: %w", db.Path(), errno)
	}
	return nil
}

// FileResident returns how many bytes of the process's resident memory
// are file pages (RssFile and RssShmem: the third field of
// /proc/self/statm), the binary's own text included.
func FileResident() (int64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0, fmt.Errorf("residency: /proc/self/statm has %d fields", len(f))
	}
	pages, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("residency: /proc/self/statm: %w", err)
	}
	return pages * int64(os.Getpagesize()), nil
}
