package mesh

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// RaftProtocol is the libp2p protocol that carries the catalog's Raft.
const RaftProtocol protocol.ID = "/artmesh/raft/1.0.0"

// StreamLayer is a raft.StreamLayer over libp2p streams: a Raft server
// address is a peer id, and a Raft connection is one stream. Give it to
// raft.NewNetworkTransport.
//
// Incoming streams pass the Raft gate (raftgate.go): only servers of this
// node's Raft configuration, as roles tells, may open one, and every RPC
// on it is checked before raft reads it.
type StreamLayer struct {
	h      host.Host
	gate   *gate
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

var _ raft.StreamLayer = (*StreamLayer)(nil)

// NewStreamLayer starts accepting Raft streams on h from the peers that
// roles says are servers. Refusals are logged to log (nil: discarded) as
// warnings and counted (Refused).
func NewStreamLayer(h host.Host, roles RaftRoles, log *slog.Logger) *StreamLayer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &StreamLayer{h: h, gate: newGate(roles, log), conns: make(chan net.Conn), done: make(chan struct{})}
	h.SetStreamHandler(RaftProtocol, func(st network.Stream) {
		if ok, r := s.gate.admitStream(st.Conn().RemotePeer()); !ok {
			s.gate.refuse(st, r)
			return
		}
		select {
		case s.conns <- newGateConn(st, s.gate):
		case <-s.done:
			st.Reset()
		}
	})
	return s
}

// Refused returns how many Raft streams the gate refused for reason.
func (s *StreamLayer) Refused(reason RefusalReason) uint64 {
	if reason >= numRefusalReasons {
		return 0
	}
	return s.gate.refused[reason].Load()
}

// Accept waits for the next incoming Raft connection.
func (s *StreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting. It is safe to call twice.
func (s *StreamLayer) Close() error {
	s.closed.Do(func() {
		s.h.RemoveStreamHandler(RaftProtocol)
		close(s.done)
	})
	return nil
}

// Addr is this node's Raft address: its peer id.
func (s *StreamLayer) Addr() net.Addr { return peerAddr(s.h.ID()) }

// Dial opens a Raft connection to the peer whose id is address.
func (s *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	id, err := peer.Decode(string(address))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := openStream(ctx, s.h, id, RaftProtocol)
	if err != nil {
		return nil, err
	}
	return newStreamConn(st), nil
}

// peerAddr is a net.Addr naming a peer.
type peerAddr peer.ID

func (a peerAddr) Network() string { return "libp2p" }
func (a peerAddr) String() string  { return peer.ID(a).String() }

// streamConn makes a libp2p stream a net.Conn.
type streamConn struct {
	network.Stream
}

func newStreamConn(st network.Stream) *streamConn { return &streamConn{Stream: st} }

func (c *streamConn) LocalAddr() net.Addr  { return peerAddr(c.Conn().LocalPeer()) }
func (c *streamConn) RemoteAddr() net.Addr { return peerAddr(c.Conn().RemotePeer()) }

// Close closes the stream both ways; a stream that cannot close cleanly
// is reset.
func (c *streamConn) Close() error {
	if err := c.Stream.Close(); err != nil {
		return errors.Join(err, c.Stream.Reset())
	}
	return nil
}
