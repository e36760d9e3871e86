package mesh

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// PushProtocol carries the blocks of a write to a member that is to hold
// a synchronous copy, while the writer is still importing them: the
// writer sends block frames (as DAGProtocol's) in any order, then a frame
// whose CID is the root, with no data, after an end marker; the receiver
// verifies every block against its CID before it stores it, makes the
// copy durable, checks that the DAG under the root is complete and
// answers with one status byte (0: held) and a message.
//
//	frame*  := cidLen cid dataLen data
//	end     := 0 rootLen root
//	answer  := status msgLen msg
const PushProtocol protocol.ID = "/artmesh/push/1.0.0"

// PushSink receives one pushed copy. Put gets only verified blocks, in a
// buffer that is reused once it returns (it must copy what it keeps); Done
// is called with the root once every block arrived, and must make the
// copy durable and check it is whole; Abort is called instead when the
// push fails. Exactly one of Done and Abort is called.
type PushSink interface {
	Put(ctx context.Context, c cid.Cid, data []byte) error
	Done(ctx context.Context, root cid.Cid) error
	Abort()
}

// ServePush takes pushed copies on h; open makes the sink of one push from
// a peer (the admission has already checked that it is a member), or
// refuses it. A push lasts as long as the writer's import, bounded by a
// deadline on every frame; timeout bounds Done.
func ServePush(h host.Host, timeout time.Duration, open func(from peer.ID) (PushSink, error)) {
	h.SetStreamHandler(PushProtocol, func(st network.Stream) {
		defer st.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stop := context.AfterFunc(ctx, func() { st.Reset() })
		defer stop()
		answer := func(err error) {
			status, msg := byte(0), []byte("ok")
			if err != nil {
				status, msg = 1, []byte(err.Error())
			}
			_ = st.SetWriteDeadline(time.Now().Add(rpcTimeout))
			if _, werr := st.Write([]byte{status}); werr == nil {
				_ = writeMessage(st, msg)
			}
		}
		sink, err := open(st.Conn().RemotePeer())
		if err != nil {
			answer(err)
			return
		}
		root, err := receivePush(ctx, st, sink)
		if err != nil {
			sink.Abort()
			answer(err)
			return
		}
		dctx, dcancel := context.WithTimeout(ctx, timeout)
		defer dcancel()
		answer(sink.Done(dctx, root))
	})
}

// receivePush reads block frames into sink until the end marker, and
// returns the root it names.
func receivePush(ctx context.Context, st network.Stream, sink PushSink) (cid.Cid, error) {
	// A small read buffer: a block's bytes are read straight into buf,
	// not copied through the reader's.
	r := bufio.NewReaderSize(st, readChunk)
	var buf []byte
	for {
		_ = st.SetReadDeadline(time.Now().Add(rpcTimeout))
		c, data, err := readFrame(r, buf)
		if err != nil {
			return cid.Undef, err
		}
		if data == nil {
			return c, nil
		}
		buf = data
		if err := verify(c, data); err != nil {
			return cid.Undef, err
		}
		if err := sink.Put(ctx, c, data); err != nil {
			return cid.Undef, err
		}
	}
}

// readFrame reads one frame, its data into buf when it is large enough;
// the end marker gives its root and nil data.
func readFrame(r *bufio.Reader, buf []byte) (cid.Cid, []byte, error) {
	clen, err := binary.ReadUvarint(r)
	if err != nil {
		return cid.Undef, nil, noEOFErr(err)
	}
	end := clen == 0
	if end {
		if clen, err = binary.ReadUvarint(r); err != nil {
			return cid.Undef, nil, noEOFErr(err)
		}
	}
	if clen == 0 || clen > 256 {
		return cid.Undef, nil, ErrCorruptBlock
	}
	cb := make([]byte, clen)
	if _, err := io.ReadFull(r, cb); err != nil {
		return cid.Undef, nil, noEOFErr(err)
	}
	c, err := cid.Cast(cb)
	if err != nil {
		return cid.Undef, nil, ErrCorruptBlock
	}
	if end {
		return c, nil, nil
	}
	dlen, err := binary.ReadUvarint(r)
	if err != nil || dlen > maxBlock {
		return cid.Undef, nil, errors.New("mesh: bad block length")
	}
	// The buffer grows as the block's bytes arrive (and is reused by the
	// next frame): a length only announced costs nothing.
	data, err := readGrowing(r, buf, dlen)
	if err != nil {
		return cid.Undef, nil, err
	}
	return c, data, nil
}

// Push is one outgoing pushed copy. Send and Finish are called from one
// goroutine.
type Push struct {
	p  peer.ID
	st network.Stream
	w  *bufio.Writer
}

// OpenPush starts a push of a copy to p.
func OpenPush(ctx context.Context, h host.Host, p peer.ID) (*Push, error) {
	st, err := openStream(ctx, h, p, PushProtocol)
	if err != nil {
		return nil, fmt.Errorf("mesh: open a push to %s: %w", p, err)
	}
	// A small write buffer: a block's bytes go to the stream without a
	// copy into it; only frame headers are buffered.
	return &Push{p: p, st: st, w: bufio.NewWriterSize(st, 16<<10)}, nil
}

// Send sends one block.
func (ps *Push) Send(c cid.Cid, data []byte) error {
	_ = ps.st.SetWriteDeadline(time.Now().Add(rpcTimeout))
	if err := writeFrame(ps.w, c.Bytes(), data); err != nil {
		ps.st.Reset()
		return fmt.Errorf("mesh: push to %s: %w", ps.p, err)
	}
	return nil
}

// Finish names the root, and waits until the receiver holds the whole
// DAG durably (or ctx ends).
func (ps *Push) Finish(ctx context.Context, root cid.Cid) error {
	stop := context.AfterFunc(ctx, func() { ps.st.Reset() })
	defer stop()
	_ = ps.st.SetWriteDeadline(time.Now().Add(rpcTimeout))
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], 0)
	_, err := ps.w.Write(hdr[:n])
	if err == nil {
		rb := root.Bytes()
		n = binary.PutUvarint(hdr[:], uint64(len(rb)))
		if _, err = ps.w.Write(hdr[:n]); err == nil {
			_, err = ps.w.Write(rb)
		}
	}
	if err == nil {
		err = ps.w.Flush()
	}
	if err == nil {
		err = ps.st.CloseWrite()
	}
	if err != nil {
		ps.st.Reset()
		return fmt.Errorf("mesh: push to %s: %w", ps.p, err)
	}
	_ = ps.st.SetReadDeadline(time.Time{})
	br := bufio.NewReader(ps.st)
	status, err := br.ReadByte()
	if err != nil {
		ps.st.Reset()
		return fmt.Errorf("mesh: answer to a push from %s: %w", ps.p, noEOFErr(err))
	}
	msg, err := readMessage(br, maxMessage)
	if err != nil {
		ps.st.Reset()
		return fmt.Errorf("mesh: answer to a push from %s: %w", ps.p, noEOFErr(err))
	}
	ps.st.Close()
	if status != 0 {
		return &RemoteError{Peer: ps.p, Message: string(msg)}
	}
	return nil
}

// Abort ends a push that will not be finished.
func (ps *Push) Abort() { ps.st.Reset() }
