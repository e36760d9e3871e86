package exchange

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node/blockstore"
)

// dropPuts is a block store that keeps nothing new, as a full node reads.
type dropPuts struct{ *blockstore.Store }

func (dropPuts) Put(context.Context, blocks.Block) error       { return nil }
func (dropPuts) PutMany(context.Context, []blocks.Block) error { return nil }

// TestThroughReadsWithoutStoring: a file read through Through comes whole
// from a holder (after one on record that lacks it) and nothing of it is
// stored here; with no holder that has it, the read fails Unavailable.
func TestThroughReadsWithoutStoring(t *testing.T) {
	ctx := context.Background()
	var holders holderList
	good, gstore := newTestExchange(t, (&holderList{}).get)
	lacking, lstore := newTestExchange(t, (&holderList{}).get)
	root, data := testFile(t, gstore, 4<<20, 3)
	serve(good, gstore, nil, false)
	serve(lacking, lstore, nil, false)
	x, bs := newTestExchange(t, holders.get)
	holders.set(lacking, good)
	connect(t, x, good, lacking)

	dag := merkledag.NewDAGService(blockservice.New(dropPuts{bs}, x.Through(root)))
	nd, err := dag.Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := uio.NewDagReader(ctx, nd, dag)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes through, not the %d imported", len(got), len(data))
	}
	st, err := bs.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Blocks != 0 || st.PackBytes != 0 {
		t.Fatalf("reading through stored %d blocks (%d bytes)", st.Blocks, st.PackBytes)
	}

	holders.set(lacking)
	if _, err := x.Through(root).GetBlock(ctx, root); artmesh.KindOf(err) != artmesh.Unavailable {
		t.Fatalf("GetBlock with no holder that has it: %v, want Unavailable", err)
	}
}
