package exchange

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
	"golang.org/x/time/rate"

	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/blockstore"
)

// testFile imports size pseudo-random bytes into bs as a UnixFS DAG of
// 64 KiB raw leaves and returns its root and bytes.
func testFile(t *testing.T, bs *blockstore.Store, size int, seed uint64) (cid.Cid, []byte) {
	t.Helper()
	data := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(data)
	dag := merkledag.NewDAGService(blockservice.New(bs, nil))
	db, err := (&helpers.DagBuilderParams{
		Dagserv: dag, Maxlinks: helpers.DefaultLinksPerBlock, RawLeaves: true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256},
	}).New(chunker.NewSizeSplitter(bytes.NewReader(data), 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	n, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	return n.Cid(), data
}

// readBack reads the file under root from bs alone.
func readBack(t *testing.T, bs *blockstore.Store, root cid.Cid) []byte {
	t.Helper()
	ctx := context.Background()
	dag := merkledag.NewDAGService(blockservice.New(bs, nil))
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
	return got
}

// served is what one test holder sent over DAG streams.
type served struct {
	bytes atomic.Int64
	mu    sync.Mutex
	times map[string][]time.Duration // when each block was served, since start
	start time.Time
}

// serve makes x's host answer DAG requests from its store, counting the
// bytes; limit, when not nil, paces them (a capped uplink); tamper, when
// set, corrupts every raw block.
func serve(x *Exchange, bs *blockstore.Store, limit *rate.Limiter, tamper bool) *served {
	s := &served{times: make(map[string][]time.Duration), start: time.Now()}
	var bad func([]byte) []byte
	if tamper {
		bad = func(b []byte) []byte {
			if len(b) > 1000 {
				b[500] ^= 0xff
			}
			return b
		}
	}
	mesh.ServeDAG(x.cfg.Host, func(ctx context.Context, c cid.Cid) ([]byte, error) {
		blk, err := bs.Get(ctx, c)
		if err != nil {
			return nil, err
		}
		if limit != nil {
			if err := limit.WaitN(ctx, len(blk.RawData())); err != nil {
				return nil, err
			}
		}
		s.bytes.Add(int64(len(blk.RawData())))
		s.mu.Lock()
		s.times[c.KeyString()] = append(s.times[c.KeyString()], time.Since(s.start))
		s.mu.Unlock()
		return blk.RawData(), nil
	}, bad)
	return s
}

func connect(t *testing.T, from *Exchange, to ...*Exchange) {
	t.Helper()
	for _, x := range to {
		if err := from.cfg.Host.Connect(context.Background(), peer.AddrInfo{ID: x.cfg.Host.ID(), Addrs: x.cfg.Host.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFetch(t *testing.T, fe *Fetch, within time.Duration) {
	t.Helper()
	select {
	case <-fe.Done():
	case <-time.After(within):
		t.Fatalf("the fetch did not end within %s", within)
	}
	if fe.Err() != nil {
		t.Fatalf("fetch: %v", fe.Err())
	}
}

// holderList is a Holders or Fetchers function whose answer a test sets.
type holderList struct {
	mu  sync.Mutex
	ids []string
}

func (h *holderList) set(xs ...*Exchange) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ids = h.ids[:0]
	for _, x := range xs {
		h.ids = append(h.ids, x.cfg.Self.String())
	}
}

func (h *holderList) get(string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ids), nil
}

// TestSplitAcrossHolders: a fetch takes leaves from every holder; a holder
// that sends corrupt blocks is disconnected and its leaves come from the
// others, and one that lacks the content costs nothing but a retry. The
// content arrives whole and verified.
func TestSplitAcrossHolders(t *testing.T) {
	var holders holderList
	good1, store1 := newTestExchange(t, (&holderList{}).get)
	good2, store2 := newTestExchange(t, (&holderList{}).get)
	corrupt, store3 := newTestExchange(t, (&holderList{}).get)
	// 512 leaves: eight batches, enough for every holder to get some.
	root, data := testFile(t, store1, 32<<20, 1)
	testFile(t, store2, 32<<20, 1)
	testFile(t, store3, 32<<20, 1)
	pace := func() *rate.Limiter { return rate.NewLimiter(rate.Limit(32<<20), 1<<20) }
	s1, s2 := serve(good1, store1, pace(), false), serve(good2, store2, pace(), false)
	serve(corrupt, store3, nil, true)
	x, bs := newTestExchange(t, holders.get)
	holders.set(good1, good2, corrupt)
	connect(t, x, good1, good2, corrupt)

	waitFetch(t, x.Ensure(root), 30*time.Second)
	if got := readBack(t, bs, root); !bytes.Equal(got, data) {
		t.Fatalf("fetched %d bytes, not the %d imported", len(got), len(data))
	}
	if s1.bytes.Load() < 1<<20 || s2.bytes.Load() < 1<<20 {
		t.Fatalf("holders served %d and %d bytes: the fetch did not use both", s1.bytes.Load(), s2.bytes.Load())
	}
	if x.cfg.Host.Network().Connectedness(corrupt.cfg.Host.ID()) == network.Connected {
		t.Fatal("the holder that sent corrupt blocks is still connected")
	}
}

// TestSplitHolderWithoutContent: a holder on record that lacks the DAG
// answers with an error, and the fetch finishes from the one that has
// it.
func TestSplitHolderWithoutContent(t *testing.T) {
	var holders holderList
	good, gstore := newTestExchange(t, (&holderList{}).get)
	lacking, lstore := newTestExchange(t, (&holderList{}).get)
	root, data := testFile(t, gstore, 4<<20, 2)
	serve(good, gstore, nil, false)
	serve(lacking, lstore, nil, false)
	x, bs := newTestExchange(t, holders.get)
	holders.set(lacking, good)
	connect(t, x, good, lacking)
	waitFetch(t, x.Ensure(root), 30*time.Second)
	if got := readBack(t, bs, root); !bytes.Equal(got, data) {
		t.Fatal("the fetched content differs")
	}
}

// TestFetchersShare: three nodes fetch one DAG at once from a source whose
// uplink is capped; each finds the others as fetchers and takes from them
// what they have, so the source sends the content about once instead of
// three times.
func TestFetchersShare(t *testing.T) {
	var holders, fetchers holderList
	src, sstore := newTestExchange(t, holders.get)
	const size = 32 << 20
	root, data := testFile(t, sstore, size, 3)
	// 32 MiB/s: about a second for one fetcher alone, three for three
	// that do not share.
	sent := serve(src, sstore, rate.NewLimiter(rate.Limit(32<<20), 256<<10), false)
	holders.set(src)
	var xs []*Exchange
	var stores []*blockstore.Store
	for range 3 {
		bs, err := blockstore.Open(t.TempDir(), blockstore.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bs.Close() })
		x := newExchangeOver(t, bs, holders.get, fetchers.get)
		serve(x, bs, nil, false)
		xs = append(xs, x)
		stores = append(stores, bs)
	}
	fetchers.set(xs...)
	for i, x := range xs {
		connect(t, x, src)
		connect(t, x, xs[i+1:]...)
	}
	start := time.Now()
	var fes []*Fetch
	for _, x := range xs {
		fes = append(fes, x.Ensure(root))
	}
	for _, fe := range fes {
		waitFetch(t, fe, 60*time.Second)
	}
	took := time.Since(start)
	for i, bs := range stores {
		if got := readBack(t, bs, root); !bytes.Equal(got, data) {
			t.Fatalf("fetcher %d has different content", i)
		}
	}
	if os.Getenv("EXCHANGE_DEBUG") != "" {
		for k, ts := range sent.times {
			if len(ts) > 1 {
				t.Logf("%x: %v", k[len(k)-3:], ts)
			}
		}
	}
	if n := sent.bytes.Load(); n > size*3/2 {
		t.Fatalf("the source sent %.2f x the content to 3 fetchers in %s: they did not share", float64(n)/size, took)
	}
	t.Logf("the source sent %.2f x the content; all three had it after %s", float64(sent.bytes.Load())/size, took)
}

// TestTakePolicy: which leaves a worker is given.
func TestTakePolicy(t *testing.T) {
	leaves := make([]cid.Cid, 200)
	for i := range leaves {
		leaves[i], _ = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte{byte(i), byte(i >> 8)})
	}
	bits := func(idx ...int) []byte {
		b := make([]byte, 25)
		for _, i := range idx {
			b[i/8] |= 1 << (i % 8)
		}
		return b
	}
	const me, them = peer.ID("me"), peer.ID("them")
	// firstOwned is the first n leaves from 0 that pass ok and that me
	// owns against them.
	firstOwned := func(n int, ok func(int) bool) []int {
		var out []int
		for i := 0; i < len(leaves) && len(out) < n; i++ {
			if ok(i) && rendezvous(me, leaves[i].KeyString()) > rendezvous(them, leaves[i].KeyString()) {
				out = append(out, i)
			}
		}
		return out
	}
	fresh := time.Now()
	for _, tc := range []struct {
		name    string
		stored  []int // leaves already here
		busy    []int // leaves in flight from another worker
		peer    *peerHave
		partial bool          // the worker is on the partial holder
		sole    bool          // the worker's holder is the only source
		idle    time.Duration // how long the worker found nothing
		want    []int
	}{
		{name: "alone, a full holder among others: in file order", want: seq(0, batchLeaves)},
		{name: "skips what is here", stored: []int{0, 1, 2}, want: seq(3, 3+batchLeaves)},
		{name: "the only holder, after a second: in file order, larger batches", sole: true, want: seq(0, soleLeaves)},
		{name: "a partial holder: only what it has", partial: true, peer: &peerHave{done: bits(5, 7, 30), at: fresh}, want: []int{5, 7, 30}},
		{name: "with another fetcher: the leaves this node owns, not what the other has or fetches, a few",
			peer: &peerHave{done: bits(0, 1, 2, 3), busy: bits(4, 5), at: fresh},
			want: firstOwned(sharedLeaves, func(i int) bool { return i > 5 })},
		{name: "a stale answer claims nothing, ownership still holds",
			peer: &peerHave{done: bits(0, 1, 2, 3), at: fresh.Add(-time.Minute)},
			want: firstOwned(sharedLeaves, func(int) bool { return true })},
		{name: "after ownerPatience, the other's leaves too",
			stored: firstOwned(len(leaves), func(int) bool { return true }),
			peer:   &peerHave{done: bits(0, 1), at: fresh}, idle: 2 * ownerPatience,
			want: func() []int {
				mine := firstOwned(len(leaves), func(int) bool { return true })
				var out []int
				for i := 2; len(out) < sharedLeaves; i++ {
					if !slices.Contains(mine, i) {
						out = append(out, i)
					}
				}
				return out
			}()},
		{name: "endgame: leaves in flight elsewhere, a few", stored: seq(0, 190), busy: seq(190, 200), want: seq(190, 190+endgameLeaves)},
		{name: "nothing left", stored: seq(0, 200), want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stored := make(map[string]bool)
			for _, i := range tc.stored {
				stored[leaves[i].KeyString()] = true
			}
			pl := newPlan(leaves[0], leaves, func(c cid.Cid) bool { return stored[c.KeyString()] })
			sf := &splitFetch{self: me, pl: pl, workers: make(map[peer.ID]*source)}
			other := &source{id: "full", fetching: map[int]bool{}}
			if !tc.sole {
				sf.workers[other.id] = other
			}
			for _, i := range tc.busy {
				pl.busy[i]++
				pl.since[i] = time.Now().Add(-2 * endgameAfter)
				pl.todo--
				other.fetching[i] = true
			}
			if tc.peer != nil {
				sf.workers[them] = &source{id: them, partial: true, have: *tc.peer, live: 1, fetching: map[int]bool{}}
			}
			s := &source{id: "holder", fetching: map[int]bool{}}
			sf.workers[s.id] = s
			if tc.sole {
				sf.started = time.Now().Add(-2 * soleAfter)
			}
			if tc.partial {
				s = sf.workers[them]
			}
			if tc.idle > 0 {
				s.idleSince = time.Now().Add(-tc.idle)
			}
			got := sf.take(s)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("took %v, want %v", got, tc.want)
			}
			for _, i := range got {
				if pl.busy[i] == 0 || !s.fetching[i] {
					t.Fatalf("leaf %d was given out but not marked in flight", i)
				}
			}
		})
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// TestHaveEncoding: what a fetcher says it has reads back as said, and an
// answer about another number of leaves is refused.
func TestHaveEncoding(t *testing.T) {
	leaves := make([]cid.Cid, 20)
	for i := range leaves {
		leaves[i], _ = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte{byte(i), 1})
	}
	pl := newPlan(leaves[0], leaves, func(cid.Cid) bool { return false })
	pl.stored(3, 1)
	pl.stored(17, 1)
	pl.busy[9]++
	h, err := decodeHave(pl.have(), len(leaves))
	if err != nil {
		t.Fatal(err)
	}
	for i := range leaves {
		if bit(h.done, i) != (i == 3 || i == 17) || bit(h.busy, i) != (i == 9) {
			t.Fatalf("leaf %d: done %v busy %v", i, bit(h.done, i), bit(h.busy, i))
		}
	}
	if _, err := decodeHave(pl.have(), len(leaves)+1); err == nil {
		t.Fatal("an answer about 20 leaves was taken for 21")
	}
	for _, b := range [][]byte{nil, {9}, {haveSome}, {haveSome, 20, 0}} {
		if _, err := decodeHave(b, 20); err == nil {
			t.Fatalf("answer %v was accepted", b)
		}
	}
	if h, err := decodeHave([]byte{haveComplete}, 20); err != nil || !h.complete {
		t.Fatalf("complete answer: %+v %v", h, err)
	}
}
