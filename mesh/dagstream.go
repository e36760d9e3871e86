package mesh

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// DAGProtocol streams a whole DAG from a node that holds it: the
// requester sends a root CID, the holder answers with every block of the
// DAG in depth-first order (for a UnixFS file, the leaves come in file
// order), each as a frame: the CID's length and bytes, then the data's
// length and bytes; a frame with an empty CID ends the stream, and one
// whose CID length is 1 carries an error text. One request moves a whole
// file at the speed of one stream, where a want-list exchange (bitswap)
// pays a round trip per batch of blocks.
const DAGProtocol protocol.ID = "/artmesh/dag/1.0.0"

// maxBlock bounds one block of a DAG stream.
const maxBlock = 2 << 20

// ErrCorruptBlock is returned when a peer sends a block whose bytes do not
// hash to its CID, or a block that is not part of the DAG asked for.
var ErrCorruptBlock = errors.New("mesh: a peer sent a block that does not match its CID")

// BlockGetter reads a block from the local store.
type BlockGetter func(ctx context.Context, c cid.Cid) ([]byte, error)

// DAGsProtocol streams several subtrees of a DAG in one request, or only
// its inner nodes: what a fetch that splits a large DAG across holders
// asks each of them for. The request is one message: flags (a uvarint,
// see SkipRaw), the number of roots (a uvarint) and each root CID as a
// uvarint length and its bytes. The answer is the frames of DAGProtocol,
// for each root in turn.
const DAGsProtocol protocol.ID = "/artmesh/dags/1.0.0"

// SkipRaw asks a DAGsProtocol holder for the dag-pb nodes only: the raw
// leaves under them are left out (each root is sent whatever its codec).
// That skeleton names every leaf of a UnixFS file, in file order.
const SkipRaw uint64 = 1

// HaveProtocol asks a member that is fetching a DAG which of its leaves
// it has verified: the request is the root CID, the answer the node's
// exchange encodes (see node/exchange).
const HaveProtocol protocol.ID = "/artmesh/have/1.0.0"

// maxRoots bounds the roots of one DAGsProtocol request.
const maxRoots = 1024

// ServeDAG answers DAG requests (DAGProtocol and DAGsProtocol) from the
// local store. tamper, when not nil, may alter each block's bytes before
// they are sent: it exists for tests that prove receivers reject corrupt
// data, and is nil otherwise.
func ServeDAG(h host.Host, get BlockGetter, tamper func([]byte) []byte) {
	h.SetStreamHandler(DAGProtocol, func(st network.Stream) {
		serveDAGs(st, get, tamper, func(req []byte) ([]cid.Cid, uint64, error) {
			root, err := cid.Cast(req)
			return []cid.Cid{root}, 0, err
		})
	})
	h.SetStreamHandler(DAGsProtocol, func(st network.Stream) {
		serveDAGs(st, get, tamper, decodeDAGsRequest)
	})
}

