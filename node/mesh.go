package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/repo"
)

// JoinProtocol is how a new node asks a member to let it in.
const JoinProtocol protocol.ID = "/artmesh/join/1.0.0"

// loadPeers puts the members' last known addresses into the peerstore, so
// that Raft can reach them at start.
func (n *Node) loadPeers() {
	data, err := os.ReadFile(filepath.Join(n.cfg.Repo, repo.PeersFile))
	if err != nil {
		return
	}
	var members []catalog.Member
	if json.Unmarshal(data, &members) != nil {
		return
	}
	n.addMembers(members)
	// Until the catalog lists its members (a member whose catalog state
	// is being rebuilt), the ones saved last are admitted.
	n.roster.Seed(memberIDs(members))
}

// memberIDs returns the members' peer ids.
func memberIDs(members []catalog.Member) []string {
	ids := make([]string, 0, len(members))
	for _, m := range members {
		ids = append(ids, m.PeerID)
	}
	return ids
}

// admitMembers makes the catalog's members the peers admitted to the
// mesh, and cuts off at once every peer that is no longer one (a removed
// member: its streams, forwarded writes and fetches end with its
// connections), and peers that connected to join but have not become
// members within mesh.GuestGrace.
func (n *Node) admitMembers(members []catalog.Member) {
	dropped := n.roster.SetMembers(memberIDs(members))
	if n.caughtUp.Load() {
		// Caught up: the catalog's members are current, and peers the
		// node only remembered are admitted no more.
		dropped = append(dropped, n.roster.Seed(nil)...)
	}
	n.cutOff(dropped)
	if c := n.admit.EvictGuests(n.host, mesh.GuestGrace); c > 0 {
		n.log.Info("closed connections of peers that are not members", "peers", c)
	}
}

// cutOff closes every connection to peers.
func (n *Node) cutOff(peers []peer.ID) {
	for _, p := range peers {
		if n.host.Network().Connectedness(p) == network.Connected {
			n.log.Info("closing the connections of a peer that is not a member", "peer", p)
		}
		n.host.ConnManager().Unprotect(p, "member")
		_ = n.host.Network().ClosePeer(p)
	}
	if c := n.admit.EvictGuests(n.host, mesh.GuestGrace); c > 0 {
		n.log.Info("closed connections of peers that are not members", "peers", c)
	}
}

// addMembers records members' addresses in the peerstore.
func (n *Node) addMembers(members []catalog.Member) {
	for _, m := range members {
		id, err := peer.Decode(m.PeerID)
		if err != nil || id == n.peerID {
			continue
		}
		var addrs []ma.Multiaddr
		for _, a := range m.Addresses {
			if x, err := ma.NewMultiaddr(a); err == nil {
				addrs = append(addrs, x)
			}
		}
		n.host.Peerstore().AddAddrs(id, addrs, peerstore.PermanentAddrTTL)
		n.host.ConnManager().Protect(id, "member")
	}
}

// savePeers writes the members' addresses to peers.json, for the next
// start, when they changed since the last write.
func (n *Node) savePeers(members []catalog.Member) {
	if len(members) == 0 {
		return
	}
	data, err := json.Marshal(members)
	if err != nil {
		return
	}
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	if bytes.Equal(data, n.savedPeers) {
		return
	}
	if err := repo.WriteFileSync(filepath.Join(n.cfg.Repo, repo.PeersFile), data, 0o600); err != nil {
		n.log.Warn("saving the members' addresses", "err", err)
		return
	}
	n.savedPeers = data
}

// saveRepoConfig records the node's join state (Join, Member) in the
// repo config on disk, leaving the rest of the file as it was (the
// daemon's flags override it without being saved).
func (n *Node) saveRepoConfig() error {
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	rc, err := repo.ReadConfig(n.cfg.Repo)
	if err != nil {
		return err
	}
	rc.Join, rc.Member = n.rc.Join, n.rc.Member
	data, _ := json.MarshalIndent(rc, "", "  ")
	return repo.WriteFileSync(filepath.Join(n.cfg.Repo, repo.ConfigFile), append(data, '\n'), 0o600)
}

