// Package content turns byte streams into CID-addressed UnixFS DAGs in the
// block store and back: chunking (buzhash with boxo's boundaries, or
// fixed-size), a pipelined import that makes its blocks durable, seekable
// export, and walks of a DAG for the collector and for completeness
// checks. It knows nothing of artifacts, the catalog or the mesh; blocks it
// lacks come through the exchange it is given.
package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/boxo/blockservice"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node/blockstore"
)

// Chunking names how content is cut into blocks: "buzhash" (content
// defined, the default: a small change to a large file changes few blocks)
// or "size-N" (fixed blocks of N bytes, 1 KiB to 1 MiB).
type Chunking string

// DefaultChunking is content-defined chunking with boxo's buzhash (blocks of
// 128 KiB to 512 KiB, about 256 KiB on average).
const DefaultChunking Chunking = "buzhash"

// validate checks the chunking's name.
func (c Chunking) Validate() error {
	if c == "" || c == "buzhash" {
		return nil
	}
	if n, ok := strings.CutPrefix(string(c), "size-"); ok {
		size, err := strconv.Atoi(n)
		if err == nil && size >= 1<<10 && size <= 1<<20 {
			return nil
		}
	}
	return artmesh.E(artmesh.Invalid, fmt.Sprintf("chunking %q: use \"buzhash\" or \"size-N\" with N from 1024 to 1048576", string(c)))
}

func (c Chunking) splitter(r io.Reader, pool *chunkPool) chunker.Splitter {
	if n, ok := strings.CutPrefix(string(c), "size-"); ok {
		size, _ := strconv.Atoi(n)
		return chunker.NewSizeSplitter(r, int64(size))
	}
	return newBuzhash(r, pool)
}

// Store turns byte streams into UnixFS DAGs in the block store and
// back.
type Store struct {
	bs *blockstore.Store
	// dag reads through the exchange: blocks missing here are waited for
	// from a running fetch. local reads this node's store only.
	dag      ipld.DAGService
	local    ipld.DAGService
	chunking Chunking
	chunks   *chunkPool
}

// New returns the content store over bs; ex, when not nil,
// brings blocks this node lacks.
func New(bs *blockstore.Store, chunking Chunking, ex exchange.Interface) *Store {
	local := merkledag.NewDAGService(blockservice.New(bs, nil, blockservice.WriteThrough(true)))
	dag := local
	if ex != nil {
		dag = merkledag.NewDAGService(blockservice.New(bs, ex, blockservice.WriteThrough(true)))
	}
	return &Store{bs: bs, dag: dag, local: local, chunking: chunking, chunks: newChunkPool()}
}

// cidBuilder makes CIDv1 sha2-256 dag-pb nodes; leaves are raw.
var cidBuilder = cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}

// Imported is the result of an import. Its session keeps the blocks from
// the collector until Release, which is called once the catalog references
// the root or the import is abandoned.
type Imported struct {
	CID  cid.Cid
	Size int64
	sess *blockstore.Session
}

// Release ends the import's protection against garbage collection.
func (im *Imported) Release() {
	if im != nil && im.sess != nil {
		im.sess.Close()
	}
}

// errSizeLimit is returned by a limited reader when the content is larger
// than allowed.
var errSizeLimit = errors.New("content larger than allowed")

// errTruncated replaces io.ErrUnexpectedEOF from a source (an HTTP body
// that ended before its length, or a chunked body cut off): boxo's
// chunkers take io.ErrUnexpectedEOF for a normal end, which would store
// the truncated content as if it were whole.
var errTruncated = errors.New("the content ended before it was complete")

// Import chunks r into a UnixFS file DAG, stores the blocks and makes them
// durable. limit caps the content's size (no cap when negative).
func (c *Store) Import(ctx context.Context, r io.Reader, limit int64, chunking Chunking) (*Imported, error) {
	return c.ImportTee(ctx, r, limit, chunking, nil)
}

