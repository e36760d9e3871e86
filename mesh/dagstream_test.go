package mesh

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
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

// TestFetchDAGs: the skeleton request brings exactly the dag-pb nodes,
// which name every leaf; a request for several leaves brings exactly
// those, in order; requests that are malformed get an error, not blocks.
func TestFetchDAGs(t *testing.T) {
	key := NewKey()
	a, b := newTestHost(t, key), newTestHost(t, key)
	b.Peerstore().AddAddrs(a.ID(), a.Addrs(), time.Hour)
	srcBS, srcDAG := memDAG()
	data := make([]byte, 1<<20+77)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	root := importFile(t, srcDAG, data)
	ServeDAG(a, func(ctx context.Context, c cid.Cid) ([]byte, error) {
		blk, err := srcBS.Get(ctx, c)
		if err != nil {
			return nil, err
		}
		return blk.RawData(), nil
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alloc := func(n int) []byte { return make([]byte, n) }

	var inner, leaves []cid.Cid
	err := FetchDAGs(ctx, b, a.ID(), []cid.Cid{root}, SkipRaw, alloc, func(c cid.Cid, d []byte) error {
		if c.Prefix().Codec != cid.DagProtobuf {
			t.Fatalf("the skeleton carried a %d block", c.Prefix().Codec)
		}
		inner = append(inner, c)
		links, err := LinksOf(c, d)
		if err != nil {
			return err
		}
		for _, l := range links {
			if l.Prefix().Codec == cid.Raw {
				leaves = append(leaves, l)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// 16 KiB leaves, 8 links a node: 65 leaves under 9+2+1 inner nodes.
	if len(leaves) != 65 || len(inner) != 12 {
		t.Fatalf("skeleton: %d inner nodes naming %d leaves, want 12 and 65", len(inner), len(leaves))
	}

	want := []cid.Cid{leaves[64], leaves[3], leaves[4]}
	var got []cid.Cid
	var joined []byte
	err = FetchDAGs(ctx, b, a.ID(), want, 0, alloc, func(c cid.Cid, d []byte) error {
		got = append(got, c)
		joined = append(joined, d...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantBytes := append(append(append([]byte(nil), data[64<<14:]...), data[3<<14:4<<14]...), data[4<<14:5<<14]...)
	if len(got) != 3 || !got[0].Equals(want[0]) || !got[1].Equals(want[1]) || !got[2].Equals(want[2]) || !bytes.Equal(joined, wantBytes) {
		t.Fatalf("leaves %v (%d bytes), want %v", got, len(joined), want)
	}

	for _, tc := range []struct {
		name string
		req  []byte
	}{
		{"no roots", encodeDAGsRequest(nil, 0)},
		{"cut-off CID", encodeDAGsRequest([]cid.Cid{root}, 0)[:10]},
		{"trailing bytes", append(encodeDAGsRequest([]cid.Cid{root}, 0), 1)},
		{"too many roots", encodeDAGsRequest(make([]cid.Cid, maxRoots+1), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := fetchDAGs(ctx, b, a.ID(), DAGsProtocol, tc.req, []cid.Cid{root}, 0, alloc, func(cid.Cid, []byte) error {
				t.Fatal("a malformed request was answered with a block")
				return nil
			})
			var re *RemoteError
			if !errors.As(err, &re) || !strings.Contains(re.Message, "bad DAG request") {
				t.Fatalf("malformed request: %v, want a remote bad DAG request error", err)
			}
		})
	}
	if err := FetchDAGs(ctx, b, a.ID(), nil, 0, alloc, nil); err == nil {
		t.Fatal("a request for no roots was sent")
	}
}
