package node

import (
	"bytes"
	"context"
	"github.com/artmesh/artmesh/node/repo"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh/mesh"
)

// BenchmarkDAGStreamOnly fetches a DAG from a peer and throws the blocks
// away: the protocol and transport alone, without the store.
func BenchmarkDAGStreamOnly(b *testing.B) {
	ctx := context.Background()
	a, bn, root := twoNodes(b)
	_ = a
	b.SetBytes(256 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := mesh.FetchDAG(ctx, bn.host, a.peerID, root, func(cid.Cid, []byte) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawStream measures one raw stream between the same two nodes.
func BenchmarkRawStream(b *testing.B) {
	ctx := context.Background()
	a, bn, _ := twoNodes(b)
	b.SetBytes(256 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := mesh.MeasureStream(ctx, bn.host, a.peerID, 256<<20); err != nil {
			b.Fatal(err)
		}
	}
}

func twoNodes(b *testing.B) (*Node, *Node, cid.Cid) {
	b.Helper()
	ctx := context.Background()
	a, _ := openTestNode(b, Config{GCDelay: -1})
	repoB := b.TempDir()
	if err := repo.Init(ctx, repoB, repo.InitOptions{}); err != nil {
		b.Fatal(err)
	}
	bn, _ := openTestNode(b, Config{Repo: repoB, GCDelay: -1})
	admitEachOther(a, bn)
	bn.host.Peerstore().AddAddrs(a.peerID, a.host.Addrs(), time.Hour)
	if err := bn.host.Connect(ctx, peer.AddrInfo{ID: a.peerID, Addrs: a.host.Addrs()}); err != nil {
		b.Fatal(err)
	}
	im, err := a.content.Import(ctx, &patternReader{n: 256 << 20}, -1, "")
	if err != nil {
		b.Fatal(err)
	}
	return a, bn, im.CID
}

type patternReader struct{ n, off int }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := min(len(b), p.n-p.off)
	for i := 0; i < k; i++ {
		x := uint64(p.off+i) * 0x9e3779b97f4a7c15
		b[i] = byte(x >> 32)
	}
	p.off += k
	return k, nil
}

// TestBitswapFallback fetches a DAG from a connected peer with bitswap
// alone, as the fetcher does when no holder can stream it.
func TestBitswapFallback(t *testing.T) {
	ctx := context.Background()
	a, _ := openTestNode(t, Config{GCDelay: -1})
	repoB := t.TempDir()
	if err := repo.Init(ctx, repoB, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	bn, _ := openTestNode(t, Config{Repo: repoB, GCDelay: -1, BitswapRootTimeout: 2 * time.Second})
	admitEachOther(a, bn)
	if err := bn.host.Connect(ctx, peer.AddrInfo{ID: a.peerID, Addrs: a.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(77, 3<<20)
	im, err := a.content.Import(ctx, bytes.NewReader(data), -1, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := bn.fetcher.FetchBitswap(ctx, im.CID); err != nil {
		t.Fatal(err)
	}
	if !bn.complete(ctx, im.CID) {
		t.Fatal("the DAG is not complete after a bitswap fetch")
	}
	r, err := bn.content.Open(ctx, im.CID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, data) {
		t.Fatal("bitswap brought other bytes")
	}
	// A peer that is not a member gets nothing, by bitswap or by the DAG
	// stream, although TLS lets it connect.
	repoC := t.TempDir()
	if err := repo.Init(ctx, repoC, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	cn, _ := openTestNode(t, Config{Repo: repoC, GCDelay: -1, BitswapRootTimeout: 2 * time.Second})
	cn.admit.SetMember(func(peer.ID) bool { return true }) // c would talk; a must refuse
	if err := cn.host.Connect(ctx, peer.AddrInfo{ID: a.peerID, Addrs: a.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := cn.fetcher.FetchBitswap(ctx, im.CID); err == nil {
		t.Fatal("a peer that is not a member fetched a DAG by bitswap")
	}
	if err := mesh.FetchDAG(ctx, cn.host, a.peerID, im.CID, func(cid.Cid, []byte) error { return nil }); err == nil {
		t.Fatal("a peer that is not a member fetched a DAG over the DAG stream")
	}
	alloc := func(n int) []byte { return make([]byte, n) }
	if err := mesh.FetchDAGs(ctx, cn.host, a.peerID, []cid.Cid{im.CID}, mesh.SkipRaw, alloc, func(cid.Cid, []byte) error { return nil }); err == nil {
		t.Fatal("a peer that is not a member fetched a DAG's skeleton")
	}
	if _, err := mesh.Call(ctx, cn.host, a.peerID, mesh.HaveProtocol, im.CID.Bytes()); err == nil {
		t.Fatal("a peer that is not a member asked what a node has")
	}
	if has, _ := cn.bs.Has(ctx, im.CID); has {
		t.Fatal("a peer that is not a member stored the root block")
	}
	// A CID nobody has: the fallback gives up rather than hang.
	missing, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x12, MhLength: -1}.Sum([]byte("nobody has this"))
	start := time.Now()
	if err := bn.fetcher.FetchBitswap(ctx, missing); err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("fetching a CID nobody has: %v after %s", err, time.Since(start))
	}
}
