package node

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/repo"
)

// joinTestNode opens a node that joins a's mesh with cfg and waits until
// it has caught up.
func joinTestNode(t *testing.T, a *Node, admin artmesh.Agent, cfg Config) *Node {
	t.Helper()
	ctx := context.Background()
	inv, err := a.CreateInvite(ctx, admin, 600)
	if err != nil {
		t.Fatal(err)
	}
	ticket, err := repo.ParseTicket(inv.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Repo = t.TempDir()
	if err := repo.Init(ctx, cfg.Repo, repo.InitOptions{Listen: testListen, Join: ticket}); err != nil {
		t.Fatal(err)
	}
	b, _ := openTestNode(t, cfg)
	if err := b.Consistent(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the members reach each other", func() bool {
		return a.reachable(b.peerID.String()) && b.reachable(a.peerID.String())
	})
	return b
}

// TestHeldCachePick: copies go to the members holding the fewest bytes,
// each pick counts, and the counts are taken again from the catalog once
// they are heldCacheFor old.
func TestHeldCachePick(t *testing.T) {
	p1, p2, p3 := peer.ID("p1"), peer.ID("p2"), peer.ID("p3")
	held := map[string]int64{p1.String(): 100, p2.String(): 10, p3.String(): 10}
	now := time.Unix(1000, 0)
	loads := 0
	h := heldCache{now: func() time.Time { return now }}
	load := func() (map[string]int64, error) { loads++; return held, nil }
	for _, step := range []struct {
		name    string
		advance time.Duration
		k       int
		size    int64
		want    []peer.ID
		loads   int
	}{
		{"fewest bytes first, ties by id", 0, 2, 50, []peer.ID{p2, p3}, 1},
		{"the picks counted: p2 and p3 now hold 60", 0, 1, 50, []peer.ID{p2}, 1},
		{"p2 110, p1 100, p3 60", time.Second, 2, 1, []peer.ID{p3, p1}, 1},
		{"counted again from the catalog", heldCacheFor, 1, 1, []peer.ID{p2}, 2},
		{"unknown size counts one byte", 0, 3, -1, []peer.ID{p3, p2, p1}, 2},
	} {
		now = now.Add(step.advance)
		got := h.pick([]peer.ID{p1, p2, p3}, step.k, step.size, load)
		if !slices.Equal(got, step.want) || loads != step.loads {
			t.Fatalf("%s: picked %v after %d loads, want %v after %d", step.name, got, loads, step.want, step.loads)
		}
	}
}

// TestSmallWritesHaveTheirFactorAtOnce: with the default policy (factor
// 2, one synchronous copy), a write of up to EagerCopyMax bytes is pushed
// to a second member during the write and recorded with both holders;
// a larger one, or one with copies turned off, with its writer only.
func TestSmallWritesHaveTheirFactorAtOnce(t *testing.T) {
	ctx := context.Background()
	a, admin := openTestNode(t, Config{GCDelay: -1, EagerCopyMax: 64 << 10})
	b := joinTestNode(t, a, admin, Config{GCDelay: -1})
	for _, tc := range []struct {
		name    string
		size    int
		declare bool
		holders int
	}{
		{"small, size declared", 1000, true, 2},
		{"small, size unknown", 2000, false, 2},
		{"at the limit", 64 << 10, true, 2},
		{"larger than the limit, declared", 64<<10 + 1, true, 1},
		{"larger than the limit, size unknown", 1 << 20, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(uint64(tc.size), tc.size)
			size := int64(-1)
			if tc.declare {
				size = int64(tc.size)
			}
			art, err := a.CreateArtifact(ctx, admin, CreateInput{Name: "x.bin", Size: size}, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.cat.Holders(art.CID)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.holders {
				t.Fatalf("holders at the acknowledgement: %v, want %d", got, tc.holders)
			}
			if tc.holders == 2 && !b.verifiedHere(ctx, art.CID) {
				t.Fatal("the second holder does not have the whole DAG")
			}
		})
	}
}

// TestExtraCopyFailureDoesNotFailTheWrite: a write whose extra copy
// cannot be made (the member is gone) succeeds with its writer as the
// only holder.
func TestExtraCopyFailureDoesNotFailTheWrite(t *testing.T) {
	ctx := context.Background()
	a, admin := openTestNode(t, Config{GCDelay: -1})
	b := joinTestNode(t, a, admin, Config{GCDelay: -1})
	// b refuses every push: it no longer admits a as a member.
	b.admit.SetMember(func(peer.ID) bool { return false })
	art, err := a.CreateArtifact(ctx, admin, CreateInput{Name: "x.bin", Size: 4096}, bytes.NewReader(randomBytes(3, 4096)))
	if err != nil {
		t.Fatalf("the write failed with its extra copy: %v", err)
	}
	if got, _ := a.cat.Holders(art.CID); !slices.Equal(got, []string{a.peerID.String()}) {
		t.Fatalf("holders %v, want the writer only", got)
	}
	// b is given no extra copies for a while.
	if _, extra, err := a.replicaTargets(1, 1, 4096); err != nil || len(extra) != 0 {
		t.Fatalf("extra copies after b failed one: %v, %v; want none", extra, err)
	}
}

