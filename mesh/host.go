// Package mesh joins artmesh nodes over libp2p: the host (TCP, TLS 1.3
// and Noise, yamux, and a private network key where a mesh asks for one),
// admission of members by peer id, and the streams that the catalog's
// Raft runs over. It knows nothing of artifacts; package node
// wires it to the catalog and the content store.
package mesh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/artmesh/artmesh"
)

// KeySize is the length of a mesh's private network key.
const KeySize = 32

// Key is a mesh's private network key (a libp2p PSK): a node without it
// cannot finish a handshake with any member.
type Key [KeySize]byte

// NewKey returns a fresh random mesh key.
func NewKey() Key {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		panic("mesh: no randomness: " + err.Error())
	}
	return k
}

// String returns the key as hex.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// ParseKey reads a key's hex form.
func ParseKey(s string) (Key, error) {
	var k Key
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != KeySize {
		return k, fmt.Errorf("mesh: a mesh key is %d bytes of hex", KeySize)
	}
	copy(k[:], b)
	return k, nil
}

// Config is what a host needs.
type Config struct {
	// Identity is the node's key; its peer id names the node.
	Identity crypto.PrivKey
	// Key is the mesh's private network key, for a private network: a
	// second layer under TLS that a peer must hold to finish any
	// handshake. The zero key means none. It costs about two thirds of a
	// stream's throughput (XSalsa20 in pure Go on top of TLS's AES-GCM).
	Key Key
	// Admission decides which peers may open which streams; nil admits
	// everyone.
	Admission *Admission
	// Listen are the multiaddrs to listen on, such as
	// /ip4/127.0.0.1/tcp/7481. A private network rules QUIC out in
	// go-libp2p (its handshake cannot take the key), so only TCP is used;
	// one TCP+TLS stream is also the fastest transport measured here.
	Listen []string
	// LowWater and HighWater bound the connections the connection manager
	// keeps; members are protected from trimming by the node.
	LowWater, HighWater int
	Logger              *slog.Logger
}

// DefaultConfig returns a config with connection limits for meshes of up
// to a few hundred nodes.
func DefaultConfig() Config {
	return Config{Listen: []string{"/ip4/127.0.0.1/tcp/7481"}, LowWater: 400, HighWater: 800}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.Identity == nil {
		return errors.New("mesh: an identity key is required")
	}
	if len(c.Listen) == 0 {
		return errors.New("mesh: at least one listen address is required")
	}
	for _, a := range c.Listen {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return fmt.Errorf("mesh: listen address %q: %w", a, err)
		}
		if _, err := m.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			return fmt.Errorf("mesh: listen address %q: artmesh runs over TCP only (one TCP+TLS stream is its fastest transport, and QUIC cannot carry a private network); use /tcp/", a)
		}
	}
	return nil
}

// NewHost starts a libp2p host for the mesh. Close it with Close.
func NewHost(cfg Config) (host.Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.LowWater <= 0 || cfg.HighWater <= cfg.LowWater {
		cfg.LowWater, cfg.HighWater = 400, 800
	}
	cm, err := connmgr.NewConnManager(cfg.LowWater, cfg.HighWater)
	if err != nil {
		return nil, fmt.Errorf("mesh: connection manager: %w", err)
	}
	adm := cfg.Admission
	if adm == nil {
		adm = NewAdmission()
	}
	rm, err := resourceManager(adm)
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Identity),
		libp2p.ListenAddrStrings(cfg.Listen...),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionGater(gater{adm}),
		// No SO_REUSEPORT: a port another process listens on is an error,
		// not a port silently shared.
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Security(tls.ID, tls.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionManager(cm),
		libp2p.DisableRelay(),
		libp2p.Ping(true),
	}
	if cfg.Key != (Key{}) {
		opts = append(opts, libp2p.PrivateNetwork(pnet.PSK(cfg.Key[:])))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		if strings.Contains(err.Error(), "address already in use") {
			return nil, artmesh.E(artmesh.Conflict, fmt.Sprintf("the mesh address %s is in use by another process: choose another with --listen", strings.Join(cfg.Listen, ", ")), err)
		}
		return nil, fmt.Errorf("mesh: start libp2p host: %w", err)
	}
	nw := h.Network()
	adm.net.Store(&nw)
	return h, nil
}

// Connect dials a peer at its addresses.
func Connect(ctx context.Context, h host.Host, info peer.AddrInfo) error {
	if err := h.Connect(ctx, info); err != nil {
		return fmt.Errorf("mesh: connect to %s: %w", info.ID, err)
	}
	return nil
}

// openStream opens a stream of protocol proto to p. When p is not
// connected, the swarm's dial backoff for it is cleared first: members
// are few and known, and a member that was down a moment ago (a restart,
// a new port learnt since) must be reachable as soon as it is back, not
// after libp2p's backoff of up to minutes.
func openStream(ctx context.Context, h host.Host, p peer.ID, proto protocol.ID) (network.Stream, error) {
	if h.Network().Connectedness(p) != network.Connected {
		if sw, ok := h.Network().(*swarm.Swarm); ok {
			sw.Backoff().Clear(p)
		}
	}
	return h.NewStream(ctx, p, proto)
}
