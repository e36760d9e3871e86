package mesh

import (
	"context"
	"errors"
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
type StreamLayer struct {
	h      host.Host
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

var _ raft.StreamLayer = (*StreamLayer)(nil)

// NewStreamLayer starts accepting Raft streams on h.
func NewStreamLayer(h host.Host) *StreamLayer {
	s := &StreamLayer{h: h, conns: make(chan net.Conn), done: make(chan struct{})}
	h.SetStreamHandler(RaftProtocol, func(st network.Stream) {
		select {
		case s.conns <- newStreamConn(st):
		case <-s.done:
			st.Reset()
		}
	})
	return s
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
