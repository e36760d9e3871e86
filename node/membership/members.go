package membership

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/repo"
)

// MemberInfo is a member as the API shows it.
type MemberInfo struct {
	PeerID    string   `json:"peer_id"`
	Addresses []string `json:"addresses"`
	APIURL    string   `json:"api_url"`
	Role      string   `json:"role"` // voter, nonvoter, or left (no longer in Raft)
	Reachable bool     `json:"reachable"`
	Leader    bool     `json:"leader"`
	// BytesHeld is the content this member holds for the mesh (recorded
	// holder of), counted once per version's CID.
	BytesHeld int64 `json:"bytes_held"`
	// UnderReplicated counts the live versions in the member's
	// allocation (its holders' while none is recorded) with fewer copies
	// (allocated members that hold them) than their factor, as the
	// catalog records it: an unreachable holder counts once the leader
	// has replaced it.
	UnderReplicated int `json:"under_replicated"`
}

// Members lists the mesh's members with their roles and whether this node
// reaches them now.
func (m *Manager) Members() ([]MemberInfo, error) {
	servers, err := m.cfg.Catalog.Servers()
	if err != nil {
		return nil, err
	}
	members, err := m.cfg.Catalog.Members()
	if err != nil {
		return nil, err
	}
	byID := map[string]catalog.Member{}
	for _, mb := range members {
		byID[mb.PeerID] = mb
	}
	held, under := map[string]int64{}, map[string]int{}
	if m.cfg.Placement != nil {
		held, under = m.cfg.Placement(len(members))
	}
	var out []MemberInfo
	for _, s := range servers {
		mb := byID[s.ID]
		role := "nonvoter"
		if s.Voter {
			role = "voter"
		}
		mi := MemberInfo{PeerID: s.ID, Addresses: mb.Addresses, APIURL: mb.APIURL, Role: role, Leader: s.Leader,
			BytesHeld: held[s.ID], UnderReplicated: under[s.ID]}
		if s.ID == m.cfg.Self.String() {
			mi.Reachable = true
		} else if id, err := peer.Decode(s.ID); err == nil {
			mi.Reachable = m.cfg.Host.Network().Connectedness(id) == network.Connected
		}
		if mi.Addresses == nil {
			mi.Addresses = []string{}
		}
		out = append(out, mi)
		delete(byID, s.ID)
	}
	// Every catalog member is listed, Raft server or not: a row that
	// Raft does not know (a member that left half-way, or one written
	// behind the operator's back) admits its peer to the mesh, so the
	// operator must see it, and can remove it.
	rest := make([]string, 0, len(byID))
	for id := range byID {
		rest = append(rest, id)
	}
	slices.Sort(rest)
	for _, id := range rest {
		mb := byID[id]
		mi := MemberInfo{PeerID: id, Addresses: mb.Addresses, APIURL: mb.APIURL, Role: "left", BytesHeld: held[id], UnderReplicated: under[id]}
		if pid, err := peer.Decode(id); err == nil {
			mi.Reachable = m.cfg.Host != nil && m.cfg.Host.Network().Connectedness(pid) == network.Connected
		}
		if mi.Addresses == nil {
			mi.Addresses = []string{}
		}
		out = append(out, mi)
	}
	return out, nil
}

