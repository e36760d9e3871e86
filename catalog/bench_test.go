package catalog

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
)

// build100k gives h 100,000 artifacts of one owner with metadata
// {"i": n, "bucket": n%10, "year": 2025}.
func build100k(b *testing.B) *testFSM {
	h := newTestFSM(b)
	h.agent("owner")
	for n := range 100_000 {
		h.create("owner", fmt.Sprintf("file-%d", n), "application/octet-stream",
			md("i", jsonInt(n), "bucket", jsonInt(n%10), "year", "2025"))
	}
	return h
}

// BenchmarkList100k lists one page of the artifacts of an owner with
// 100,000 of them, filtered by one metadata key that 10% of them match.
func BenchmarkList100k(b *testing.B) {
	h := build100k(b)
	f := artmesh.Filter{Meta: []artmesh.MetaMatch{{Key: "bucket", Value: "3"}}, Limit: 50, Offset: 100}
	p, err := h.st().list("owner", f)
	if err != nil || p.Total != 10_000 || len(p.Items) != 50 {
		b.Fatalf("list: total %d, %d items, %v", p.Total, len(p.Items), err)
	}
	var times []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := h.st().list("owner", f); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkList100kUnfiltered lists the first page with no filter: the
// owner index, Total counting all 100,000.
func BenchmarkList100kUnfiltered(b *testing.B) {
	h := build100k(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := h.st().list("owner", artmesh.Filter{}); err != nil {
			b.Fatal(err)
		}
	}
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
