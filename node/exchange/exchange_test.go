package exchange

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/blockstore"
)

func newTestExchange(t *testing.T, holders func(string) ([]string, error)) (*Exchange, *blockstore.Store) {
	t.Helper()
	bs, err := blockstore.Open(t.TempDir(), blockstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	return newExchangeOver(t, bs, holders, nil), bs
}

// newExchangeOver starts an exchange over bs on a new host of its own.
func newExchangeOver(t *testing.T, bs *blockstore.Store, holders, fetchers func(string) ([]string, error)) *Exchange {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mesh.DefaultConfig()
	cfg.Identity, cfg.Listen = priv, []string{"/ip4/127.0.0.1/tcp/0"}
	h, err := mesh.NewHost(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	self, _ := peer.IDFromPrivateKey(priv)
	x := New(Config{Self: self, Host: h, Store: bs, Holders: holders, Fetchers: fetchers, BitswapRootTimeout: time.Second, Log: testLog(t)})
	t.Cleanup(func() { x.Shutdown() })
	return x
}

// TestFetchWithoutHolders: a DAG nobody holds ends in Unavailable at once
// (no peer to ask), and a reader of a block no fetch brings is told it is
// not found rather than left waiting.
func TestFetchWithoutHolders(t *testing.T) {
	x, _ := newTestExchange(t, func(string) ([]string, error) { return nil, nil })
	blk := blocks.NewBlock([]byte("nobody has this"))
	fe := x.Ensure(blk.Cid())
	select {
	case <-fe.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a fetch with no holder and no peer did not end")
	}
	if artmesh.KindOf(fe.Err()) != artmesh.Unavailable {
		t.Fatalf("fetch error %v, want Unavailable", fe.Err())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := x.GetBlock(ctx, blk.Cid()); !ipld.IsNotFound(err) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetBlock of a block nobody brings: %v, want not found at once", err)
	}
}

// TestGetBlockServesStored: a block in the store is served without a
// fetch.
func TestGetBlockServesStored(t *testing.T) {
	x, bs := newTestExchange(t, func(string) ([]string, error) { return nil, nil })
	blk := blocks.NewBlock([]byte("here already"))
	if err := bs.Put(context.Background(), blk); err != nil {
		t.Fatal(err)
	}
	got, err := x.GetBlock(context.Background(), blk.Cid())
	if err != nil || string(got.RawData()) != "here already" {
		t.Fatalf("GetBlock: %v %q", err, got)
	}
}

// TestBitswapStallEnds: a bitswap fetch whose root comes but whose other
// blocks never do ends once nothing came for the stall time, instead of
// holding every waiting reader for half an hour.
func TestBitswapStallEnds(t *testing.T) {
	a, aStore := newTestExchange(t, func(string) ([]string, error) { return nil, nil })
	b, _ := newTestExchange(t, func(string) ([]string, error) { return nil, nil })
	missing := blocks.NewBlock([]byte("a child nobody has"))
	root := merkledag.NodeWithData([]byte{0x08, 0x02})
	if err := root.AddRawLink("child", &ipld.Link{Cid: missing.Cid(), Size: 18}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := aStore.Put(ctx, root); err != nil {
		t.Fatal(err)
	}
	if err := b.cfg.Host.Connect(ctx, peer.AddrInfo{ID: a.cfg.Host.ID(), Addrs: a.cfg.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := b.fetchBitswap(ctx, root.Cid(), time.Second)
	if took := time.Since(start); err == nil || took > 10*time.Second {
		t.Fatalf("a fetch that stalls after its root: %v after %s, want an error within seconds", err, took)
	}
	if artmesh.KindOf(err) != artmesh.Unavailable {
		t.Fatalf("stalled fetch: %v, want Unavailable", err)
	}
}

func testLog(t *testing.T) *slog.Logger {
	if os.Getenv("EXCHANGE_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestOnFetchEndTellsSourceAndResult: a fetch from a holder ends as
// stream/ok, and one that nobody can serve (no holder, no peer, so
// bitswap is not asked) as stream/error.
func TestOnFetchEndTellsSourceAndResult(t *testing.T) {
	var mu sync.Mutex
	var got []string
	record := func(source, result string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, source+"/"+result)
	}
	lone, _ := newTestExchange(t, func(string) ([]string, error) { return nil, nil })
	lone.cfg.OnFetchEnd = record // before any fetch starts
	waitDone(t, lone.Ensure(blocks.NewBlock([]byte("nobody has this")).Cid()))

	var holders holderList
	holder, store := newTestExchange(t, (&holderList{}).get)
	root, _ := testFile(t, store, 1<<20, 3)
	serve(holder, store, nil, false)
	x, _ := newTestExchange(t, holders.get)
	x.cfg.OnFetchEnd = record
	holders.set(holder)
	connect(t, x, holder)
	waitFetch(t, x.Ensure(root), 30*time.Second)

	mu.Lock()
	defer mu.Unlock()
	if want := []string{"stream/error", "stream/ok"}; !slices.Equal(got, want) {
		t.Fatalf("OnFetchEnd told %v, want %v", got, want)
	}
}

func waitDone(t *testing.T, fe *Fetch) {
	t.Helper()
	select {
	case <-fe.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the fetch did not end")
	}
}