// Invite is a fresh invite ticket.
type Invite struct {
	Ticket    string    `json:"ticket"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateInvite makes a one-time ticket for a new node, recorded in the
// catalog as made by the agent by and lasting life. The caller has
// checked that by may.
func (m *Manager) CreateInvite(ctx context.Context, by artmesh.AgentID, life time.Duration) (Invite, error) {
	secret := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, secret); err != nil {
		return Invite{}, err
	}
	s := hex.EncodeToString(secret)
	exp := time.Now().UTC().Add(life).Truncate(time.Second)
	if err := m.cfg.Catalog.CreateInvite(ctx, catalog.Invite{SecretHash: acl.HashKey(s), CreatedBy: by, ExpiresAt: exp}); err != nil {
		return Invite{}, err
	}
	var addrs []string
	for _, a := range m.ownAddrs() {
		addrs = append(addrs, a+"/p2p/"+m.cfg.Self.String())
	}
	t := repo.Ticket{Addrs: addrs, Secret: s, Voters: m.cfg.Voters}
	if servers, err := m.cfg.Catalog.Servers(); err == nil {
		for _, sv := range servers {
			if sv.Voter {
				t.Leaders = append(t.Leaders, sv.ID)
			}
		}
	}
	if m.cfg.MeshKey != (mesh.Key{}) {
		t.Key = m.cfg.MeshKey.String()
	}
	return Invite{Ticket: t.String(), ExpiresAt: exp}, nil
}

// Remove takes a node out of the mesh: out of Raft and the members (the
// reconciler of every node then cuts it off). A node removing itself
// leaves. The caller has checked that it may.
func (m *Manager) Remove(ctx context.Context, peerID string) error {
	servers, err := m.cfg.Catalog.Servers()
	if err != nil {
		return err
	}
	known := false
	for _, s := range servers {
		known = known || s.ID == peerID
	}
	if _, err := m.cfg.Catalog.Member(peerID); err != nil && !known {
		return artmesh.E(artmesh.NotFound, fmt.Sprintf("%s is not a member", peerID))
	}
	if known && len(servers) == 1 {
		return artmesh.E(artmesh.Conflict, "the last member cannot leave its own mesh")
	}
	if peerID == m.cfg.Self.String() && m.cfg.Catalog.IsLeader() {
		// A leader that removed itself would step down half-way; hand the
		// leadership over first, and have the new leader do it.
		if err := m.cfg.Catalog.TransferLeadership(ctx); err != nil {
			return artmesh.E(artmesh.Unavailable, "handing the catalog's leadership to another member before leaving", err)
		}
	}
	if m.cfg.Catalog.IsLeader() {
		return m.removeHere(ctx, peerID)
	}
	// The leader takes it out of Raft and the members. This node does not
	// wait to apply that itself: a node that leaves never will. A leader
	// elected a moment ago (after a handover) may refuse a change of Raft's
	// configuration until its first entry is committed, so the request is
	// sent again for a few seconds.
	req, err := json.Marshal(removeRequest{PeerID: peerID, Credential: catalog.CredentialOf(ctx)})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(removeRetry)
	for {
		_, err := m.cfg.CallLeader(ctx, RemoveProtocol, req)
		if err == nil || m.outOfRaft(peerID) {
			// The leader may have done it and lost the answer: once a
			// member is out, the leader cuts it off, and a node that
			// leaves may see its stream reset before the reply. The
			// leader sends the configuration that leaves it out to the
			// removed server too, so this node's own view tells.
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return artmesh.E(artmesh.Unavailable, "the leader did not remove the member", err)
		}
		m.cfg.Log.Info("the leader refused a removal; asking again", "member", peerID, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// outOfRaft reports whether this node's latest Raft configuration no
// longer lists peerID.
func (m *Manager) outOfRaft(peerID string) bool {
	if _, gone := m.Removed(); gone && peerID == m.cfg.Self.String() {
		return true // found out already, and stopped its Raft
	}
	servers, err := m.cfg.Catalog.Servers()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if s.ID == peerID {
			return false
		}
	}
	return true
}

// removeRetry is how long a removal is sent again to a leader that
// refuses it.
const removeRetry = 10 * time.Second

// removeHere, on the leader, takes a member out of Raft and out of the
// members.
func (m *Manager) removeHere(ctx context.Context, peerID string) error {
	servers, err := m.cfg.Catalog.Servers()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if s.ID == peerID {
			if err := m.cfg.Catalog.RemoveServer(ctx, peerID); err != nil {
				return err
			}
		}
	}
	if err := m.cfg.Catalog.DeleteMember(ctx, peerID); err != nil && !errors.Is(err, artmesh.NotFound) {
		return err
	}
	return nil
}

// RemoveProtocol asks the leader to take a member out of Raft and out of
// the members.
const RemoveProtocol protocol.ID = "/artmesh/remove/1.0.0"

// removeRequest asks the leader to remove a member, with the credential
// of the agent that asks.
type removeRequest struct {
	PeerID     string             `json:"peer_id"`
	Credential catalog.Credential `json:"credential,omitzero"`
}

// ServeRemove takes a member out of Raft and the members for another
// member, as the handler of RemoveProtocol on the leader. Being a member
// is not enough: the request carries the credential of the agent that
// asked, which must be a mesh admin's, or the leaving node's own agent's
// when a node leaves.
func (m *Manager) ServeRemove(ctx context.Context, from peer.ID, data []byte) ([]byte, error) {
	if _, err := m.cfg.Catalog.Member(from.String()); err != nil {
		return nil, artmesh.E(artmesh.PermissionDenied, "only members may remove members")
	}
	if !m.cfg.Catalog.IsLeader() {
		return nil, artmesh.E(artmesh.Unavailable, "not the leader")
	}
	var req removeRequest
	if err := json.Unmarshal(data, &req); err != nil || req.PeerID == "" {
		return nil, artmesh.E(artmesh.Invalid, "malformed removal request")
	}
	if err := m.mayRemove(ctx, from, req); err != nil {
		m.log.Warn("refused a removal", "member", from, "removing", req.PeerID, "err", err)
		return nil, err
	}
	return nil, m.removeHere(ctx, req.PeerID)
}

// mayRemove checks the authority of a removal that member from asked for.
func (m *Manager) mayRemove(ctx context.Context, from peer.ID, req removeRequest) error {
	if m.cfg.Authenticate == nil || (req.Credential == catalog.Credential{}) {
		return artmesh.E(artmesh.PermissionDenied, "a removal must carry the credential of a mesh admin")
	}
	p, err := m.cfg.Authenticate(ctx, req.Credential)
	if err != nil {
		return artmesh.E(artmesh.Unauthenticated, "the credential that came with the removal is not valid", err)
	}
	if p.Upload != "" {
		return artmesh.E(artmesh.PermissionDenied, "an upload URL's token may not remove members")
	}
	if p.Agent.Admin || (req.PeerID == from.String() && p.Agent.ManagesNode(req.PeerID)) {
		return nil
	}
	return artmesh.E(artmesh.PermissionDenied, fmt.Sprintf("only a mesh admin may remove members, and %s is not one", p.Agent.ID))
}