// TestFetchOfDeletedVersionIsDropped: a placement fetch of a version
// deleted before it ran answers errGone at once and records nothing.
func TestFetchOfDeletedVersionIsDropped(t *testing.T) {
	ctx := context.Background()
	a, admin := openTestNode(t, Config{GCDelay: -1, EagerCopyMax: -1})
	b := joinTestNode(t, a, admin, Config{GCDelay: -1})
	art, err := a.CreateArtifact(ctx, admin, CreateInput{Name: "x.bin", Size: 4096}, bytes.NewReader(randomBytes(4, 4096)))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := a.cat.Holders(art.CID); len(got) != 1 {
		t.Fatalf("holders %v: the copy was made at the write", got)
	}
	if err := a.DeleteArtifact(ctx, admin, art.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.Consistent(ctx); err != nil {
		t.Fatal(err)
	}
	err = b.fetchAndHold(ctx, catalog.Replica{CID: art.CID, SizeBytes: art.SizeBytes, Factor: 2, Holders: []string{a.peerID.String()}})
	if !errors.Is(err, errGone) {
		t.Fatalf("fetch of a deleted version: %v, want errGone", err)
	}
	if b.verifiedHere(ctx, art.CID) {
		t.Fatal("the content of a deleted version was fetched")
	}
	if got, _ := a.cat.Holders(art.CID); len(got) != 0 {
		t.Fatalf("holders of a deleted version: %v", got)
	}
}

// stallSink takes the first block of a push and then stops reading, as a
// member cut off mid-write does, until release is closed.
type stallSink struct{ release <-chan struct{} }

func (s stallSink) Put(context.Context, cid.Cid, []byte) error {
	<-s.release
	return errors.New("released")
}
func (s stallSink) Done(context.Context, cid.Cid) error { return errors.New("stalled") }
func (s stallSink) Abort()                              {}

// TestStalledExtraCopyIsCut: a member that stops reading its extra copy
// holds the write up for about extraCopyTimeout, not for the push's
// frame deadline, and the write is recorded without it.
func TestStalledExtraCopyIsCut(t *testing.T) {
	ctx := context.Background()
	a, admin := openTestNode(t, Config{GCDelay: -1})
	b := joinTestNode(t, a, admin, Config{GCDelay: -1})
	release := make(chan struct{})
	defer close(release)
	mesh.ServePush(b.host, time.Minute, func(peer.ID) (mesh.PushSink, error) { return stallSink{release}, nil })
	const size = 8 << 20
	start := time.Now()
	art, err := a.CreateArtifact(ctx, admin, CreateInput{Name: "x.bin", Size: size}, bytes.NewReader(randomBytes(5, size)))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("the write failed with its extra copy: %v", err)
	}
	if took > extraCopyTimeout+5*time.Second {
		t.Fatalf("the write took %s with a stalled extra copy, want about %s", took, extraCopyTimeout)
	}
	if got, _ := a.cat.Holders(art.CID); !slices.Equal(got, []string{a.peerID.String()}) {
		t.Fatalf("holders %v, want the writer only", got)
	}
}

// TestPendingReleaseDeleted: which pushed roots lose their protection
// from the collector.
func TestPendingReleaseDeleted(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name     string
		age      time.Duration
		live     bool
		changed  bool
		known    bool
		released bool
	}{
		{"recorded and deleted", 2 * time.Second, false, true, true, true},
		{"its write not recorded yet", 2 * time.Second, false, false, true, false},
		{"recorded and live", 2 * time.Second, true, true, true, false},
		{"pushed a moment ago", pendingGrace / 2, false, true, true, false},
		{"the watch forgot that far back", 2 * time.Second, false, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p pendingSet
			p.add("c", 7, now.Add(-tc.age))
			var since uint64
			p.releaseDeleted(now, func(string) bool { return tc.live }, func(c string, s uint64) (bool, bool) {
				since = s
				return tc.changed, tc.known
			})
			_, kept := p.m["c"]
			if kept == tc.released {
				t.Fatalf("released %v, want %v", !kept, tc.released)
			}
			if since != 0 && since != 7 {
				t.Fatalf("asked for changes since %d, want since the push's index 7", since)
			}
		})
	}
}

// TestDeletedExtraCopyIsFreed: an extra copy whose version is deleted
// right after its write, before any collection saw its holder, is freed
// by the next collection on the member that took it, not kept for
// pendingTTL.
func TestDeletedExtraCopyIsFreed(t *testing.T) {
	ctx := context.Background()
	a, admin := openTestNode(t, Config{GCDelay: -1})
	b := joinTestNode(t, a, admin, Config{GCDelay: -1})
	art, err := a.CreateArtifact(ctx, admin, CreateInput{Name: "x.bin", Size: 4096}, bytes.NewReader(randomBytes(6, 4096)))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := a.cat.Holders(art.CID); !slices.Contains(got, b.peerID.String()) {
		t.Fatalf("holders %v: b took no extra copy", got)
	}
	if err := a.DeleteArtifact(ctx, admin, art.ID); err != nil {
		t.Fatal(err)
	}
	root, err := cid.Decode(art.CID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a collection on b frees the deleted copy", func() bool {
		if _, err := b.collect(ctx); err != nil {
			t.Fatal(err)
		}
		return !b.complete(ctx, root)
	})
}
