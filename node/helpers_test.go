package node

import (
	"math/rand/v2"

	"github.com/libp2p/go-libp2p/core/peer"
)

// randomBytes returns n bytes that depend only on seed (each test package
// of the module has its own copy: test helpers are not exported).
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// admitEachOther lets two single nodes (each the only member of its own
// catalog) use each other's mesh protocols, as members of one mesh do.
func admitEachOther(a, b *Node) {
	a.admit.SetMember(func(p peer.ID) bool { return p == b.peerID || a.roster.Has(p) })
	b.admit.SetMember(func(p peer.ID) bool { return p == a.peerID || b.roster.Has(p) })
}
