package catalog

import (
	"errors"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

// TestAuthorizeForwarded walks the leader's rules for forwarded writes:
// each write of the security trial (an admin agent with a chosen key,
// another agent's key, a hidden member, an invite), forwarded with no
// credential, with an ordinary agent's, with a node agent's and with a
// mesh admin's; a node's own rows only from that node.
func TestAuthorizeForwarded(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	h.agent("bob", "team")
	h.must(CreateAgent{Agent: artmesh.Agent{ID: "root", Admin: true, CreatedAt: testBase}})
	a := h.create("alice", "x", "text/plain", nil)
	h.must(shareCmd{ID: a.ID, Groups: []string{"team"}})
	h.must(PutMember{Member: Member{PeerID: "peerA", Agent: "node-a"}})
	h.must(PutMember{Member: Member{PeerID: "peerB", Agent: "node-b"}})
	now := testBase.Add(time.Hour)

	admin := &Principal{Agent: artmesh.Agent{ID: "root", Admin: true}}
	alice := &Principal{Agent: artmesh.Agent{ID: "alice"}}
	bob := &Principal{Agent: artmesh.Agent{ID: "bob", Groups: []string{"team"}}}
	nodeA := &Principal{Agent: artmesh.Agent{ID: "node-a", Node: "peerA"}}
	upload := &Principal{Agent: artmesh.Agent{ID: "alice"}, Upload: "upl_1"}

	later := now.Add(2 * clockSlack)
	tests := []struct {
		name string
		cmd  command
		from string
		p    *Principal
		ok   bool
	}{
		// Writes that act for an agent need its credential.
		{"admin agent, no credential", CreateAgent{Agent: artmesh.Agent{ID: "evil", Admin: true}, KeyHash: "k"}, "peerA", nil, false},
		{"admin agent, ordinary agent", CreateAgent{Agent: artmesh.Agent{ID: "evil", Admin: true}, KeyHash: "k"}, "peerA", alice, false},
		{"admin agent, node agent", CreateAgent{Agent: artmesh.Agent{ID: "evil", Admin: true}, KeyHash: "k"}, "peerA", nodeA, false},
		{"node agent, node agent", CreateAgent{Agent: artmesh.Agent{ID: "evil", Node: "peerZ"}}, "peerA", nodeA, false},
		{"admin agent, mesh admin", CreateAgent{Agent: artmesh.Agent{ID: "ok", Admin: true, CreatedAt: now}}, "peerA", admin, true},
		{"ordinary agent, node agent", CreateAgent{Agent: artmesh.Agent{ID: "carol", CreatedAt: now}}, "peerA", nodeA, true},
		{"ordinary agent, ordinary agent", CreateAgent{Agent: artmesh.Agent{ID: "carol"}}, "peerA", alice, false},
		{"alice's key, node agent", setAgentKeyCmd{ID: "alice", KeyHash: "forged"}, "peerA", nodeA, false},
		{"alice's key, no credential", setAgentKeyCmd{ID: "alice", KeyHash: "forged"}, "peerA", nil, false},
		{"alice's key, mesh admin", setAgentKeyCmd{ID: "alice", KeyHash: "new"}, "peerA", admin, true},
		{"invite, no credential", CreateInvite{Invite: Invite{SecretHash: "s", CreatedBy: "node-a"}}, "peerA", nil, false},
		{"invite, node agent", CreateInvite{Invite: Invite{SecretHash: "s", CreatedBy: "node-a"}}, "peerA", nodeA, false},
		{"invite, admin in another's name", CreateInvite{Invite: Invite{SecretHash: "s", CreatedBy: "node-a"}}, "peerA", admin, false},
		{"invite, mesh admin", CreateInvite{Invite: Invite{SecretHash: "s", CreatedBy: "root"}}, "peerA", admin, true},
		{"policy, node agent", setPolicyCmd{Policy: DefaultPolicy}, "peerA", nodeA, false},
		{"policy, mesh admin", setPolicyCmd{Policy: DefaultPolicy}, "peerA", admin, true},
		{"own quota, ordinary agent", setQuotaCmd{Agent: "alice", Quota: artmesh.Quota{Bytes: artmesh.Unlimited}}, "peerA", alice, false},
		{"quota, node agent", setQuotaCmd{Agent: "alice", Quota: artmesh.Quota{Bytes: artmesh.Unlimited}}, "peerA", nodeA, false},
		{"quota defaults, no credential", setQuotaCmd{Quota: artmesh.Quota{Bytes: artmesh.Unlimited}}, "peerA", nil, false},
		{"quota, mesh admin", setQuotaCmd{Agent: "alice", Quota: artmesh.Quota{Bytes: 10}}, "peerA", admin, true},
		{"quota defaults, mesh admin", setQuotaCmd{Quota: artmesh.Quota{Bytes: 10}}, "peerA", admin, true},
		{"remove a member, node agent", deleteMemberCmd{PeerID: "peerB"}, "peerA", nodeA, false},
		{"a node leaves", deleteMemberCmd{PeerID: "peerA"}, "peerA", nodeA, true},
		{"remove a member, mesh admin", deleteMemberCmd{PeerID: "peerB"}, "peerA", admin, true},
		// Artifacts: the rights of the agent.
		{"create as another", CreateArtifact{ID: "art_01JD0000000000000000000001", Owner: "alice", CID: "c"}, "peerA", bob, false},
		{"create as itself", CreateArtifact{ID: "art_01JD0000000000000000000001", Owner: "bob", CID: "c"}, "peerA", bob, true},
		{"update, reader", AddVersion{ArtifactID: a.ID, By: "bob", CID: "c"}, "peerA", bob, false},
		{"update, owner", AddVersion{ArtifactID: a.ID, By: "alice", CID: "c"}, "peerA", alice, true},
		{"update in another's name", AddVersion{ArtifactID: a.ID, By: "alice", CID: "c"}, "peerA", bob, false},
		{"delete, reader", deleteArtifactCmd{ID: a.ID}, "peerA", bob, false},
		{"delete, mesh admin not owner", deleteArtifactCmd{ID: a.ID}, "peerA", admin, false},
		{"share, reader", shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob"}}, "peerA", bob, false},
		{"share, owner", shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob"}}, "peerA", alice, true},
		{"signed URL, reader", issueTokenCmd{Token: Token{ID: "t1", Agent: "bob", Target: string(a.ID), Issuer: "peerA"}}, "peerA", bob, true},
		{"signed URL another member signs", issueTokenCmd{Token: Token{ID: "t1", Agent: "bob", Target: string(a.ID), Issuer: "peerB"}}, "peerA", bob, false},
		{"signed URL in another's name", issueTokenCmd{Token: Token{ID: "t1", Agent: "alice", Target: string(a.ID)}}, "peerA", bob, false},
		{"an upload token may only upload", CreateArtifact{ID: "art_01JD0000000000000000000001", Owner: "alice", CID: "c"}, "peerA", upload, false},
		// A node's own rows, only from that node.
		{"own member row", PutMember{Member: Member{PeerID: "peerA", Agent: "node-a", APIURL: "x"}}, "peerA", nil, true},
		{"hidden member", PutMember{Member: Member{PeerID: "peerZ"}}, "peerA", nil, false},
		{"another's member row", PutMember{Member: Member{PeerID: "peerB", Agent: "node-b"}}, "peerA", nil, false},
		{"own row, other agent", PutMember{Member: Member{PeerID: "peerA", Agent: "root"}}, "peerA", nil, false},
		{"own holder row", addHolderCmd{CID: "c", Peer: "peerA"}, "peerA", nil, true},
		{"another's holder row", addHolderCmd{CID: "c", Peer: "peerB"}, "peerA", nil, false},
		{"another's holder row dropped", removeHolderCmd{CID: "c", Peer: "peerB"}, "peerA", nil, false},
		{"own pin", putPinCmd{Pin: Pin{Node: "peerA", ArtifactID: a.ID}}, "peerA", nil, true},
		{"a pin on another", putPinCmd{Pin: Pin{Node: "peerB", ArtifactID: a.ID}}, "peerA", nil, false},
		{"join, forwarded", ConsumeInvite{SecretHash: "s", PeerID: "peerA"}, "peerA", admin, false},
		{"placement, forwarded", PlacementUpdate{}, "peerA", admin, false},
		{"expiry, forwarded", expireUploadsCmd{At: now}, "peerA", nil, false},
		{"token purge, forwarded", purgeTokensCmd{Before: now}, "peerA", nil, false},
		{"stale fetching rows of another", dropFetchingCmd{Rows: []Fetching{{CID: "c", Peer: "peerB"}}, Before: now.Add(-FetchingStale)}, "peerA", nil, true},
		{"fresh fetching rows of another", dropFetchingCmd{Rows: []Fetching{{CID: "c", Peer: "peerB"}}, Before: later}, "peerA", nil, false},
		{"agent back-dated", CreateAgent{Agent: artmesh.Agent{ID: "carol", CreatedAt: now.Add(-time.Hour)}}, "peerA", admin, false},
		{"agent into an existing group, node agent", CreateAgent{Agent: artmesh.Agent{ID: "carol", Groups: []string{"team"}, CreatedAt: now}}, "peerA", nodeA, false},
		{"agent into a new group, node agent", CreateAgent{Agent: artmesh.Agent{ID: "carol", Groups: []string{"new"}, CreatedAt: now}, NewGroupsOnly: true}, "peerA", nodeA, true},
		{"agent into a new group, node agent, not new-only", CreateAgent{Agent: artmesh.Agent{ID: "carol", Groups: []string{"new"}, CreatedAt: now}}, "peerA", nodeA, false},
		{"existing group, node agent", putGroupCmd{Name: "team", Members: []artmesh.AgentID{"node-a"}}, "peerA", nodeA, false},
		{"new group, node agent", putGroupCmd{Name: "new", CreateOnly: true}, "peerA", nodeA, true},
		{"new group, node agent, not create-only", putGroupCmd{Name: "new"}, "peerA", nodeA, false},
		{"existing group, mesh admin", putGroupCmd{Name: "team"}, "peerA", admin, true},
		{"delete a group, node agent", deleteGroupCmd{Name: "team"}, "peerA", nodeA, false},
		{"noop", noopCmd{}, "peerA", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := encodeCommand(tt.cmd)
			if err != nil {
				t.Fatal(err)
			}
			err = h.st().authorizeForwarded(wrapForwarded(data, now), tt.from, tt.p, now)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, artmesh.PermissionDenied) {
				t.Fatalf("got %v, want permission denied", err)
			}
		})
	}
}

// TestCreateOnlyAtApply: the state machine itself refuses a create-only
// group that exists by the time it applies, and an agent made in new
// groups only when one of them exists, and changes nothing: the leader's
// check before the log cannot see a write that lands first.
func TestCreateOnlyAtApply(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	h.must(putGroupCmd{Name: "team", Members: []artmesh.AgentID{"alice"}})
	if _, err := h.apply(putGroupCmd{Name: "team", Members: []artmesh.AgentID{}, CreateOnly: true}); !errors.Is(err, artmesh.PermissionDenied) {
		t.Fatalf("create-only of an existing group: %v", err)
	}
	if g, err := h.st().group("team"); err != nil || len(g.Members) != 1 {
		t.Fatalf("the group changed: %+v %v", g, err)
	}
	if _, err := h.apply(CreateAgent{Agent: artmesh.Agent{ID: "spy", Groups: []string{"fresh", "team"}, CreatedAt: testBase}, NewGroupsOnly: true}); !errors.Is(err, artmesh.PermissionDenied) {
		t.Fatalf("an agent made in new groups only, one existing: %v", err)
	}
	if _, err := h.st().agent("spy"); !errors.Is(err, artmesh.NotFound) {
		t.Fatalf("the agent was made: %v", err)
	}
	if _, err := h.st().group("fresh"); !errors.Is(err, artmesh.NotFound) {
		t.Fatalf("the new group was made: %v", err)
	}
	h.must(putGroupCmd{Name: "crew", CreateOnly: true})
	h.must(CreateAgent{Agent: artmesh.Agent{ID: "worker", Groups: []string{"other"}, CreatedAt: testBase}, NewGroupsOnly: true})
}
