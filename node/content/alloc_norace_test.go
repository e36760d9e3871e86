//go:build !race

package content

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/artmesh/artmesh/node/blockstore"
)

// Not under the race detector: it makes sync.Pool drop a share of what is
// put back, on purpose, so pooled buffers are allocated anew.

// TestSnippetImportAllocatesLittle: importing a small content takes the
// chunker's working buffer from the pool, so it allocates a few KiB, not
// a fresh 512 KiB buffer (500 MB/s of garbage at 1,000 creates/s).
func TestSnippetImportAllocatesLittle(t *testing.T) {
	cs, _ := newTestContent(t, blockstore.Options{NoSync: true})
	data := []byte(`{"name":"snippet","value":0}`)
	imp := func(i int) {
		data[len(data)-2] = byte('0' + i%10)
		im, err := cs.Import(context.Background(), bytes.NewReader(data), -1, "")
		if err != nil {
			t.Fatal(err)
		}
		im.Release()
	}
	for i := range 20 {
		imp(i) // fill the pool
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		imp(i)
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 64<<10 {
		t.Fatalf("a snippet import allocates %d bytes, want under 64 KiB", per)
	}
}
