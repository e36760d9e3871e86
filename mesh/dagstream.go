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

// ServeDAG answers DAG requests from the local store. tamper, when not
// nil, may alter each block's bytes before they are sent: it exists for
// tests that prove receivers reject corrupt data, and is nil otherwise.
func ServeDAG(h host.Host, get BlockGetter, tamper func([]byte) []byte) {
	h.SetStreamHandler(DAGProtocol, func(st network.Stream) {
		defer st.Close()
		_ = st.SetReadDeadline(time.Now().Add(rpcTimeout))
		req, err := readMessage(bufio.NewReader(st))
		if err != nil {
			st.Reset()
			return
		}
		root, err := cid.Cast(req)
		if err != nil {
			writeErrorFrame(st, "bad root CID")
			return
		}
		_ = st.SetReadDeadline(time.Time{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// A small write buffer: a block's bytes go to the stream without a
		// copy into it; only frame headers are buffered.
		w := bufio.NewWriterSize(st, 16<<10)
		err = walk(ctx, root, get, func(c cid.Cid, data []byte) error {
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
		if err := writeFrame(w, nil, nil); err != nil {
			st.Reset()
			return
		}
		if err := w.Flush(); err != nil {
			st.Reset()
		}
	})
}

// walk visits the DAG under c depth first, parents before children.
func walk(ctx context.Context, c cid.Cid, get BlockGetter, visit func(cid.Cid, []byte) error) error {
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
		if err := walk(ctx, l, get, visit); err != nil {
			return err
		}
	}
	return nil
}

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
	st, err := openStream(ctx, h, p, DAGProtocol)
	if err != nil {
		return fmt.Errorf("mesh: open a DAG stream to %s: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if err := writeMessage(st, root.Bytes()); err != nil {
		st.Reset()
		return fmt.Errorf("mesh: DAG request to %s: %w", p, err)
	}
	if err := st.CloseWrite(); err != nil {
		st.Reset()
		return fmt.Errorf("mesh: DAG request to %s: %w", p, err)
	}
	// A small read buffer: a block's bytes are read straight into their
	// own buffer, not copied through the reader's.
	r := bufio.NewReaderSize(st, 64<<10)
	// expected holds the blocks the DAG still owes, in the order a
	// depth-first walk sends them: a stack.
	expected := []cid.Cid{root}
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
		data := alloc(int(dlen))
		if _, err := io.ReadFull(r, data); err != nil {
			st.Reset()
			return fmt.Errorf("mesh: DAG stream from %s: %w", p, noEOFErr(err))
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
