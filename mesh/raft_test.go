package mesh

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestDialWaitsForThePeer checks that a Raft Dial to a peer that cannot
// take Raft streams yet keeps trying and connects once the peer can,
// instead of failing at once into Raft's exponential backoff; that it
// gives up when its timeout runs out; and that closing the layer ends it.
func TestDialWaitsForThePeer(t *testing.T) {
	everyone := func(peer.ID, uint64) RaftRole { return RaftVoter }
	cases := []struct {
		name    string
		timeout time.Duration
		// then runs after the first failed attempt: it lets the peer take
		// Raft streams, or closes the dialing layer, or does nothing.
		then func(t *testing.T, dialer *StreamLayer, peer host.Host)
		want string // "connected", "closed" or "timeout"
	}{
		{"the peer comes back", 20 * time.Second, func(t *testing.T, _ *StreamLayer, p host.Host) {
			sl := NewStreamLayer(p, everyone, nil)
			t.Cleanup(func() { sl.Close() })
		}, "connected"},
		{"the layer closes", 20 * time.Second, func(_ *testing.T, d *StreamLayer, _ host.Host) { d.Close() }, "closed"},
		{"the timeout runs out", 700 * time.Millisecond, func(*testing.T, *StreamLayer, host.Host) {}, "timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := NewKey()
			a, p := newTestHost(t, key), newTestHost(t, key)
			a.Peerstore().AddAddrs(p.ID(), p.Addrs(), time.Hour)
			d := NewStreamLayer(a, everyone, nil)
			t.Cleanup(func() { d.Close() })
			d.redialEvery = 20 * time.Millisecond
			failed := make(chan error, 1)
			d.redialed = func(err error) {
				select {
				case failed <- err:
				default:
				}
			}

			type result struct {
				conn net.Conn
				err  error
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				c, err := d.Dial(raft.ServerAddress(p.ID().String()), tc.timeout)
				done <- result{c, err}
			}()
			select {
			case <-failed:
			case r := <-done:
				t.Fatalf("Dial returned (%v, %v) before any failed attempt", r.conn, r.err)
			}
			tc.then(t, d, p)
			r := <-done
			if r.conn != nil {
				r.conn.Close()
			}
			took := time.Since(start)
			switch tc.want {
			case "connected":
				if r.err != nil {
					t.Fatalf("Dial: %v, want a connection once the peer takes Raft streams", r.err)
				}
			case "closed":
				if !errors.Is(r.err, net.ErrClosed) {
					t.Fatalf("Dial: (%v, %v), want net.ErrClosed once the layer closed", r.conn, r.err)
				}
				if took >= tc.timeout {
					t.Errorf("Dial ended after %s, its full timeout, not when the layer closed", took)
				}
			case "timeout":
				if r.err == nil {
					t.Fatal("Dial connected to a peer that takes no Raft streams")
				}
				if took < tc.timeout {
					t.Errorf("Dial gave up after %s, before its timeout of %s", took, tc.timeout)
				}
			}
		})
	}
}
