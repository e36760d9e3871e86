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

// TestRaftRoleOf checks the rule the Raft gate asks: voters may lead,
// nonvoters only until the node has caught up, peers outside the
// configuration never, and a node without a configuration takes Raft
// from the peers it admits (the members it was told of at join).
func TestRaftRoleOf(t *testing.T) {
	self, voter, nonvoter, member, stranger := newPeerID(t), newPeerID(t), newPeerID(t), newPeerID(t), newPeerID(t)
	servers := []raft.Server{
		{ID: raft.ServerID(self.String()), Address: raft.ServerAddress(self.String()), Suffrage: raft.Voter},
		{ID: raft.ServerID(voter.String()), Address: raft.ServerAddress(voter.String()), Suffrage: raft.Voter},
		{ID: raft.ServerID(nonvoter.String()), Address: raft.ServerAddress(nonvoter.String()), Suffrage: raft.Nonvoter},
	}
	admitted := func(p peer.ID) bool { return p == voter || p == nonvoter || p == member }
	for _, tc := range []struct {
		name     string
		p        peer.ID
		servers  []raft.Server
		caughtUp bool
		want     mesh.RaftRole
	}{
		{"voter", voter, servers, true, mesh.RaftVoter},
		{"nonvoter", nonvoter, servers, true, mesh.RaftServer},
		{"nonvoter while catching up", nonvoter, servers, false, mesh.RaftVoter},
		{"member that is no server", member, servers, true, mesh.RaftNone},
		{"member that is no server, while catching up", member, servers, false, mesh.RaftNone},
		{"stranger", stranger, servers, false, mesh.RaftNone},
		{"itself", self, servers, true, mesh.RaftNone},
		{"no configuration: a member it admits", member, nil, false, mesh.RaftVoter},
		{"no configuration: a stranger", stranger, nil, false, mesh.RaftNone},
	} {
		if got := raftRoleOf(tc.p, self, tc.servers, admitted, tc.caughtUp); got != tc.want {
			t.Errorf("%s: role %d, want %d", tc.name, got, tc.want)
		}
	}
}
