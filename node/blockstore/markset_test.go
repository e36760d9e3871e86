package blockstore

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// TestMarkSet checks that every key added is found after seal, repeats
// and the compactions while adding included, and that keys never added
// are not (but for a fingerprint collision, which at these sizes should
// not happen).
func TestMarkSet(t *testing.T) {
	key := func(i int) []byte {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		h := sha256.Sum256(b[:])
		return append([]byte{0x12, 0x20}, h[:]...)
	}
	for _, tc := range []struct {
		name          string
		keys, repeats int
	}{
		{"empty", 0, 0},
		{"few", 10, 3},
		{"past a compaction", 150_000, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMarkSet()
			for range tc.repeats + 1 {
				for i := range tc.keys {
					m.add(key(i))
				}
			}
			m.seal()
			if len(m.fps) != tc.keys {
				t.Errorf("the set holds %d fingerprints, want %d", len(m.fps), tc.keys)
			}
			for i := range tc.keys {
				if !m.has(string(key(i))) {
					t.Fatalf("key %d was added but is not found", i)
				}
			}
			found := 0
			for i := tc.keys; i < tc.keys+100_000; i++ {
				if m.has(string(key(i))) {
					found++
				}
			}
			if found > 0 {
				t.Errorf("%d keys never added are found", found)
			}
		})
	}
}
