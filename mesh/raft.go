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
	closed sync.Once
	// ctx ends when the layer closes: Accept returns, and every Dial ends.
	ctx    context.Context
	cancel context.CancelFunc
	// redialEvery is how often Dial tries a peer it cannot reach again.
	redialEvery time.Duration
	// redialed, if set, is told of every failed attempt of a Dial
	// (tests).
	redialed func(error)
}

// redialEvery is the default of StreamLayer.redialEvery.
const redialEvery = 200 * time.Millisecond

var _ raft.StreamLayer = (*StreamLayer)(nil)

// NewStreamLayer starts accepting Raft streams on h from the peers that
// roles says are servers. Refusals are logged to log (nil: discarded) as
// warnings and counted (Refused).
func NewStreamLayer(h host.Host, roles RaftRoles, log *slog.Logger) *StreamLayer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &StreamLayer{h: h, gate: newGate(roles, log), conns: make(chan net.Conn), redialEvery: redialEvery}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(RaftProtocol, func(st network.Stream) {
		if ok, r := s.gate.admitStream(st.Conn().RemotePeer()); !ok {
			s.gate.refuse(st, r)
			return
		}
		select {
		case s.conns <- newGateConn(st, s.gate):
		case <-s.ctx.Done():
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
	case <-s.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting, and ends the Dials that wait for a peer. It is
// safe to call twice.
func (s *StreamLayer) Close() error {
	s.closed.Do(func() {
		s.h.RemoveStreamHandler(RaftProtocol)
		s.cancel()
	})
	return nil
}

// Addr is this node's Raft address: its peer id.
func (s *StreamLayer) Addr() net.Addr { return peerAddr(s.h.ID()) }

// Dial opens a Raft connection to the peer whose id is address. A peer
// that cannot be reached is tried again every redialEvery until timeout
// runs out: Raft backs off exponentially (up to about 10 s) after each
// failed call to a follower, so a Dial that fails fast on a member that
// is restarting would keep that member waiting for the backoff after it
// is back. Waiting here, the leader reaches it within redialEvery of its
// return, and a member that stays down costs one failure per timeout.
func (s *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	id, err := peer.Decode(string(address))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	for {
		st, err := openStream(ctx, s.h, id, RaftProtocol)
		if err == nil {
			return newStreamConn(st), nil
		}
		if s.redialed != nil {
			s.redialed(err)
		}
		t := time.NewTimer(s.redialEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			if s.ctx.Err() != nil {
				return nil, errors.Join(err, net.ErrClosed)
			}
			return nil, err
		case <-t.C:
		}
	}
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
