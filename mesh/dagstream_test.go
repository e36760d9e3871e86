package mesh

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	bstore "github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

func memDAG() (bstore.Blockstore, ipld.DAGService) {
	bs := bstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	return bs, merkledag.NewDAGService(blockservice.New(bs, nil))
}

// importFile builds a UnixFS DAG of data with small fixed chunks, so that
// it has several levels.
func importFile(t *testing.T, dag ipld.DAGService, data []byte) cid.Cid {
	t.Helper()
	db, err := (&helpers.DagBuilderParams{
		Dagserv: dag, Maxlinks: 8, RawLeaves: true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256},
	}).New(chunker.NewSizeSplitter(bytes.NewReader(data), 16<<10))
	if err != nil {
		t.Fatal(err)
	}
	n, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	return n.Cid()
}

func TestFetchDAG(t *testing.T) {
	key := NewKey()
	a, b := newTestHost(t, key), newTestHost(t, key)
	b.Peerstore().AddAddrs(a.ID(), a.Addrs(), time.Hour)
	srcBS, srcDAG := memDAG()
	data := make([]byte, 1<<20+123)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	root := importFile(t, srcDAG, data)
	get := func(ctx context.Context, c cid.Cid) ([]byte, error) {
		blk, err := srcBS.Get(ctx, c)
		if err != nil {
			return nil, err
		}
		return blk.RawData(), nil
	}
	var mu sync.Mutex
	tampering := false
	ServeDAG(a, get, func(b []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if tampering && len(b) > 100 {
			b[50] ^= 0xff
		}
		return b
	})

	dstBS, dstDAG := memDAG()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := 0
	err := FetchDAG(ctx, b, a.ID(), root, func(c cid.Cid, d []byte) error {
		n++
		blk, _ := blocks.NewBlockWithCid(d, c)
		return dstBS.Put(ctx, blk)
	})
	if err != nil {
		t.Fatal(err)
	}
	node, err := dstDAG.Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := uio.NewDagReader(ctx, node, dstDAG)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rd)
	if !bytes.Equal(got, data) || n < 60 {
		t.Fatalf("fetched %d blocks, %d bytes; content equal: %v", n, len(got), bytes.Equal(got, data))
	}

	// A corrupting holder: nothing unverified is put, and the fetch fails
	// with ErrCorruptBlock.
	mu.Lock()
	tampering = true
	mu.Unlock()
	puts := 0
	err = FetchDAG(ctx, b, a.ID(), root, func(c cid.Cid, d []byte) error {
		if verify(c, d) != nil {
			t.Fatal("an unverified block was put")
		}
		puts++
		return nil
	})
	if !errors.Is(err, ErrCorruptBlock) {
		t.Fatalf("fetch from a corrupting peer: %v", err)
	}
	// A root the holder lacks is a remote error.
	missing, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte("nope"))
	var re *RemoteError
	if err := FetchDAG(ctx, b, a.ID(), missing, func(cid.Cid, []byte) error { return nil }); !errors.As(err, &re) {
		t.Fatalf("missing root: %v", err)
	}
}
