package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	chunker "github.com/ipfs/boxo/chunker"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node/blockstore"
)

// randomBytes returns n pseudo-random bytes from seed.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func newTestContent(t testing.TB, opts blockstore.Options) (*Store, *blockstore.Store) {
	t.Helper()
	bs, err := blockstore.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	return New(bs, DefaultChunking, nil), bs
}

func TestImportRoundTrip(t *testing.T) {
	ctx := context.Background()
	cs, _ := newTestContent(t, blockstore.Options{})
	for _, tc := range []struct {
		name     string
		size     int
		chunking Chunking
	}{
		{"empty", 0, ""},
		{"tiny", 10, ""},
		{"one-chunk", 100 << 10, ""},
		{"multi-chunk", 3<<20 + 17, ""},
		{"fixed", 1<<20 + 5, "size-65536"},
		{"many-links", 40 << 20, "size-16384"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(uint64(tc.size), tc.size)
			im, err := cs.Import(ctx, bytes.NewReader(data), -1, tc.chunking)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Release()
			if im.Size != int64(tc.size) {
				t.Fatalf("size %d, want %d", im.Size, tc.size)
			}
			if im.CID.Version() != 1 {
				t.Fatalf("cid %s is not v1", im.CID)
			}
			r, err := cs.Open(ctx, im.CID)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes differ from %d written", len(got), len(data))
			}
			if r.Size() != uint64(tc.size) {
				t.Fatalf("dag size %d", r.Size())
			}
			if tc.size > 10 {
				off := int64(tc.size / 3)
				if _, err := r.Seek(off, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				part := make([]byte, 7)
				if _, err := io.ReadFull(r, part); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(part, data[off:off+7]) {
					t.Fatal("seek read differs")
				}
			}
		})
	}
}

// truncatedReader yields some bytes, then io.ErrUnexpectedEOF, as an HTTP
// body cut off before its end does.
type truncatedReader struct{ n int }

func (r *truncatedReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

// TestImportTruncated checks that a source that breaks off is an error,
// not a shorter file.
func TestImportTruncated(t *testing.T) {
	cs, _ := newTestContent(t, blockstore.Options{})
	for _, size := range []int{10, 300 << 10, 3 << 20} {
		_, err := cs.Import(context.Background(), &truncatedReader{n: size}, -1, "")
		if !errors.Is(err, artmesh.Invalid) {
			t.Fatalf("a source cut off after %d bytes Imported with %v", size, err)
		}
	}
}

func TestImportLimit(t *testing.T) {
	cs, _ := newTestContent(t, blockstore.Options{})
	_, err := cs.Import(context.Background(), bytes.NewReader(make([]byte, 1000)), 999, "")
	if !errors.Is(err, artmesh.TooLarge) {
		t.Fatalf("err %v, want TooLarge", err)
	}
	if _, err := cs.Import(context.Background(), bytes.NewReader(nil), -1, "size-12"); !errors.Is(err, artmesh.Invalid) {
		t.Fatalf("err %v, want Invalid", err)
	}
}

// TestDedupAcrossVersions checks that changing 1 MiB in the middle of a
// large file stores few new bytes, thanks to content-defined chunking.
func TestDedupAcrossVersions(t *testing.T) {
	ctx := context.Background()
	cs, bs := newTestContent(t, blockstore.Options{NoSync: true})
	const size = 64 << 20
	data := randomBytes(1, size)
	im1, err := cs.Import(ctx, bytes.NewReader(data), -1, "")
	if err != nil {
		t.Fatal(err)
	}
	defer im1.Release()
	before, _ := bs.Stat()
	copy(data[size/2:], randomBytes(2, 1<<20))
	im2, err := cs.Import(ctx, bytes.NewReader(data), -1, "")
	if err != nil {
		t.Fatal(err)
	}
	defer im2.Release()
	after, _ := bs.Stat()
	grew := after.Bytes - before.Bytes
	t.Logf("second version stored %d new bytes", grew)
	if grew > 4<<20 {
		t.Fatalf("store grew by %d bytes for a 1 MiB change", grew)
	}
}

func BenchmarkImport(b *testing.B) {
	const size = 256 << 20
	data := randomBytes(3, size)
	for _, sync := range []bool{false, true} {
		name := "nosync"
		if sync {
			name = "durable"
		}
		b.Run(name, func(b *testing.B) {
			cs, _ := newTestContent(b, blockstore.Options{NoSync: !sync})
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				data[0] = byte(i) // a new file each time
				data[size/2] = byte(i)
				im, err := cs.Import(context.Background(), bytes.NewReader(data), -1, "")
				if err != nil {
					b.Fatal(err)
				}
				im.Release()
			}
		})
	}
}

// BenchmarkImportSnippet imports small contents, as agents' JSON
// snippets are: the chunker's buffers come from the pool, so an import
// allocates a few KiB, not a fresh 512 KiB working buffer.
func BenchmarkImportSnippet(b *testing.B) {
	cs, _ := newTestContent(b, blockstore.Options{NoSync: true})
	data := []byte(`{"name":"snippet","value":0}`)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		data[len(data)-2] = byte('0' + i%10)
		im, err := cs.Import(context.Background(), bytes.NewReader(data), -1, "")
		if err != nil {
			b.Fatal(err)
		}
		im.Release()
	}
}

func BenchmarkRead(b *testing.B) {
	const size = 256 << 20
	data := randomBytes(4, size)
	cs, _ := newTestContent(b, blockstore.Options{NoSync: true})
	im, err := cs.Import(context.Background(), bytes.NewReader(data), -1, "")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := cs.Open(context.Background(), im.CID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBuzhashMatchesBoxo checks that the pooled chunker cuts where boxo's
// does, so that the same content gets the same CIDs as before.
func TestBuzhashMatchesBoxo(t *testing.T) {
	pool := newChunkPool()
	for _, size := range []int{0, 1, 100 << 10, 128 << 10, 129 << 10, 700 << 10, 5<<20 + 3} {
		data := randomBytes(uint64(size)+7, size)
		ours := newBuzhash(bytes.NewReader(data), pool)
		theirs := chunker.NewBuzhash(bytes.NewReader(data))
		for i := 0; ; i++ {
			a, errA := ours.NextBytes()
			b, errB := theirs.NextBytes()
			if !bytes.Equal(a, b) || (errA == nil) != (errB == nil) {
				t.Fatalf("size %d chunk %d: %d bytes (%v) vs boxo's %d (%v)", size, i, len(a), errA, len(b), errB)
			}
			if errA != nil {
				break
			}
			pool.put(a)
		}
	}
}
