package membership

import (
	"crypto/rand"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func newPeer(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRoster(t *testing.T) {
	self, a, b, c := newPeer(t), newPeer(t), newPeer(t), newPeer(t)
	r := NewRoster(self)
	check := func(step string, want map[peer.ID]bool) {
		t.Helper()
		for p, ok := range want {
			if r.Has(p) != ok {
				t.Errorf("%s: Has(%s) = %v, want %v", step, p, !ok, ok)
			}
		}
	}
	check("new", map[peer.ID]bool{self: true, a: false, b: false})

	// A joiner admits the members it was told of until its catalog lists
	// any.
	r.Seed([]string{a.String(), "not a peer id"})
	check("seeded", map[peer.ID]bool{self: true, a: true, b: false})

	// Seeds stay admitted besides the members until the node has caught
	// up: the catalog it has may not list the current leader yet.
	if dropped := r.SetMembers([]string{self.String(), b.String()}); len(dropped) != 0 {
		t.Errorf("dropped %v while seeded", dropped)
	}
	check("members and seeds", map[peer.ID]bool{self: true, a: true, b: true, c: false})
	// Caught up: the catalog alone decides, and the seed that is not a
	// member is cut off at the next update.
	if dropped := r.Seed(nil); !slices.Equal(dropped, []peer.ID{a}) {
		t.Errorf("dropped %v, want [a]", dropped)
	}
	check("members", map[peer.ID]bool{self: true, a: false, b: true, c: false})

	// A removed member is reported once, to be cut off.
	if dropped := r.SetMembers([]string{self.String(), c.String()}); !slices.Equal(dropped, []peer.ID{b}) {
		t.Errorf("dropped %v, want [b]", dropped)
	}
	if dropped := r.SetMembers([]string{self.String(), c.String()}); len(dropped) != 0 {
		t.Errorf("no change dropped %v", dropped)
	}
	check("removed", map[peer.ID]bool{self: true, b: false, c: true})
}
