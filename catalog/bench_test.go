package catalog

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
)

// buildN gives h n artifacts of one owner with metadata {"i": n,
// "bucket": n%10, "centile": n%100, "year": 2025}: "bucket" filters keep
// 10% of them, "centile" filters 1%.
func buildN(b *testing.B, n int) *testFSM {
	h := newTestFSM(b)
	h.agent("owner")
	for i := range n {
		h.create("owner", fmt.Sprintf("file-%d", i), "application/octet-stream",
			md("i", jsonInt(i), "bucket", jsonInt(i%10), "centile", jsonInt(i%100), "year", "2025"))
	}
	return h
}

// BenchmarkList lists one page of 50 of an owner's artifacts, by catalog
// size and filter, at the start and in the middle of the listing (by
// cursor): the cost is the page's, flat in the catalog's size. Set
// ARTMESH_BENCH_1M=1 to add a catalog of 1,000,000 (several GB of memory).
func BenchmarkList(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if os.Getenv("ARTMESH_BENCH_1M") != "" {
		sizes = append(sizes, 1_000_000)
	}
	filters := []struct {
		name string
		f    artmesh.Filter
	}{
		{"none", artmesh.Filter{}},
		{"meta10pct", artmesh.Filter{Meta: meta("bucket", "3")}},
		{"meta1pct", artmesh.Filter{Meta: meta("centile", "42")}},
		{"meta1pct+meta10pct", artmesh.Filter{Meta: meta("bucket", "2", "centile", "42")}},
		{"meta10pct+type", artmesh.Filter{Meta: meta("bucket", "3"), ContentType: "application/octet-stream"}},
	}
	for _, n := range sizes {
		h := buildN(b, n)
		var mid artmesh.ArtifactID
		for a, err := range allOf(h, artmesh.Filter{Limit: 1, Offset: n / 2}) {
			if err != nil {
				b.Fatal(err)
			}
			mid = a.ID
		}
		for _, fl := range filters {
			for _, at := range []string{"first", "middle"} {
				b.Run(fmt.Sprintf("n=%d/filter=%s/page=%s", n, fl.name, at), func(b *testing.B) {
					f := fl.f
					f.Limit = 50
					if at == "middle" {
						f.Cursor = artmesh.EncodeCursor(mid)
					}
					p, err := h.st().list("owner", f)
					if err != nil || len(p.Items) != 50 {
						b.Fatalf("list: %d items, %v", len(p.Items), err)
					}
					benchLatency(b, func() error { _, err := h.st().list("owner", f); return err })
				})
			}
		}
	}
}

// BenchmarkListOffset is the same page of a 10% filter reached by offset
// instead of cursor, at the middle of 100,000 artifacts: what an offset
// costs.
func BenchmarkListOffset(b *testing.B) {
	h := buildN(b, 100_000)
	f := artmesh.Filter{Meta: meta("bucket", "3"), Limit: 50, Offset: 5_000}
	benchLatency(b, func() error { _, err := h.st().list("owner", f); return err })
}

// allOf yields the artifacts of one page of the owner's listing.
func allOf(h *testFSM, f artmesh.Filter) func(func(artmesh.Artifact, error) bool) {
	return func(yield func(artmesh.Artifact, error) bool) {
		p, err := h.st().list("owner", f)
		if err != nil {
			yield(artmesh.Artifact{}, err)
			return
		}
		for _, a := range p.Items {
			if !yield(a, nil) {
				return
			}
		}
	}
}

// benchLatency runs fn as the benchmark's body and reports its p50 and
// p99 in milliseconds.
func benchLatency(b *testing.B, fn func() error) {
	var times []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Nanoseconds())/1e6, "p50-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds())/1e6, "p99-ms")
}

// BenchmarkCreateApply measures the state machine's cost of one
// CreateArtifact entry (decoding it and applying it to a state that grows
// as the benchmark goes), applied alone and in batches as Raft hands them
// over under load.
func BenchmarkCreateApply(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			h := newTestFSM(b)
			h.agent("owner")
			logs := make([]*raft.Log, b.N)
			for i := range logs {
				id, at := h.nextID()
				data, err := encodeCommand(CreateArtifact{
					ID: id, Name: fmt.Sprintf("file-%d", i), ContentType: "application/octet-stream", Owner: "owner",
					Metadata: md("i", jsonInt(i), "bucket", jsonInt(i%10), "year", "2025"),
					CID:      "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", SizeBytes: 1 << 20, At: at,
				})
				if err != nil {
					b.Fatal(err)
				}
				logs[i] = &raft.Log{Index: uint64(i + 2), Type: raft.LogCommand, Data: data}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < len(logs); i += batch {
				for _, res := range h.f.ApplyBatch(logs[i:min(i+batch, len(logs))]) {
					if err, ok := res.(error); ok {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkCreateRaft measures creates through a single Raft node on disk,
// from 8 concurrent writers.
func BenchmarkCreateRaft(b *testing.B) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	cfg.ServerID = "node1"
	c, err := Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Bootstrap(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := c.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "owner", CreatedAt: time.Now()}}); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(4) // 4 x GOMAXPROCS writers
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			at := time.Now()
			_, err := c.CreateArtifact(ctx, CreateArtifact{
				ID: artmesh.NewArtifactID(at), Name: "f", ContentType: "application/octet-stream", Owner: "owner",
				Metadata: md("i", jsonInt(i), "bucket", jsonInt(i%10)), CID: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
				SizeBytes: 1 << 20, At: at,
			})
			if err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}