// Tee sees every block of an import once it is stored, in the order they
// are written (leaves before their parents). It must call release exactly
// once when it no longer needs the block's bytes, which are then reused
// for a later chunk (also when it returns an error). An error from it ends
// the import with that error. It runs on the import's writer, so a slow
// tee slows the import down (that is the back-pressure a pushed copy
// needs).
type Tee func(b blocks.Block, release func()) error

// ImportTee is Import that also hands every stored block to tee (nil:
// none), so that copies can be pushed to other members while the import
// runs.
func (c *Store) ImportTee(ctx context.Context, r io.Reader, limit int64, chunking Chunking, tee Tee) (*Imported, error) {
	const op = artmesh.Op("node.Import")
	if chunking == "" {
		chunking = c.chunking
	}
	if err := chunking.Validate(); err != nil {
		return nil, err
	}
	sess := c.bs.NewSession()
	im := &Imported{sess: sess}
	cr := &countingReader{ctx: ctx, r: r, limit: limit}
	split := newSplitAhead(chunking.splitter(cr, c.chunks), cr)
	w := newAsyncWriter(ctx, sess, c.dag, c.chunks, tee)
	params := helpers.DagBuilderParams{
		Dagserv:    w,
		Maxlinks:   helpers.DefaultLinksPerBlock,
		RawLeaves:  true,
		CidBuilder: cidBuilder,
	}
	var root ipld.Node
	db, err := params.New(split)
	if err == nil {
		root, err = balanced.Layout(db)
	}
	split.Close(err != nil)
	if werr := w.Flush(); werr != nil && (err == nil || errors.Is(werr, artmesh.InsufficientStorage)) {
		// A full disk is why the import stopped, even when reading the
		// body (aborted because of it) failed first.
		err = werr
	}
	if err != nil {
		sess.Close()
		switch {
		case errors.Is(err, artmesh.InsufficientStorage):
			return nil, artmesh.E(op, err)
		case errors.Is(err, errSizeLimit):
			return nil, artmesh.E(op, artmesh.TooLarge, fmt.Sprintf("content is larger than the %d bytes allowed", limit))
		case ctx.Err() != nil:
			return nil, artmesh.E(op, artmesh.Invalid, "upload interrupted", ctx.Err())
		}
		return nil, artmesh.E(op, artmesh.Invalid, "reading content", err)
	}
	if err := c.bs.Sync(ctx); err != nil {
		sess.Close()
		if ctx.Err() != nil {
			return nil, artmesh.E(op, artmesh.Unavailable, "the request ended before its content was durable; nothing was recorded: send it again", ctx.Err())
		}
		return nil, artmesh.E(op, "making content durable", err)
	}
	im.CID = root.Cid()
	im.Size = cr.n
	return im, nil
}

// Open returns a seekable reader of the file whose root is root.
func (c *Store) Open(ctx context.Context, root cid.Cid) (uio.DagReader, error) {
	return c.open(ctx, root, c.dag, 0)
}

// OpenVia returns a seekable reader of the file whose root is root, whose
// blocks that are not here come through ex. The root block must arrive
// within first (0: no limit of its own): a read of content that nobody
// can serve fails then, with Unavailable, before anything was sent.
func (c *Store) OpenVia(ctx context.Context, root cid.Cid, ex exchange.Interface, first time.Duration) (uio.DagReader, error) {
	dag := merkledag.NewDAGService(blockservice.New(c.bs, ex, blockservice.WriteThrough(true)))
	return c.open(ctx, root, dag, first)
}