// ownAddrs returns this node's mesh addresses.
func (n *Node) ownAddrs() []string {
	var out []string
	for _, a := range n.host.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// forward is the catalog's way to the leader.
func (n *Node) forward(ctx context.Context, leader raft.ServerAddress, entry []byte) (catalog.ForwardResult, error) {
	id, err := peer.Decode(string(leader))
	if err != nil {
		return catalog.ForwardResult{}, fmt.Errorf("node: leader address %q: %w", leader, err)
	}
	resp, err := mesh.Call(ctx, n.host, id, mesh.ApplyProtocol, entry)
	if err != nil {
		return catalog.ForwardResult{}, artmesh.E(artmesh.Unavailable, "the catalog leader did not take the write", err)
	}
	var res catalog.ForwardResult
	if err := json.Unmarshal(resp, &res); err != nil {
		return catalog.ForwardResult{}, fmt.Errorf("node: leader's answer: %w", err)
	}
	return res, nil
}

// serveApply takes writes forwarded by followers.
func (n *Node) serveApply(ctx context.Context, _ peer.ID, req []byte) ([]byte, error) {
	res, err := n.cat.ApplyForwarded(ctx, req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// joinRequest is what a new node sends to be let in.
type joinRequest struct {
	PeerID string   `json:"peer_id"`
	Secret string   `json:"secret"`
	Addrs  []string `json:"addrs"`
	APIURL string   `json:"api_url"`
}

// joinResponse is the mesh's answer: the new node's admin agent and key,
// and the log index it must catch up to.
type joinResponse struct {
	Agent   artmesh.AgentID  `json:"agent"`
	APIKey  string           `json:"api_key"`
	Index   uint64           `json:"index"`
	Members []catalog.Member `json:"members"`
}

// serveJoin lets a node in: on the leader, by using up its invite,
// recording it as a member, giving it an admin agent and adding it to
// Raft; on another member, by passing the request to the leader.
func (n *Node) serveJoin(ctx context.Context, from peer.ID, data []byte) ([]byte, error) {
	var req joinRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("malformed join request")
	}
	joiner, err := peer.Decode(req.PeerID)
	if err != nil {
		return nil, fmt.Errorf("malformed peer id")
	}
	if joiner != from {
		// Only members pass on other nodes' requests.
		if _, err := n.cat.Member(from.String()); err != nil {
			return nil, fmt.Errorf("only a member may pass on a join request")
		}
	}
	if !n.cat.IsLeader() {
		return n.callLeader(ctx, JoinProtocol, data)
	}
	sum := acl.HashKey(req.Secret)
	now := time.Now().UTC()
	if err := n.cat.ConsumeInvite(ctx, sum, req.PeerID, now); err != nil {
		return nil, fmt.Errorf("join refused: %s", artmesh.Message(err))
	}
	agent := artmesh.AgentID("admin-" + strings.ToLower(req.PeerID[len(req.PeerID)-8:]))
	m := catalog.Member{PeerID: req.PeerID, Addresses: req.Addrs, APIURL: req.APIURL, JoinedAt: now, Agent: agent}
	n.addMembers([]catalog.Member{m})
	if err := n.cat.PutMember(ctx, m); err != nil {
		return nil, err
	}
	// Admit it now, before Raft starts sending it the log.
	if members, err := n.cat.Members(); err == nil {
		n.admitMembers(members)
	}
	key := acl.NewAPIKey()
	if _, err := n.cat.Agent(agent); err == nil {
		if err := n.cat.SetAgentKey(ctx, agent, acl.HashKey(key)); err != nil {
			return nil, err
		}
	} else if _, err := n.cat.CreateAgent(ctx, catalog.CreateAgent{Agent: artmesh.Agent{ID: agent, Admin: true, CreatedAt: now}, KeyHash: acl.HashKey(key)}); err != nil {
		return nil, err
	}
	servers, err := n.cat.Servers()
	if err != nil {
		return nil, err
	}
	voters := 0
	for _, s := range servers {
		if s.Voter && s.ID != req.PeerID {
			voters++
		}
	}
	index, err := n.cat.AddServer(ctx, req.PeerID, voters < n.rc.Voters)
	if err != nil {
		return nil, err
	}
	members, _ := n.cat.Members()
	n.savePeers(members)
	return json.Marshal(joinResponse{Agent: agent, APIKey: key, Index: index, Members: members})
}

// join makes this node a member with the ticket it was initialised with.
func (n *Node) join(ctx context.Context, t *repo.Ticket) error {
	req, _ := json.Marshal(joinRequest{PeerID: n.peerID.String(), Secret: t.Secret, Addrs: n.ownAddrs(), APIURL: n.Info().APIURL})
	var seeds []string
	for _, a := range t.Addrs {
		if info, err := peer.AddrInfoFromString(a); err == nil {
			seeds = append(seeds, info.ID.String())
		}
	}
	n.roster.Seed(seeds)
	var lastErr error
	for _, a := range t.Addrs {
		info, err := peer.AddrInfoFromString(a)
		if err != nil {
			continue
		}
		n.host.Peerstore().AddAddrs(info.ID, info.Addrs, peerstore.PermanentAddrTTL)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := mesh.Call(cctx, n.host, info.ID, JoinProtocol, req)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		var jr joinResponse
		if err := json.Unmarshal(resp, &jr); err != nil {
			return fmt.Errorf("node: join answer: %w", err)
		}
		n.addMembers(jr.Members)
		n.roster.Seed(memberIDs(jr.Members))
		n.savePeers(jr.Members)
		if err := n.cat.WaitApplied(ctx, jr.Index); err != nil {
			return fmt.Errorf("node: catching up with the mesh: %w", err)
		}
		if err := repo.WriteFileSync(filepath.Join(n.cfg.Repo, repo.APIKeyFile), []byte(jr.APIKey+"\n"), 0o600); err != nil {
			return err
		}
		n.rc.Join = nil
		n.rc.Member = true
		if err := n.saveRepoConfig(); err != nil {
			return err
		}
		n.log.Info("joined the mesh", "admin_agent", jr.Agent, "members", len(jr.Members))
		return nil
	}
	msg := "could not join the mesh with this ticket"
	var re *mesh.RemoteError
	if errors.As(lastErr, &re) {
		msg += ": " + re.Message
	}
	return artmesh.E(artmesh.Unavailable, msg, lastErr)
}

// syncMembers keeps the peerstore and peers.json in step with the
// catalog's members, and keeps this node's own entry current.
func (n *Node) syncMembers(ctx context.Context) {
	members, err := n.cat.Members()
	if err != nil {
		return
	}
	n.addMembers(members)
	n.admitMembers(members)
	n.savePeers(members)
	if len(members) > 1 && !n.rc.Member {
		// From now on this node's catalog is a mesh's, never to be
		// bootstrapped anew.
		n.rc.Member = true
		if err := n.saveRepoConfig(); err != nil {
			n.log.Warn("recording mesh membership in the repo config", "err", err)
		}
	}
	self := n.peerID.String()
	want := n.ownAddrs()
	for _, m := range members {
		if m.PeerID == self {
			if strings.Join(m.Addresses, " ") == strings.Join(want, " ") && m.APIURL == n.Info().APIURL {
				return
			}
			m.Addresses, m.APIURL = want, n.Info().APIURL
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_ = n.cat.PutMember(cctx, m)
			return
		}
	}
	// Not a member yet: the first node records itself once it leads.
	if servers, err := n.cat.Servers(); err == nil && len(servers) == 1 && servers[0].ID == self && n.cat.IsLeader() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = n.cat.PutMember(cctx, catalog.Member{PeerID: self, Addresses: want, APIURL: n.Info().APIURL, JoinedAt: time.Now().UTC()})
	}
}

// meshLoop runs syncMembers every 2 s and at once whenever the catalog's
// members change, until ctx ends. It runs from the start, caught up or
// not: admission follows the local catalog.
func (n *Node) meshLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	var u upkeep
	seen, changed := n.cat.Watch()
	for {
		n.syncMembers(ctx)
		n.tendVoters(ctx, &u)
		for wait := true; wait; {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				wait = false
			case <-changed:
				var idx uint64
				idx, changed = n.cat.Watch()
				wait = !n.cat.ChangedSince(seen, catalog.TopicMembers)
				seen = idx
			}
		}
	}
}

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
	// UnderReplicated counts the live versions allocated to this member
	// that have fewer reachable holders than their factor.
	UnderReplicated int `json:"under_replicated"`
}

