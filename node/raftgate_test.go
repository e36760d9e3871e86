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
// nonvoters only until the node has caught up and only once a majority
// of its voters vouched for them up to the RPC's term, peers outside the
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
	// The voters vouched for the nonvoter as their leader up to term 7.
	var asked []peer.ID
	vouched := func(p peer.ID, term uint64) bool {
		asked = append(asked, p)
		return p == nonvoter && term > 0 && term <= 7
	}
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
		{"nonvoter while catching up, not a leader's RPC", nonvoter, servers, false, 0, mesh.RaftServer},
		{"member that is no server", member, servers, true, 1, mesh.RaftNone},
		{"member that is no server, while catching up", member, servers, false, 1, mesh.RaftNone},
		{"stranger", stranger, servers, false, 1, mesh.RaftNone},
		{"itself", self, servers, true, 1, mesh.RaftNone},
		{"no configuration: a member it admits", member, nil, false, 1, mesh.RaftVoter},
		{"no configuration: a stranger", stranger, nil, false, 1, mesh.RaftNone},
	} {
		if got := raftRoleOf(tc.p, self, tc.servers, admitted, tc.caughtUp, tc.term, vouched); got != tc.want {
			t.Errorf("%s: role %d, want %d", tc.name, got, tc.want)
		}
	}
	// Only a nonvoter's leader RPC while catching up asks for a vouch.
	for _, p := range asked {
		if p != nonvoter {
			t.Errorf("asked for a vouch for %s, which is not the nonvoter", p)
		}
	}
	if len(asked) != 3 {
		t.Errorf("asked for a vouch %d times, want 3", len(asked))
	}
}
