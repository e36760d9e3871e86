package node

import (
	"crypto/rand"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh/mesh"
)

func newPeerID(t *testing.T) peer.ID {
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

// TestRaftRoleOf checks the rule the Raft gate asks: voters may lead;
// while the node catches up, a peer that is not a voter of its
// configuration (a nonvoter, or a server it does not know yet) only when
// it is a voter the node took from its join, or a majority of its voters
// vouched for it up to the RPC's term; once caught up, never; and a node
// without a configuration takes Raft from the peers it admits.
func TestRaftRoleOf(t *testing.T) {
	self, voter, nonvoter, member, stranger := newPeerID(t), newPeerID(t), newPeerID(t), newPeerID(t), newPeerID(t)
	joinedLeader, newLeader := newPeerID(t), newPeerID(t)
	servers := []raft.Server{
		{ID: raft.ServerID(self.String()), Address: raft.ServerAddress(self.String()), Suffrage: raft.Voter},
		{ID: raft.ServerID(voter.String()), Address: raft.ServerAddress(voter.String()), Suffrage: raft.Voter},
		{ID: raft.ServerID(nonvoter.String()), Address: raft.ServerAddress(nonvoter.String()), Suffrage: raft.Nonvoter},
	}
	admitted := func(p peer.ID) bool { return p == voter || p == nonvoter || p == member }
	// The voters vouched for the nonvoter as their leader up to term 7.
	var asked []peer.ID
	vouched := func(p peer.ID, term uint64) bool {
		asked = append(asked, p)
		return (p == nonvoter || p == newLeader) && term <= 7
	}
	joinTrusted := func(p peer.ID) bool { return p == joinedLeader }
	for _, tc := range []struct {
		name     string
		p        peer.ID
		servers  []raft.Server
		caughtUp bool
		term     uint64
		want     mesh.RaftRole
	}{
		{"voter", voter, servers, true, 9, mesh.RaftVoter},
		{"voter, not a leader's RPC", voter, servers, true, 0, mesh.RaftVoter},
		{"nonvoter", nonvoter, servers, true, 5, mesh.RaftServer},
		{"nonvoter while catching up, vouched term", nonvoter, servers, false, 7, mesh.RaftVoter},
		{"nonvoter while catching up, lower term", nonvoter, servers, false, 5, mesh.RaftVoter},
		// A higher term than vouched: the forged log's.
		{"nonvoter while catching up, higher term", nonvoter, servers, false, 8, mesh.RaftServer},
		{"nonvoter while catching up, a stream", nonvoter, servers, false, 0, mesh.RaftVoter},
		// The leader joined after the configuration this node has so far.
		{"unknown leader vouched while catching up", newLeader, servers, false, 7, mesh.RaftVoter},
		{"unknown leader vouched while catching up, its stream", newLeader, servers, false, 0, mesh.RaftVoter},
		{"unknown leader vouched, higher term", newLeader, servers, false, 8, mesh.RaftNone},
		{"unknown leader, caught up", newLeader, servers, true, 7, mesh.RaftNone},
		{"a voter from the join, while catching up", joinedLeader, servers, false, 9, mesh.RaftVoter},
		{"a voter from the join, caught up", joinedLeader, servers, true, 9, mesh.RaftNone},
		{"member that is no server", member, servers, true, 1, mesh.RaftNone},
		{"member that is no server, while catching up", member, servers, false, 1, mesh.RaftNone},
		{"stranger", stranger, servers, false, 1, mesh.RaftNone},
		{"itself", self, servers, true, 1, mesh.RaftNone},
		{"no configuration: a member it admits", member, nil, false, 1, mesh.RaftVoter},
		{"no configuration: a stranger", stranger, nil, false, 1, mesh.RaftNone},
		{"no configuration: a leader the join's voters name", newLeader, nil, false, 7, mesh.RaftVoter},
	} {
		if got := raftRoleOf(tc.p, self, tc.servers, admitted, tc.caughtUp, tc.term, vouched, joinTrusted); got != tc.want {
			t.Errorf("%s: role %d, want %d", tc.name, got, tc.want)
		}
	}
	// A node that has caught up asks nobody; nor does one about a voter.
	asked = nil
	for _, p := range []peer.ID{voter, nonvoter, newLeader, member} {
		raftRoleOf(p, self, servers, admitted, true, 5, vouched, joinTrusted)
	}
	raftRoleOf(voter, self, servers, admitted, false, 5, vouched, joinTrusted)
	if len(asked) != 0 {
		t.Errorf("asked for a vouch %d times, want none", len(asked))
	}
}