// Members lists the mesh's members with their roles and whether this node
// reaches them now.
func (n *Node) Members(_ context.Context) ([]MemberInfo, error) {
	servers, err := n.cat.Servers()
	if err != nil {
		return nil, err
	}
	members, err := n.cat.Members()
	if err != nil {
		return nil, err
	}
	byID := map[string]catalog.Member{}
	for _, m := range members {
		byID[m.PeerID] = m
	}
	held, under := n.memberPlacement(len(members))
	var out []MemberInfo
	for _, s := range servers {
		m := byID[s.ID]
		role := "nonvoter"
		if s.Voter {
			role = "voter"
		}
		mi := MemberInfo{PeerID: s.ID, Addresses: m.Addresses, APIURL: m.APIURL, Role: role, Leader: s.Leader,
			BytesHeld: held[s.ID], UnderReplicated: under[s.ID]}
		if s.ID == n.peerID.String() {
			mi.Reachable = true
		} else if id, err := peer.Decode(s.ID); err == nil {
			mi.Reachable = n.host.Network().Connectedness(id) == network.Connected
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

// DefaultInviteTTL is how long an invite lasts unless told otherwise.
const DefaultInviteTTL = time.Hour

// CreateInvite makes a one-time ticket for a new node. Only admins may.
func (n *Node) CreateInvite(ctx context.Context, caller artmesh.Agent, expiresIn int64) (Invite, error) {
	if !caller.Admin {
		return Invite{}, artmesh.E(artmesh.PermissionDenied, "only an admin agent may invite nodes")
	}
	life, err := ttl(expiresIn, DefaultInviteTTL)
	if err != nil {
		return Invite{}, err
	}
	secret := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, secret); err != nil {
		return Invite{}, err
	}
	s := hex.EncodeToString(secret)
	exp := time.Now().UTC().Add(life).Truncate(time.Second)
	if err := n.cat.CreateInvite(ctx, catalog.Invite{SecretHash: acl.HashKey(s), CreatedBy: caller.ID, ExpiresAt: exp}); err != nil {
		return Invite{}, err
	}
	var addrs []string
	for _, a := range n.ownAddrs() {
		addrs = append(addrs, a+"/p2p/"+n.peerID.String())
	}
	t := repo.Ticket{Addrs: addrs, Secret: s, Voters: n.rc.Voters}
	if n.meshKey != (mesh.Key{}) {
		t.Key = n.meshKey.String()
	}
	return Invite{Ticket: t.String(), ExpiresAt: exp}, nil
}

// RemoveMember takes a node out of the mesh: out of Raft and the members.
// Only admins may. A node removing itself leaves.
func (n *Node) RemoveMember(ctx context.Context, caller artmesh.Agent, peerID string) error {
	if !caller.Admin {
		return artmesh.E(artmesh.PermissionDenied, "only an admin agent may remove nodes")
	}
	servers, err := n.cat.Servers()
	if err != nil {
		return err
	}
	known := false
	for _, s := range servers {
		known = known || s.ID == peerID
	}
	if _, err := n.cat.Member(peerID); err != nil && !known {
		return artmesh.E(artmesh.NotFound, fmt.Sprintf("%s is not a member", peerID))
	}
	if known {
		if len(servers) == 1 {
			return artmesh.E(artmesh.Conflict, "the last member cannot leave its own mesh")
		}
		if err := n.removeServer(ctx, peerID); err != nil {
			return err
		}
	}
	if err := n.cat.DeleteMember(ctx, peerID); err != nil && !errors.Is(err, artmesh.NotFound) {
		return err
	}
	return nil
}

// removeServer asks the leader to take a server out of Raft.
func (n *Node) removeServer(ctx context.Context, peerID string) error {
	if n.cat.IsLeader() {
		return n.cat.RemoveServer(ctx, peerID)
	}
	if _, err := n.callLeader(ctx, RemoveProtocol, []byte(peerID)); err != nil {
		return artmesh.E(artmesh.Unavailable, "the leader did not remove the member", err)
	}
	return nil
}

// callLeader sends a request to the catalog's leader over protocol proto.
func (n *Node) callLeader(ctx context.Context, proto protocol.ID, req []byte) ([]byte, error) {
	addr, _ := n.cat.Raft().LeaderWithID()
	if addr == "" {
		return nil, artmesh.E(artmesh.Unavailable, "the mesh has no catalog leader now; try again")
	}
	leader, err := peer.Decode(string(addr))
	if err != nil {
		return nil, fmt.Errorf("node: leader address %q: %w", addr, err)
	}
	return mesh.Call(ctx, n.host, leader, proto, req)
}

// catchUp brings this node's catalog up to every write the leader has
// acknowledged, waiting at most two seconds, and reports whether it did.
// Lookups that miss call it before they answer "not found", so that an id,
// key or token made on another node a moment ago works here at once.
func (n *Node) catchUp(ctx context.Context) bool {
	if n.host == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return n.Consistent(ctx) == nil
}

// ReadIndexProtocol asks the leader for an index that covers every
// acknowledged write, for a consistent read.
const ReadIndexProtocol protocol.ID = "/artmesh/read-index/1.0.0"

func (n *Node) serveReadIndex(ctx context.Context, _ peer.ID, _ []byte) ([]byte, error) {
	idx, err := n.cat.ReadIndex(ctx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(idx)
}

// Consistent makes the next reads linearizable: it waits until this node
// has applied every write the leader acknowledged before the call.
func (n *Node) Consistent(ctx context.Context) error {
	var idx uint64
	if n.cat.IsLeader() {
		i, err := n.cat.ReadIndex(ctx)
		if err != nil {
			return err
		}
		idx = i
	} else {
		resp, err := n.callLeader(ctx, ReadIndexProtocol, nil)
		if err != nil {
			return artmesh.E(artmesh.Unavailable, "the leader did not answer a consistent read", err)
		}
		if err := json.Unmarshal(resp, &idx); err != nil {
			return fmt.Errorf("node: read index: %w", err)
		}
	}
	return n.cat.WaitApplied(ctx, idx)
}

// RemoveProtocol asks the leader to take a server out of Raft.
const RemoveProtocol protocol.ID = "/artmesh/remove/1.0.0"

// serveRemove takes a server out of Raft, for a member's request.
func (n *Node) serveRemove(ctx context.Context, from peer.ID, data []byte) ([]byte, error) {
	if _, err := n.cat.Member(from.String()); err != nil {
		return nil, fmt.Errorf("only members may remove members")
	}
	if !n.cat.IsLeader() {
		return nil, fmt.Errorf("not the leader")
	}
	return nil, n.cat.RemoveServer(ctx, string(data))
}

// StreamBench is a measurement of one raw stream from a member.
type StreamBench struct {
	PeerID         string  `json:"peer_id"`
	Bytes          uint64  `json:"bytes"`
	Seconds        float64 `json:"seconds"`
	BytesPerSecond float64 `json:"bytes_per_second"`
}

// MeasureStream receives bytes from a member over one raw libp2p stream,
// the yardstick for content transfer. Only admins may.
func (n *Node) MeasureStream(ctx context.Context, caller artmesh.Agent, peerID string, bytes uint64) (StreamBench, error) {
	if !caller.Admin {
		return StreamBench{}, artmesh.E(artmesh.PermissionDenied, "only an admin agent may measure the mesh")
	}
	id, err := peer.Decode(peerID)
	if err != nil {
		return StreamBench{}, artmesh.E(artmesh.Invalid, fmt.Sprintf("%q is not a peer id", peerID))
	}
	d, err := mesh.MeasureStream(ctx, n.host, id, bytes)
	if err != nil {
		return StreamBench{}, artmesh.E(artmesh.Unavailable, "measuring the stream", err)
	}
	return StreamBench{PeerID: peerID, Bytes: bytes, Seconds: d.Seconds(), BytesPerSecond: float64(bytes) / d.Seconds()}, nil
}
