package mesh

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/artmesh/artmesh"
)

// members is a membership test that can change.
type members struct {
	mu  sync.Mutex
	set map[peer.ID]bool
}

func (m *members) has(p peer.ID) bool { m.mu.Lock(); defer m.mu.Unlock(); return m.set[p] }
func (m *members) put(p peer.ID, in bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.set[p] = in
}

func TestAdmissionByPeerID(t *testing.T) {
	const (
		joinProto  protocol.ID = "/test/join/1"
		otherProto protocol.ID = "/test/other/1"
	)
	adm := NewAdmission(joinProto)
	m := &members{set: map[peer.ID]bool{}}
	adm.SetMember(m.has)
	a := newAdmittingHost(t, Key{}, adm)
	b := newTestHost(t, Key{})
	echo := func(_ context.Context, from peer.ID, req []byte) ([]byte, error) { return req, nil }
	Serve(a, joinProto, echo)
	Serve(a, otherProto, echo)
	Serve(a, "/test/fail/1", func(context.Context, peer.ID, []byte) ([]byte, error) {
		return nil, artmesh.E(artmesh.NotFound, "no such thing")
	})
	b.Peerstore().AddAddrs(a.ID(), a.Addrs(), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Not a member: TLS lets it connect, and it may join, but nothing
	// else.
	if got, err := Call(ctx, b, a.ID(), joinProto, []byte("hi")); err != nil || string(got) != "hi" {
		t.Fatalf("a guest's join call: %q, %v", got, err)
	}
	if _, err := Call(ctx, b, a.ID(), otherProto, []byte("hi")); err == nil {
		t.Fatal("a peer that is not a member opened a members' protocol")
	}
	// A member: everything.
	m.put(b.ID(), true)
	if got, err := Call(ctx, b, a.ID(), otherProto, []byte("hi")); err != nil || string(got) != "hi" {
		t.Fatalf("a member's call: %q, %v", got, err)
	}
	// Errors keep their kind across the mesh.
	_, err := Call(ctx, b, a.ID(), "/test/fail/1", nil)
	var re *RemoteError
	if !errors.As(err, &re) || !errors.Is(err, artmesh.NotFound) || re.Message != "no such thing" {
		t.Fatalf("a remote NotFound came back as %#v", err)
	}
	// Removed: refused again, and its connection is closed at once by
	// EvictGuests with no grace.
	m.put(b.ID(), false)
	if _, err := Call(ctx, b, a.ID(), otherProto, []byte("hi")); err == nil {
		t.Fatal("a removed member opened a members' protocol")
	}
	if n := adm.EvictGuests(a, time.Hour); n != 0 {
		t.Fatalf("evicted %d guests within their grace", n)
	}
	if n := adm.EvictGuests(a, 0); n != 1 {
		t.Fatalf("evicted %d guests past their grace, want 1", n)
	}
	if len(a.Network().ConnsToPeer(b.ID())) != 0 {
		t.Fatal("an evicted guest is still connected")
	}
	// Outbound streams are checked too: a node does not speak a members'
	// protocol to a peer that is not one.
	Serve(b, otherProto, echo)
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), time.Hour)
	if _, err := Call(ctx, a, b.ID(), otherProto, nil); err == nil {
		t.Fatal("a host opened a members' protocol to a peer that is not a member")
	}
}

func TestGuestsAreCapped(t *testing.T) {
	adm := NewAdmission()
	adm.SetMember(func(peer.ID) bool { return false })
	a := newAdmittingHost(t, Key{}, adm)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The dialer's side of a TLS 1.3 handshake may finish before the
	// listener refuses, so count on the listener's side.
	for range MaxGuests + 2 {
		g := newTestHost(t, Key{})
		_ = Connect(ctx, g, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()})
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(a.Network().Peers()) != MaxGuests && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := len(a.Network().Peers()); got != MaxGuests {
		t.Fatalf("%d guests connected of %d that tried, want the cap of %d", got, MaxGuests+2, MaxGuests)
	}
}

func TestHandlerPanicIsAnError(t *testing.T) {
	a, b := newTestHost(t, Key{}), newTestHost(t, Key{})
	Serve(a, "/test/panic/1", func(context.Context, peer.ID, []byte) ([]byte, error) {
		panic("a handler's bug")
	})
	b.Peerstore().AddAddrs(a.ID(), a.Addrs(), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Call(ctx, b, a.ID(), "/test/panic/1", nil)
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "internal error") {
		t.Fatalf("a panicking handler answered %v, want an internal error", err)
	}
}

// TestPeerStreamLimit: one peer cannot hold more streams open on a host
// than peerLimits allow.
func TestPeerStreamLimit(t *testing.T) {
	a, b := newTestHost(t, Key{}), newTestHost(t, Key{})
	hold := make(chan struct{})
	defer close(hold)
	a.SetStreamHandler("/test/hold/1", func(st network.Stream) { <-hold; st.Reset() })
	b.Peerstore().AddAddrs(a.ID(), a.Addrs(), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	limit := int(peerLimits().StreamsInbound)
	opened := 0
	for range limit + 20 {
		st, err := b.NewStream(ctx, a.ID(), "/test/hold/1")
		if err != nil {
			break
		}
		// The stream counts on a's side once a has read the protocol.
		if _, err := st.Write([]byte{1}); err != nil {
			break
		}
		opened++
	}
	// Some refusals show only on a's side, after the dialer's write: count
	// a's open inbound streams from b.
	time.Sleep(500 * time.Millisecond)
	inbound := 0
	for _, c := range a.Network().ConnsToPeer(b.ID()) {
		for _, st := range c.GetStreams() {
			if st.Stat().Direction == network.DirInbound {
				inbound++
			}
		}
	}
	if inbound > limit || inbound < limit/2 {
		t.Fatalf("a holds %d inbound streams of one peer (the dialer opened %d), want at most the limit of %d", inbound, opened, limit)
	}
}

// TestBannedGuest: a banned peer that is not a member may not open even
// the guest protocols, and a new connection of it is refused at the
// handshake; a member is never refused for a ban, and a ban ends.
func TestBannedGuest(t *testing.T) {
	const joinProto protocol.ID = "/test/join/1"
	adm := NewAdmission(joinProto)
	m := &members{set: map[peer.ID]bool{}}
	adm.SetMember(m.has)
	a := newAdmittingHost(t, Key{}, adm)
	b := newTestHost(t, Key{})
	Serve(a, joinProto, func(_ context.Context, _ peer.ID, req []byte) ([]byte, error) { return req, nil })
	b.Peerstore().AddAddrs(a.ID(), a.Addrs(), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := Call(ctx, b, a.ID(), joinProto, []byte("hi")); err != nil {
		t.Fatalf("a guest before its ban: %v", err)
	}
	adm.Ban(b.ID(), time.Now().Add(time.Hour))
	if _, err := Call(ctx, b, a.ID(), joinProto, []byte("hi")); err == nil {
		t.Fatal("a banned guest opened the join protocol")
	}
	_ = a.Network().ClosePeer(b.ID())
	if err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err == nil && a.Network().Connectedness(b.ID()) == network.Connected {
		t.Fatal("a banned guest connected again")
	}
	m.put(b.ID(), true)
	if adm.allowStream(b.ID(), joinProto) != true || adm.allowStream(b.ID(), "/other") != true {
		t.Fatal("a member was refused for a ban")
	}
	m.put(b.ID(), false)
	adm.Ban(b.ID(), time.Now().Add(-time.Second))
	if !adm.allowStream(b.ID(), joinProto) {
		t.Fatal("a ban that ended still refuses")
	}
}