func serveDAGs(st network.Stream, get BlockGetter, tamper func([]byte) []byte, parse func([]byte) ([]cid.Cid, uint64, error)) {
	defer st.Close()
	_ = st.SetReadDeadline(time.Now().Add(rpcTimeout))
	req, err := readMessage(bufio.NewReader(st), maxMessage)
	if err != nil {
		st.Reset()
		return
	}
	roots, flags, err := parse(req)
	if err != nil {
		writeErrorFrame(st, "bad DAG request: "+err.Error())
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A small write buffer: a block's bytes go to the stream without a
	// copy into it; only frame headers are buffered.
	w := bufio.NewWriterSize(st, 16<<10)
	for _, root := range roots {
		err = walk(ctx, root, flags&SkipRaw != 0, get, func(c cid.Cid, data []byte) error {
			_ = st.SetWriteDeadline(time.Now().Add(rpcTimeout))
			if tamper != nil {
				data = tamper(append([]byte(nil), data...))
			}
			return writeFrame(w, c.Bytes(), data)
		})
		if err != nil {
			writeErrorFrame(w, err.Error())
			w.Flush()
			return
		}
	}
	if err := writeFrame(w, nil, nil); err != nil {
		st.Reset()
		return
	}
	if err := w.Flush(); err != nil {
		st.Reset()
	}
}

// encodeDAGsRequest is the request message of DAGsProtocol.
func encodeDAGsRequest(roots []cid.Cid, flags uint64) []byte {
	b := binary.AppendUvarint(nil, flags)
	b = binary.AppendUvarint(b, uint64(len(roots)))
	for _, c := range roots {
		cb := c.Bytes()
		b = binary.AppendUvarint(b, uint64(len(cb)))
		b = append(b, cb...)
	}
	return b
}

func decodeDAGsRequest(req []byte) ([]cid.Cid, uint64, error) {
	flags, n := binary.Uvarint(req)
	if n <= 0 {
		return nil, 0, errors.New("no flags")
	}
	req = req[n:]
	count, n := binary.Uvarint(req)
	if n <= 0 || count == 0 || count > maxRoots {
		return nil, 0, fmt.Errorf("from 1 to %d roots are asked for at once", maxRoots)
	}
	req = req[n:]
	roots := make([]cid.Cid, 0, count)
	for range count {
		l, n := binary.Uvarint(req)
		if n <= 0 || l == 0 || l > 256 || uint64(len(req)-n) < l {
			return nil, 0, errors.New("a root CID is cut off")
		}
		c, err := cid.Cast(req[n : n+int(l)])
		if err != nil {
			return nil, 0, err
		}
		roots = append(roots, c)
		req = req[n+int(l):]
	}
	if len(req) != 0 {
		return nil, 0, errors.New("bytes after the last root")
	}
	return roots, flags, nil
}

// walk visits the DAG under c depth first, parents before children;
// with skipRaw, raw children are left out.
func walk(ctx context.Context, c cid.Cid, skipRaw bool, get BlockGetter, visit func(cid.Cid, []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := get(ctx, c)
	if err != nil {
		return fmt.Errorf("block %s: %w", c, err)
	}
	if err := visit(c, data); err != nil {
		return err
	}
	links, err := linksOf(c, data)
	if err != nil {
		return err
	}
	for _, l := range links {
		if skipRaw && l.Prefix().Codec == cid.Raw {
			continue
		}
		if err := walk(ctx, l, skipRaw, get, visit); err != nil {
			return err
		}
	}
	return nil
}

// LinksOf returns the children of a verified block: none for a raw leaf,
// the links of a dag-pb node.
func LinksOf(c cid.Cid, data []byte) ([]cid.Cid, error) { return linksOf(c, data) }

// linksOf returns the children of a block: none for raw leaves, the links
// of a dag-pb node.
func linksOf(c cid.Cid, data []byte) ([]cid.Cid, error) {
	switch c.Prefix().Codec {
	case cid.Raw:
		return nil, nil
	case cid.DagProtobuf:
		b, err := blocks.NewBlockWithCid(data, c)
		if err != nil {
			return nil, err
		}
		n, err := merkledag.DecodeProtobufBlock(b)
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", c, err)
		}
		out := make([]cid.Cid, 0, len(n.Links()))
		for _, l := range n.Links() {
			out = append(out, l.Cid)
		}
		return out, nil
	}
	return nil, fmt.Errorf("block %s has codec %d, which a DAG stream does not carry", c, c.Prefix().Codec)
}

func writeFrame(w io.Writer, c, data []byte) error {
	var hdr [2 * binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(c)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	if len(c) == 0 {
		return nil
	}
	if _, err := w.Write(c); err != nil {
		return err
	}
	n = binary.PutUvarint(hdr[:], uint64(len(data)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

func writeErrorFrame(w io.Writer, msg string) {
	_ = writeFrame(w, []byte{0}, []byte(msg))
}

// FetchDAG asks peer p for the DAG under root and calls put for every
// block, in depth-first order, after checking that the block belongs to
// the DAG and that its bytes hash to its CID. A mismatch ends the fetch
// with ErrCorruptBlock; nothing unverified reaches put.
func FetchDAG(ctx context.Context, h host.Host, p peer.ID, root cid.Cid, put func(cid.Cid, []byte) error) error {
	return FetchDAGInto(ctx, h, p, root, func(n int) []byte { return make([]byte, n) }, put)
}

// FetchDAGInto is FetchDAG with each block read into a buffer from alloc,
// which put then owns (to hand back to a pool once stored).
func FetchDAGInto(ctx context.Context, h host.Host, p peer.ID, root cid.Cid, alloc func(n int) []byte, put func(cid.Cid, []byte) error) error {
	return fetchDAGs(ctx, h, p, DAGProtocol, root.Bytes(), []cid.Cid{root}, 0, alloc, put)
}

// FetchDAGs asks peer p for the DAGs under roots, one after the other,
// (with SkipRaw in flags: their dag-pb nodes only) and calls put for
// every block, verified as FetchDAG does; blocks are read into buffers
// from alloc, which put then owns.
func FetchDAGs(ctx context.Context, h host.Host, p peer.ID, roots []cid.Cid, flags uint64, alloc func(n int) []byte, put func(cid.Cid, []byte) error) error {
	if len(roots) == 0 || len(roots) > maxRoots {
		return fmt.Errorf("mesh: a DAG request asks for 1 to %d roots, not %d", maxRoots, len(roots))
	}
	return fetchDAGs(ctx, h, p, DAGsProtocol, encodeDAGsRequest(roots, flags), roots, flags, alloc, put)
}

func fetchDAGs(ctx context.Context, h host.Host, p peer.ID, proto protocol.ID, req []byte, roots []cid.Cid, flags uint64, alloc func(n int) []byte, put func(cid.Cid, []byte) error) error {
	st, err := openStream(ctx, h, p, proto)
	if err != nil {
		return fmt.Errorf("mesh: open a DAG stream to %s: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if err := writeMessage(st, req); err != nil {
		st.Reset()
		return fmt.Errorf("mesh: DAG request to %s: %w", p, err)
	}
	if err := st.CloseWrite(); err != nil {
		st.Reset()
		return fmt.Errorf("mesh: DAG request to %s: %w", p, err)
	}
	// A small read buffer: a block's bytes are read straight into their
	// own buffer, not copied through the reader's.
	r := bufio.NewReaderSize(st, readChunk)
	scratch := make([]byte, readChunk)
	// expected holds the blocks the DAGs still owe, in the order a
	// depth-first walk sends them: a stack.
	expected := make([]cid.Cid, 0, len(roots))
	for i := len(roots) - 1; i >= 0; i-- {
		expected = append(expected, roots[i])
	}
	for {
		_ = st.SetReadDeadline(time.Now().Add(rpcTimeout))
		clen, err := binary.ReadUvarint(r)
		if err != nil {
			st.Reset()
			return fmt.Errorf("mesh: DAG stream from %s: %w", p, noEOFErr(err))
		}
		if clen == 0 {
			break
		}
		if clen > 256 {
			st.Reset()
			return ErrCorruptBlock
		}
		cb := make([]byte, clen)
		if _, err := io.ReadFull(r, cb); err != nil {
			st.Reset()
			return fmt.Errorf("mesh: DAG stream from %s: %w", p, noEOFErr(err))
		}
		dlen, err := binary.ReadUvarint(r)
		if err != nil || dlen > maxBlock {
			st.Reset()
			return fmt.Errorf("mesh: DAG stream from %s: bad block length", p)
		}
		data, err := readBlock(r, int(dlen), scratch, alloc)
		if err != nil {
			st.Reset()
			return fmt.Errorf("mesh: DAG stream from %s: %w", p, err)
		}
		if clen == 1 && cb[0] == 0 {
			st.Reset()
			return &RemoteError{Peer: p, Message: string(data)}
		}
		c, err := cid.Cast(cb)
		if err != nil || len(expected) == 0 || !c.Equals(expected[len(expected)-1]) {
			st.Reset()
			return ErrCorruptBlock
		}
		expected = expected[:len(expected)-1]
		if err := verify(c, data); err != nil {
			st.Reset()
			return err
		}
		links, err := linksOf(c, data)
		if err != nil {
			st.Reset()
			return ErrCorruptBlock
		}
		for i := len(links) - 1; i >= 0; i-- {
			if flags&SkipRaw != 0 && links[i].Prefix().Codec == cid.Raw {
				continue
			}
			expected = append(expected, links[i])
		}
		if err := put(c, data); err != nil {
			st.Reset()
			return err
		}
	}
	st.Close()
	if len(expected) != 0 {
		return fmt.Errorf("mesh: %s ended the DAG stream with %d blocks missing", p, len(expected))
	}
	return nil
}

// readBlock reads a block of n bytes into a buffer from alloc, which it
// takes only once the block's first len(scratch) bytes have arrived (all
// of it, for a smaller block): a holder that announces a large block and
// sends little makes the fetcher take no block buffer, and at worst one
// of n bytes for every len(scratch) it sent. The first bytes are read
// into scratch and copied; the rest go straight into the buffer.
func readBlock(r io.Reader, n int, scratch []byte, alloc func(n int) []byte) ([]byte, error) {
	if n <= len(scratch) {
		if _, err := io.ReadFull(r, scratch[:n]); err != nil {
			return nil, noEOFErr(err)
		}
		data := alloc(n)
		copy(data, scratch[:n])
		return data, nil
	}
	if _, err := io.ReadFull(r, scratch); err != nil {
		return nil, noEOFErr(err)
	}
	data := alloc(n)
	copy(data, scratch)
	if _, err := io.ReadFull(r, data[len(scratch):]); err != nil {
		return nil, noEOFErr(err)
	}
	return data, nil
}

// verify checks that data hashes to c. It is the one gate through which
// blocks from peers enter a node.
func verify(c cid.Cid, data []byte) error {
	got, err := c.Prefix().Sum(data)
	if err != nil || !got.Equals(c) {
		return ErrCorruptBlock
	}
	return nil
}

func noEOFErr(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
