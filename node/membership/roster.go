package membership

import (
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Roster is the set of peers admitted to the mesh: the members that the
// local catalog lists and, until the node has caught up with the leader,
// the seeds: the members it was told of at join or saved in its repo at
// its last run. A node that is behind may not know the current leader
// from its own catalog yet, and must let it in to be sent the log. Reads
// are lock-free: the set is checked for every stream.
type Roster struct {
	self peer.ID
	mu   sync.Mutex // serialises updates
	set  atomic.Pointer[map[peer.ID]struct{}]
	// seeds are admitted until the node has caught up (Seed(nil)).
	seeds   map[peer.ID]struct{}
	members map[peer.ID]struct{}
}

// NewRoster returns a roster that always admits self and nobody else yet.
func NewRoster(self peer.ID) *Roster {
	r := &Roster{self: self}
	r.publish()
	return r
}

// Has reports whether p is admitted.
func (r *Roster) Has(p peer.ID) bool {
	_, ok := (*r.set.Load())[p]
	return ok
}

// Seed sets the peers admitted besides the catalog's members: those
// saved at the last run or given at join, until the node has caught up
// with the leader, when Seed(nil) leaves the catalog alone to decide. It
// returns the peers no longer admitted, as SetMembers does.
func (r *Roster) Seed(ids []string) (dropped []peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.update(func() { r.seeds = decodeSet(ids) })
}

// SetMembers sets the catalog's members and returns the peers that were
// admitted before and are not any more: their connections are to be
// closed at once.
func (r *Roster) SetMembers(ids []string) (dropped []peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.update(func() { r.members = decodeSet(ids) })
}

// update applies change and returns who is admitted no more; r.mu is
// held.
func (r *Roster) update(change func()) (dropped []peer.ID) {
	before := *r.set.Load()
	change()
	r.publish()
	after := *r.set.Load()
	for p := range before {
		if _, ok := after[p]; !ok {
			dropped = append(dropped, p)
		}
	}
	return dropped
}

// publish computes the admitted set; r.mu is held (or r is new).
func (r *Roster) publish() {
	set := make(map[peer.ID]struct{}, len(r.members)+len(r.seeds)+1)
	for p := range r.members {
		set[p] = struct{}{}
	}
	for p := range r.seeds {
		set[p] = struct{}{}
	}
	set[r.self] = struct{}{}
	r.set.Store(&set)
}

func decodeSet(ids []string) map[peer.ID]struct{} {
	set := make(map[peer.ID]struct{}, len(ids))
	for _, s := range ids {
		if p, err := peer.Decode(s); err == nil {
			set[p] = struct{}{}
		}
	}
	return set
}