func (c *Store) open(ctx context.Context, root cid.Cid, dag ipld.DAGService, first time.Duration) (uio.DagReader, error) {
	gctx := ctx
	if first > 0 {
		var cancel context.CancelFunc
		gctx, cancel = context.WithTimeout(ctx, first)
		defer cancel()
	}
	n, err := dag.Get(gctx, root)
	if err != nil {
		switch {
		case ipld.IsNotFound(err):
			return nil, artmesh.E(artmesh.Unavailable, fmt.Sprintf("content %s is not in this node's store", root), err)
		case ctx.Err() == nil && gctx.Err() != nil:
			return nil, artmesh.E(artmesh.Unavailable, fmt.Sprintf("no member of the mesh served content %s within %s", root, first), err)
		}
		return nil, artmesh.E(artmesh.Op("node.Open"), err)
	}
	return uio.NewDagReader(ctx, n, dag)
}

// OpenThrough is Open for content read through ex without being stored:
// blocks found in the store are read from it; the others come from ex and
// are handed to the reader only. It is how a node whose disk is full
// serves content it does not hold. The root block must arrive within
// first (0: no limit of its own), as with OpenVia.
func (c *Store) OpenThrough(ctx context.Context, root cid.Cid, ex exchange.Interface, first time.Duration) (uio.DagReader, error) {
	dag := merkledag.NewDAGService(blockservice.New(noCache{c.bs}, ex))
	return c.open(ctx, root, dag, first)
}

// noCache is the block store with writes dropped: the block service
// stores what it fetches, and a read through must not.
type noCache struct{ *blockstore.Store }

// Put drops the block.
func (noCache) Put(context.Context, blocks.Block) error { return nil }

// PutMany drops the blocks.
func (noCache) PutMany(context.Context, []blocks.Block) error { return nil }

// Walk calls keep for every block of the DAG under root. Raw leaves are
// not read: their CIDs say they have no links.
func (c *Store) Walk(ctx context.Context, root cid.Cid, keep func(cid.Cid)) error {
	keep(root)
	if root.Prefix().Codec == cid.Raw {
		return nil
	}
	n, err := c.local.Get(ctx, root)
	if err != nil {
		if ipld.IsNotFound(err) {
			return nil // content not held here
		}
		return err
	}
	for _, l := range n.Links() {
		if err := c.Walk(ctx, l.Cid, keep); err != nil {
			return err
		}
	}
	return nil
}

// countingReader counts the bytes read, stops at a limit and at the end of
// its context.
type countingReader struct {
	ctx   context.Context
	r     io.Reader
	n     int64
	limit int64
}

// Abort passes an abort on to the source.
func (c *countingReader) Abort() {
	if a, ok := c.r.(Aborter); ok {
		a.Abort()
	}
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.limit >= 0 && c.n > c.limit {
		return n, errSizeLimit
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = errTruncated
	}
	return n, err
}

// Complete reports whether every block of the DAG under root is in the
// local store (a root block alone proves nothing).
func (c *Store) Complete(ctx context.Context, root cid.Cid) bool {
	return c.haveAll(ctx, root) == nil
}

// Missing reports whether a block of the DAG under root is certainly not
// in the local store: false when every block is here, and also when the
// store could not say (an I/O error is no proof that a copy is lost).
func (c *Store) Missing(ctx context.Context, root cid.Cid) bool {
	return errors.Is(c.haveAll(ctx, root), errMissing)
}

// errMissing is haveAll's error when a block is not in the local store.
var errMissing = errors.New("content: a block is not in the local store")

// haveAll walks the DAG under root in the local store: nil when every
// block is there, errMissing when one is not (or was quarantined as it
// was read), another error when the store could not say.
func (c *Store) haveAll(ctx context.Context, root cid.Cid) error {
	has, err := c.bs.Has(ctx, root)
	switch {
	case err != nil:
		return err
	case !has:
		return errMissing
	case root.Prefix().Codec == cid.Raw:
		return nil
	}
	nd, err := c.local.Get(ctx, root)
	switch {
	case ipld.IsNotFound(err):
		return errMissing
	case err != nil:
		return err
	}
	for _, l := range nd.Links() {
		if err := c.haveAll(ctx, l.Cid); err != nil {
			return err
		}
	}
	return nil
}
