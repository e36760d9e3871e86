package mesh

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
)

func newTestHost(t testing.TB, key Key) host.Host {
	t.Helper()
	return newAdmittingHost(t, key, nil)
}

// newAdmittingHost starts a host whose admission is adm (nil: everyone).
func newAdmittingHost(t testing.TB, key Key, adm *Admission) host.Host {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Identity, cfg.Key, cfg.Listen = priv, key, []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Admission = adm
	h, err := NewHost(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestPrivateNetwork(t *testing.T) {
	key := NewKey()
	a, b := newTestHost(t, key), newTestHost(t, key)
	stranger := newTestHost(t, NewKey())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Connect(ctx, b, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		t.Fatalf("members cannot connect: %v", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	if err := Connect(sctx, stranger, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err == nil {
		t.Fatal("a host without the mesh key connected")
	}
}

func TestConfigValidate(t *testing.T) {
	priv, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{Identity: priv, Key: NewKey(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, true},
		{"no identity", Config{Key: NewKey(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, false},
		{"no key: TLS and admission only", Config{Identity: priv, Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, true},
		{"quic", Config{Identity: priv, Key: NewKey(), Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}}, false},
		{"bad addr", Config{Identity: priv, Key: NewKey(), Listen: []string{"nonsense"}}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	k := NewKey()
	if back, err := ParseKey(k.String()); err != nil || back != k {
		t.Fatalf("key round trip: %v", err)
	}
}

// counterFSM is a Raft state machine that counts applied entries.
type counterFSM struct {
	mu sync.Mutex
	n  int
}

func (f *counterFSM) Apply(*raft.Log) any { f.mu.Lock(); f.n++; f.mu.Unlock(); return nil }
func (f *counterFSM) count() int          { f.mu.Lock(); defer f.mu.Unlock(); return f.n }
func (f *counterFSM) Snapshot() (raft.FSMSnapshot, error) {
	return nil, io.ErrUnexpectedEOF
}
func (f *counterFSM) Restore(io.ReadCloser) error { return nil }

// TestRaftOverLibp2p runs a three-voter Raft cluster whose transport is
// the stream layer, and checks that entries replicate.
func TestRaftOverLibp2p(t *testing.T) {
	key := NewKey()
	var hosts []host.Host
	for i := 0; i < 3; i++ {
		hosts = append(hosts, newTestHost(t, key))
	}
	for _, h := range hosts {
		for _, o := range hosts {
			if h != o {
				h.Peerstore().AddAddrs(o.ID(), o.Addrs(), time.Hour)
			}
		}
	}
	var servers []raft.Server
	for _, h := range hosts {
		servers = append(servers, raft.Server{ID: raft.ServerID(h.ID().String()), Address: raft.ServerAddress(h.ID().String())})
	}
	var rafts []*raft.Raft
	var fsms []*counterFSM
	for _, h := range hosts {
		sl := NewStreamLayer(h, func(peer.ID, uint64) RaftRole { return RaftVoter }, nil)
		trans := raft.NewNetworkTransport(sl, 3, 5*time.Second, io.Discard)
		conf := raft.DefaultConfig()
		conf.LocalID = raft.ServerID(h.ID().String())
		conf.HeartbeatTimeout, conf.ElectionTimeout, conf.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond
		conf.LogOutput = io.Discard
		fsm := &counterFSM{}
		store := raft.NewInmemStore()
		r, err := raft.NewRaft(conf, fsm, store, store, raft.NewInmemSnapshotStore(), trans)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			t.Fatal(err)
		}
		rafts, fsms = append(rafts, r), append(fsms, fsm)
		t.Cleanup(func() { r.Shutdown().Error(); trans.Close() })
	}
	deadline := time.Now().Add(15 * time.Second)
	var leader *raft.Raft
	for leader == nil && time.Now().Before(deadline) {
		for _, r := range rafts {
			if r.State() == raft.Leader {
				leader = r
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if leader == nil {
		t.Fatal("no leader within 15s")
	}
	for i := 0; i < 50; i++ {
		if err := leader.Apply([]byte("x"), 5*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	for time.Now().Before(deadline) {
		done := true
		for _, f := range fsms {
			if f.count() < 50 {
				done = false
			}
		}
		if done {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("entries did not replicate: %d %d %d", fsms[0].count(), fsms[1].count(), fsms[2].count())
}

func TestRPC(t *testing.T) {
	key := NewKey()
	a, b := newTestHost(t, key), newTestHost(t, key)
	b.Peerstore().AddAddrs(a.ID(), a.Addrs(), time.Hour)
	Serve(a, ApplyProtocol, func(ctx context.Context, from peer.ID, req []byte) ([]byte, error) {
		if string(req) == "fail" {
			return nil, io.ErrUnexpectedEOF
		}
		return append([]byte("echo:"+from.String()[:6]+":"), req...), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := Call(ctx, b, a.ID(), ApplyProtocol, []byte("hello"))
	if err != nil || string(resp) != "echo:"+b.ID().String()[:6]+":hello" {
		t.Fatalf("call: %q %v", resp, err)
	}
	_, err = Call(ctx, b, a.ID(), ApplyProtocol, []byte("fail"))
	var re *RemoteError
	if !errors.As(err, &re) || re.Peer != a.ID() {
		t.Fatalf("remote error: %v", err)
	}
	big := make([]byte, maxMessage+1)
	if _, err := Call(ctx, b, a.ID(), ApplyProtocol, big); err == nil {
		t.Fatal("an oversize request was sent")
	}
}

func TestListenAddressInUse(t *testing.T) {
	a := newTestHost(t, Key{})
	priv, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	cfg := DefaultConfig()
	cfg.Identity, cfg.Listen = priv, []string{a.Addrs()[0].String()}
	h, err := NewHost(cfg)
	if err == nil {
		h.Close()
		t.Fatalf("a second host listened on %s, which another host holds", a.Addrs()[0])
	}
	if !errors.Is(err, artmesh.Conflict) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("listening on a port in use: %v, want a Conflict that says so", err)
	}
}
