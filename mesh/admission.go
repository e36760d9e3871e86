package mesh

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	ma "github.com/multiformats/go-multiaddr"
)

// ErrNotAdmitted is why a stream of a peer that is not a member was
// refused.
var ErrNotAdmitted = errors.New("mesh: the peer is not a member of this mesh")

// MaxGuests is how many peers that are not members may be connected at
// once, inbound: each may only join (GuestProtocols), and GuestGrace
// after it connected it is cut off unless it became a member.
const MaxGuests = 16

// GuestGrace is how long a peer that is not a member may stay connected,
// to finish a join.
const GuestGrace = 10 * time.Second

// Admission decides which peers may use the mesh: the members that the
// catalog lists, identified by the peer id that the TLS (or Noise)
// handshake proved. Every stream's protocol is checked once it is
// negotiated, inbound and outbound, before any handler sees it, so no
// protocol (Raft, bitswap, the DAG stream, an RPC) can forget the check.
// Peers that are not members may open only the guest protocols: the
// join protocol and libp2p's identify.
//
// A zero Admission admits everyone (for tests of one package); a node
// sets Member before it starts serving.
type Admission struct {
	member atomic.Pointer[func(peer.ID) bool]
	guests map[protocol.ID]bool
	net    atomic.Pointer[network.Network]

	banMu  sync.Mutex
	banned map[peer.ID]time.Time // peers that are not members, refused until then
}

// maxBanned bounds the peers kept banned at once; past it, a new ban
// takes the place of expired ones or is not kept.
const maxBanned = 4096

// Ban refuses p, while it is not a member, every connection and stream
// until until: a stranger that floods the join protocol past its limits
// is cut off, and its next dials fail at the handshake (and then in its
// own dial backoff) instead of costing the node a stream each.
func (a *Admission) Ban(p peer.ID, until time.Time) {
	a.banMu.Lock()
	defer a.banMu.Unlock()
	if a.banned == nil {
		a.banned = make(map[peer.ID]time.Time)
	}
	if len(a.banned) >= maxBanned {
		now := time.Now()
		for id, t := range a.banned {
			if !now.Before(t) {
				delete(a.banned, id)
			}
		}
		if len(a.banned) >= maxBanned {
			return
		}
	}
	a.banned[p] = until
}

// isBanned reports whether p is banned now.
func (a *Admission) isBanned(p peer.ID) bool {
	if a == nil {
		return false
	}
	a.banMu.Lock()
	defer a.banMu.Unlock()
	until, ok := a.banned[p]
	if ok && !time.Now().Before(until) {
		delete(a.banned, p)
		return false
	}
	return ok
}

// NewAdmission returns an admission that lets peers that are not members
// open only the given protocols (and identify).
func NewAdmission(guestProtocols ...protocol.ID) *Admission {
	a := &Admission{guests: map[protocol.ID]bool{identify.ID: true, identify.IDPush: true}}
	for _, p := range guestProtocols {
		a.guests[p] = true
	}
	return a
}

// SetMember installs the membership test. It must be fast: it runs for
// every stream.
func (a *Admission) SetMember(member func(peer.ID) bool) { a.member.Store(&member) }

// Admitted reports whether p is a member (or whether no test is set).
func (a *Admission) Admitted(p peer.ID) bool {
	if a == nil {
		return true
	}
	f := a.member.Load()
	return f == nil || (*f)(p)
}

// allowStream reports whether p may use protocol proto.
func (a *Admission) allowStream(p peer.ID, proto protocol.ID) bool {
	return a.Admitted(p) || a.guests[proto] && !a.isBanned(p)
}

// guestCount counts connected peers that are not members.
func (a *Admission) guestCount() int {
	n := a.net.Load()
	if n == nil {
		return 0
	}
	count := 0
	for _, p := range (*n).Peers() {
		if !a.Admitted(p) {
			count++
		}
	}
	return count
}

// EvictGuests closes the connections of peers that are not members and
// have been connected for longer than grace (every one, with grace 0):
// removed members at once, joiners that did not finish in time.
func (a *Admission) EvictGuests(h host.Host, grace time.Duration) (closed int) {
	now := time.Now()
	for _, p := range h.Network().Peers() {
		if a.Admitted(p) {
			continue
		}
		old := false
		for _, c := range h.Network().ConnsToPeer(p) {
			old = old || now.Sub(c.Stat().Opened) >= grace
		}
		if old {
			_ = h.Network().ClosePeer(p)
			closed++
		}
	}
	return closed
}

// gater is the connection gater of a mesh host: it admits an inbound
// connection of a peer that is not a member only while fewer than
// MaxGuests such peers are connected.
type gater struct{ a *Admission }

func (g gater) InterceptPeerDial(peer.ID) bool                                  { return true }
func (g gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool                    { return true }
func (g gater) InterceptAccept(network.ConnMultiaddrs) bool                     { return true }
func (g gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

func (g gater) InterceptSecured(dir network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	if dir == network.DirOutbound || g.a.Admitted(p) {
		return true
	}
	return !g.a.isBanned(p) && g.a.guestCount() < MaxGuests
}

// admissionRM is a resource manager that refuses, at protocol
// negotiation, every stream that Admission does not allow.
type admissionRM struct {
	network.ResourceManager
	a *Admission
}

func (r admissionRM) OpenStream(p peer.ID, dir network.Direction) (network.StreamManagementScope, error) {
	s, err := r.ResourceManager.OpenStream(p, dir)
	if err != nil {
		return nil, err
	}
	return admittedStream{StreamManagementScope: s, p: p, a: r.a}, nil
}

type admittedStream struct {
	network.StreamManagementScope
	p peer.ID
	a *Admission
}

func (s admittedStream) SetProtocol(proto protocol.ID) error {
	if !s.a.allowStream(s.p, proto) {
		return fmt.Errorf("%w: %s may not open %s", ErrNotAdmitted, s.p, proto)
	}
	return s.StreamManagementScope.SetProtocol(proto)
}

// peerLimits are the resource manager's limits for any one peer, set on
// purpose rather than left to libp2p's defaults: a member needs one
// connection (a few while two dials cross) and at most a few hundred
// streams at once (every forwarded write, fetch, push and Raft pipeline
// is one); a peer past them gets its new streams or connections refused,
// not the node's memory or file descriptors. The same stream limits hold
// per protocol: libp2p's default of about 64 inbound streams of one
// protocol from one peer would refuse a follower's 65th concurrent
// forwarded write.
func peerLimits() rcmgr.ResourceLimits {
	return rcmgr.ResourceLimits{
		Conns: 8, ConnsInbound: 4, ConnsOutbound: 4,
		Streams: 1024, StreamsInbound: 512, StreamsOutbound: 512,
	}
}

// resourceManager returns a resource manager with libp2p's limits scaled
// to the machine, peerLimits for every peer, wrapped so that it enforces
// a.
func resourceManager(a *Admission) (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	cfg := rcmgr.PartialLimitConfig{PeerDefault: peerLimits(), ProtocolPeerDefault: peerLimits()}.Build(limits.AutoScale())
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(cfg))
	if err != nil {
		return nil, fmt.Errorf("mesh: resource manager: %w", err)
	}
	return admissionRM{ResourceManager: rm, a: a}, nil
}
