package node

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh/mesh"
)

// raftRole is what p may do in this node's Raft, for the gate on Raft
// streams (mesh.StreamLayer): it reads the latest Raft configuration,
// uncommitted entries included. raft.GetConfiguration in hashicorp/raft
// v1.8.0 is not a round trip through raft's main loop: it loads the
// latest configuration from an atomic.Value and copies its server list,
// so it is called for every stream and every RPC rather than cached
// (a cache would only add a window in which a removed server is still
// heard).
//
//   - A server of the configuration may open Raft streams. A voter may
//     send the RPCs that claim to lead; a nonvoter may not (a nonvoter's
//     key is one of the many a large mesh has, while only its few voters'
//     keys can lead it).
//   - A node whose configuration is empty takes Raft, leader's RPCs
//     included, from the peers membership.Manager.MayLeadUnconfigured
//     names: a fresh joiner, once the join answer came, from the voters
//     it named; before that, or a member whose catalog state is gone,
//     from the peers it admits (the members it was told of at join or
//     saved in peers.json), as admission already does until the node has
//     caught up. It cannot tell a leader from anyone else before it has a
//     configuration, and a member that is no voter could feed it a forged
//     log in that window if it came before the join answer's voters.
//   - Until it has caught up with the leader since it started, a node
//     lets a peer that is not a voter of its configuration (a nonvoter,
//     or a server it does not know yet) lead it only when it is one of
//     the voters it took from its join (JoinTrusted: a joiner replays the
//     log from the start, and an early configuration does not list the
//     servers that joined later), or once a majority of the voters of its
//     configuration name that peer as their leader, and only up to the
//     term they name (membership.Manager.VouchedLeader). Its
//     configuration may lag: the leader may have joined, or been
//     promoted from nonvoter, while this node was down, and the entry
//     that says so is exactly what this node cannot get from anyone but
//     the leader. Taking the peer's word for it instead would let any
//     member's key feed a lagging voter a forged log with a higher term,
//     make the real leader step down, and have the lagging voter win the
//     next election and replicate the forgery to all (the last log term
//     decides elections). The vouch is asked in the background: the
//     first leader RPCs are refused and raft's retry passes once vouched.
//
// What stays weak: a node that is running and caught up, then falls
// behind a promotion while cut off (without restarting), refuses the
// promoted leader until leadership moves to a voter it knows or it
// restarts; the refusals show in artmesh_raft_rpcs_refused_total
// (reason not_voter).
func (n *Node) raftRole(p peer.ID, term uint64) mesh.RaftRole {
	r := n.raftRef.Load()
	if r == nil {
		return mesh.RaftNotReady
	}
	return raftRoleOf(p, n.peerID, r.GetConfiguration().Configuration().Servers, n.members.MayLeadUnconfigured,
		n.caughtUp.Load(), term, n.members.VouchedLeader, n.members.JoinTrusted)
}

// raftRoleOf is raftRole's rule: what p, sending an RPC that claims to
// lead at term (0: opening a stream, or any other RPC), is to node self,
// whose latest configuration lists servers, that takes Raft from the
// peers admitted says while that configuration is empty, has (or has not
// yet) caught up with the leader since it started, and while catching up
// lets a peer that is not a voter of its configuration lead it when
// joinTrusted or vouched (a majority of its voters named it) says so.
func raftRoleOf(p, self peer.ID, servers []raft.Server, admitted func(peer.ID) bool, caughtUp bool,
	term uint64, vouched func(peer.ID, uint64) bool, joinTrusted func(peer.ID) bool) mesh.RaftRole {
	if p == self {
		return mesh.RaftNone
	}
	if len(servers) == 0 {
		if admitted(p) || !caughtUp && vouched(p, term) {
			return mesh.RaftVoter
		}
		return mesh.RaftNone
	}
	id := raft.ServerID(p.String())
	role := mesh.RaftNone
	for _, s := range servers {
		if s.ID == id {
			role = mesh.RaftServer
			if s.Suffrage == raft.Voter {
				return mesh.RaftVoter
			}
		}
	}
	if !caughtUp && (joinTrusted(p) || vouched(p, term)) {
		return mesh.RaftVoter
	}
	return role
}

// nonvoterPace is how often, on average, the leader sends a member
// without a vote the entries that came since its last send
// (mesh.PacedTransport): under a steady write load a nonvoter takes them
// in batches (one log append and one state commit each), and learns of a
// commit up to this much later than a voter. A lone write and its commit
// notice go at once, and a member that forwarded a write gets it and its
// commit unpaced (mesh.PacedTransport.Expedite), so this bounds only how
// late a member sees other members' writes. Measured on 30 nodes on 2
// cores, 8 clients: 54 ms of the mesh's CPU a create unpaced, 37 ms at
// 100 ms (before expediting, which made the writers' latency independent
// of it).
const nonvoterPace = 250 * time.Millisecond

// nonvoterBeat is how often, at most, the leader heartbeats a member
// without a vote (mesh.PacedTransport.BeatEvery): about three times in
// the HeartbeatTimeout (1 s) after which it would forget its leader,
// where raft would send seven to ten.
const nonvoterBeat = 350 * time.Millisecond

// nonvoter reports whether id is a server of this node's latest Raft
// configuration without a vote: the leader paces its replication and its
// heartbeats to it. (The configuration is an atomic load; see raftRole.)
func (n *Node) nonvoter(id raft.ServerID) bool {
	r := n.raftRef.Load()
	if r == nil {
		return false
	}
	for _, s := range r.GetConfiguration().Configuration().Servers {
		if s.ID == id {
			return s.Suffrage != raft.Voter
		}
	}
	return false
}
