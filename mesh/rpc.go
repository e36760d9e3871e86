package mesh

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/artmesh/artmesh"
)

// ApplyProtocol carries catalog writes from followers to the leader.
const ApplyProtocol protocol.ID = "/artmesh/catalog-apply/1.0.0"

// maxMessage bounds one request or answer of the small RPCs.
const maxMessage = 4 << 20

// MaxGuestMessage bounds a request on a guest protocol (ServeGuest), one
// that a peer which is not a member may open: a join request is a peer
// id, a secret and a few addresses, well under 1 KiB.
const MaxGuestMessage = 8 << 10

// readChunk is how much of a message is read into memory at a time: a
// message's buffer grows as its bytes arrive, never to a length a peer
// only announced. It is the size of the push and DAG streams' read
// buffers, so that a chunk is read past that buffer straight into the
// message's (bufio reads a request at least its size directly).
const readChunk = 64 << 10

// rpcTimeout bounds a whole exchange on the handler's side.
const rpcTimeout = 30 * time.Second

// Handler answers one request of an RPC protocol.
type Handler func(ctx context.Context, from peer.ID, req []byte) ([]byte, error)

// Serve answers requests of protocol p on h with handle. Each request and
// answer is a length-prefixed message; a handler's error travels back
// with its kind and message and becomes a RemoteError on the caller's
// side, which errors.Is matches against that kind.
func Serve(h host.Host, p protocol.ID, handle Handler) {
	ServeTimeout(h, p, rpcTimeout, handle)
}

// ServeTimeout is Serve with a bound on a whole exchange other than the
// default 30 s, for requests whose work takes long (a handler that moves
// content).
func ServeTimeout(h host.Host, p protocol.ID, timeout time.Duration, handle Handler) {
	serve(h, p, timeout, maxMessage, handle)
}

// ServeGuest is Serve for a guest protocol (see NewAdmission), one that
// peers which are not members may open: a request longer than
// MaxGuestMessage is refused (the stream is reset) before it reaches
// handle. Answers are not capped: the caller asked for them.
func ServeGuest(h host.Host, p protocol.ID, handle Handler) {
	serve(h, p, rpcTimeout, MaxGuestMessage, handle)
}

// serve answers requests of protocol p on h with handle, each request at
// most limit bytes long.
func serve(h host.Host, p protocol.ID, timeout time.Duration, limit uint64, handle Handler) {
	h.SetStreamHandler(p, func(st network.Stream) {
		defer st.Close()
		_ = st.SetDeadline(time.Now().Add(timeout))
		req, err := readMessage(bufio.NewReader(st), limit)
		if err != nil {
			st.Reset()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		resp, herr := safeHandle(ctx, handle, st.Conn().RemotePeer(), req)
		status := byte(0)
		if herr != nil {
			status = 1
			resp, _ = json.Marshal(remoteError{Kind: artmesh.KindOf(herr).String(), Message: artmesh.Message(herr)})
		}
		// The status and the message in one write: one frame on the wire
		// (one TLS record, one syscall) instead of two.
		if len(resp) > maxMessage {
			status, resp = 1, []byte(`{"kind":"internal","message":"the answer is over the message limit"}`)
		}
		answer := binary.AppendUvarint(append(make([]byte, 0, 1+binary.MaxVarintLen64+len(resp)), status), uint64(len(resp)))
		if _, err := st.Write(append(answer, resp...)); err != nil {
			st.Reset()
		}
	})
}

// safeHandle runs handle, turning a panic into an error: no request from
// a peer may stop the node.
func safeHandle(ctx context.Context, handle Handler, from peer.ID, req []byte) (resp []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, fmt.Errorf("internal error: %v", r)
		}
	}()
	return handle(ctx, from, req)
}

// remoteError is how a handler's error travels.
type remoteError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// RemoteError is an error that a peer's handler answered with.
type RemoteError struct {
	Peer    peer.ID
	Kind    artmesh.Kind
	Message string
}

func (e *RemoteError) Error() string { return fmt.Sprintf("peer %s: %s", e.Peer, e.Message) }

// Is matches the error's kind, so that errors.Is(err, artmesh.NotFound)
// holds across the mesh.
func (e *RemoteError) Is(target error) bool {
	k, ok := target.(artmesh.Kind)
	return ok && k == e.Kind && k != artmesh.Other
}

// ErrNotSent is in the chain of a Call's error when the request cannot
// have reached the peer (its stream did not open, or it was over the
// limit), so the peer cannot have acted on it. Any other failure of a
// Call may have come after the peer read the request.
var ErrNotSent = errors.New("not sent")

// Call sends req to peer p over protocol proto and returns the answer.
func Call(ctx context.Context, h host.Host, p peer.ID, proto protocol.ID, req []byte) ([]byte, error) {
	if len(req) > maxMessage {
		return nil, fmt.Errorf("mesh: %s to %s: %w: a message of %d bytes is over the limit of %d", proto, p, ErrNotSent, len(req), maxMessage)
	}
	st, err := openStream(ctx, h, p, proto)
	if err != nil {
		return nil, fmt.Errorf("mesh: open %s to %s (%w): %w", proto, p, ErrNotSent, err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if err := writeMessage(st, req); err != nil {
		st.Reset()
		return nil, fmt.Errorf("mesh: send to %s: %w", p, err)
	}
	if err := st.CloseWrite(); err != nil {
		st.Reset()
		return nil, fmt.Errorf("mesh: send to %s: %w", p, err)
	}
	br := bufio.NewReader(st)
	status, err := br.ReadByte()
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("mesh: answer from %s: %w", p, err)
	}
	resp, err := readMessage(br, maxMessage)
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("mesh: answer from %s: %w", p, err)
	}
	st.Close()
	if status != 0 {
		var re remoteError
		if json.Unmarshal(resp, &re) != nil {
			re.Message = string(resp)
		}
		return nil, &RemoteError{Peer: p, Kind: artmesh.KindFromCode(re.Kind), Message: re.Message}
	}
	return resp, nil
}

func writeMessage(w io.Writer, msg []byte) error {
	if len(msg) > maxMessage {
		return fmt.Errorf("message of %d bytes is over the limit of %d", len(msg), maxMessage)
	}
	buf := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(msg)), uint64(len(msg)))
	_, err := w.Write(append(buf, msg...))
	return err
}

// errMessageTooLarge is why a message whose announced length is over
// its limit was refused.
var errMessageTooLarge = errors.New("mesh: message over the limit")

// readMessage reads one length-prefixed message of at most limit bytes.
// Its buffer grows as the bytes arrive (readChunk at a time): a peer that
// announces a large message and sends little makes the node hold little.
func readMessage(r *bufio.Reader, limit uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: %d bytes announced, %d allowed", errMessageTooLarge, n, limit)
	}
	return readGrowing(r, nil, n)
}

// readGrowing reads exactly n bytes from r into buf[:0], growing buf as
// the bytes arrive rather than to n at once. A short read gives
// io.ErrUnexpectedEOF.
func readGrowing(r io.Reader, buf []byte, n uint64) ([]byte, error) {
	if buf == nil {
		buf = []byte{}
	}
	buf = buf[:0]
	for uint64(len(buf)) < n {
		k := int(min(n-uint64(len(buf)), readChunk))
		if cap(buf)-len(buf) < k {
			// Double, but never past n: append's growth alone could
			// overshoot the message.
			grown := make([]byte, len(buf), min(max(2*cap(buf), len(buf)+k), int(n)))
			copy(grown, buf)
			buf = grown
		}
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+k])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, noEOFErr(err)
		}
	}
	return buf, nil
}
