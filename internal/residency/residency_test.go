package residency

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// mappedRSS returns the resident bytes of the process's maps of path
// (the Rss lines of /proc/self/smaps under its mappings).
func mappedRSS(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps:", err)
	}
	defer f.Close()
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[5] == path
			continue
		}
		if in && len(fields) >= 2 && fields[0] == "Rss:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			total += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// TestTrim checks that the pages a read brought into a bbolt file's map
// leave the process's resident memory after Trim, and that the file
// still reads the same.
func TestTrim(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const rows, size = 4096, 2048 // 8 MiB of values
	val := []byte(strings.Repeat("v", size))
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := range rows {
			if err := b.Put(fmt.Appendf(nil, "%08d", i), val); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	readAll := func() int {
		n := 0
		if err := db.View(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("b")).ForEach(func(_, v []byte) error {
				if len(v) == size {
					n++
				}
				return nil
			})
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	readAll()
	before := mappedRSS(t, path)
	if before < 4<<20 {
		t.Fatalf("after reading 8 MiB, %d bytes of the file are resident: the test cannot tell a trim", before)
	}
	fileBefore, err := FileResident()
	if err != nil {
		t.Fatal(err)
	}
	if err := Trim(db); err != nil {
		t.Fatal(err)
	}
	after := mappedRSS(t, path)
	if after > before/4 {
		t.Errorf("after Trim %d bytes of the file are resident, %d before", after, before)
	}
	fileAfter, err := FileResident()
	if err != nil {
		t.Fatal(err)
	}
	if fileBefore-fileAfter < (before-after)/2 {
		t.Errorf("FileResident went from %d to %d bytes, while the file's map dropped %d", fileBefore, fileAfter, before-after)
	}
	if n := readAll(); n != rows {
		t.Errorf("after Trim the file reads %d rows, want %d", n, rows)
	}
}
