package node

import (
	"bytes"
	"context"
	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node/repo"
	"io"
	"log/slog"
	"testing"

	"github.com/ipfs/go-cid"
)

// BenchmarkFetchFromPeer measures a download on one node of content that
// only another node, in the same process, holds.
func BenchmarkFetchFromPeer(b *testing.B) { benchFetch(b, false) }

// BenchmarkFetchOnly measures the fetch alone, without reading.
func BenchmarkFetchOnly(b *testing.B) { benchFetch(b, true) }

func benchFetch(b *testing.B, fetchOnly bool) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	repoA := b.TempDir()
	if err := repo.Init(ctx, repoA, repo.InitOptions{Listen: testListen}); err != nil {
		b.Fatal(err)
	}
	a, err := Open(ctx, Config{Repo: repoA, Listen: testListen, Logger: quiet, GCDelay: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	admin, _ := a.cat.Agent(repo.AdminAgent)
	inv, err := a.CreateInvite(ctx, admin, 600)
	if err != nil {
		b.Fatal(err)
	}
	ticket, err := repo.ParseTicket(inv.Ticket)
	if err != nil {
		b.Fatal(err)
	}
	const size = 256 << 20
	data := randomBytes(5, size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		data[i] ^= 1 // new content each round
		art, err := a.CreateArtifact(ctx, admin, CreateInput{Name: "x", Size: size}, bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if i > 0 {
			inv, _ = a.CreateInvite(ctx, admin, 600)
			ticket, _ = repo.ParseTicket(inv.Ticket)
		}
		repoB := b.TempDir()
		if err := repo.Init(ctx, repoB, repo.InitOptions{Listen: testListen, Join: ticket}); err != nil {
			b.Fatal(err)
		}
		bn, err := Open(ctx, Config{Repo: repoB, Listen: testListen, Logger: quiet, GCDelay: -1})
		if err != nil {
			b.Fatal(err)
		}
		if err := bn.Consistent(ctx); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		b.StartTimer()
		if fetchOnly {
			root, _ := cid.Decode(art.CID)
			fe := bn.fetcher.Ensure(root)
			<-fe.Done()
			if fe.Err() != nil {
				b.Fatal(fe.Err())
			}
		} else {
			c, err := bn.OpenContent(ctx, admin, art.ID, 0)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, c.Reader)
			if err != nil || n != size {
				b.Fatalf("read %d: %v", n, err)
			}
		}
		b.StopTimer()
		if err := a.RemoveMember(ctx, admin, bn.peerID.String()); err != nil {
			b.Fatal(err)
		}
		bn.Close()
	}
}

// BenchmarkFetchTwoHolders measures the fetch alone on one node of content
// that two other nodes, in the same process, hold.
func BenchmarkFetchTwoHolders(b *testing.B) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	join := func(inviter *Node, admin artmesh.Agent) *Node {
		inv, err := inviter.CreateInvite(ctx, admin, 600)
		if err != nil {
			b.Fatal(err)
		}
		ticket, err := repo.ParseTicket(inv.Ticket)
		if err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		if err := repo.Init(ctx, dir, repo.InitOptions{Listen: testListen, Join: ticket}); err != nil {
			b.Fatal(err)
		}
		n, err := Open(ctx, Config{Repo: dir, Listen: testListen, Logger: quiet, GCDelay: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close() })
		if err := n.Consistent(ctx); err != nil {
			b.Fatal(err)
		}
		return n
	}
	a, admin := openTestNode(b, Config{GCDelay: -1, Logger: quiet})
	c := join(a, admin)
	const size = 256 << 20
	data := randomBytes(6, size)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		data[i] ^= 1
		var root cid.Cid
		for _, h := range []*Node{a, c} {
			im, err := h.content.Import(ctx, bytes.NewReader(data), -1, "")
			if err != nil {
				b.Fatal(err)
			}
			defer im.Release()
			if err := h.cat.AddHolder(ctx, im.CID.String(), h.peerID.String()); err != nil {
				b.Fatal(err)
			}
			root = im.CID
		}
		bn := join(a, admin)
		b.SetBytes(size)
		b.StartTimer()
		fe := bn.fetcher.Ensure(root)
		<-fe.Done()
		if fe.Err() != nil {
			b.Fatal(fe.Err())
		}
		b.StopTimer()
		if err := a.RemoveMember(ctx, admin, bn.peerID.String()); err != nil {
			b.Fatal(err)
		}
		bn.Close()
	}
}
