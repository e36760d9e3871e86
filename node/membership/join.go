package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/repo"
)

// JoinProtocol is how a new node asks a member to let it in. It is the one
// protocol a peer that is not a member may open (mesh.NewAdmission).
const JoinProtocol protocol.ID = "/artmesh/join/1.0.0"

// joinRequest is what a new node sends to be let in.
type joinRequest struct {
	PeerID string   `json:"peer_id"`
	Secret string   `json:"secret"`
	Addrs  []string `json:"addrs"`
	APIURL string   `json:"api_url"`
	// Commands is the joiner's catalog.KnownCommands (absent from an
	// older joiner: the baseline).
	Commands int `json:"commands,omitempty"`
}

// joinResponse is the mesh's answer: the new node's admin agent and key,
// the log index it must catch up to, and the members it may reach.
type joinResponse struct {
	Agent   artmesh.AgentID  `json:"agent"`
	APIKey  string           `json:"api_key"`
	Index   uint64           `json:"index"`
	Members []catalog.Member `json:"members"`
	// Voters are the voters of the leader's Raft configuration once the
	// new node is in it: until the new node has a configuration of its
	// own, only they may lead it (MayLeadUnconfigured).
	Voters []string `json:"voters,omitempty"`
}

// parseJoinRequest reads a join request and the peer id of the node that
// wants to join.
func parseJoinRequest(data []byte) (joinRequest, peer.ID, error) {
	var req joinRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return joinRequest{}, "", fmt.Errorf("malformed join request")
	}
	joiner, err := peer.Decode(req.PeerID)
	if err != nil || joiner.String() != req.PeerID || len(req.PeerID) < 16 {
		return joinRequest{}, "", fmt.Errorf("malformed peer id")
	}
	if _, err := joiner.ExtractPublicKey(); err != nil {
		// A node's peer id embeds its Ed25519 key: anything else cannot
		// have come from an artmesh node.
		return joinRequest{}, "", fmt.Errorf("malformed peer id")
	}
	return req, joiner, nil
}

// joinAgent is the id of the admin agent a joining node is given: the
// same on every retry and every rejoin of that node.
func joinAgent(peerID string) artmesh.AgentID {
	return artmesh.AgentID("admin-" + strings.ToLower(peerID[len(peerID)-8:]))
}

// joinAsVoter reports whether a joining node becomes a voter: while the
// other servers have fewer than want voters.
func joinAsVoter(servers []catalog.Server, joiner string, want int) bool {
	voters := 0
	for _, s := range servers {
		if s.Voter && s.ID != joiner {
			voters++
		}
	}
	return voters < want
}

// ServeJoin lets a node in, as the handler of JoinProtocol: on the
// leader, by using up its invite, recording it as a member, admitting it,
// giving it an admin agent and adding it to Raft; on another member, by
// passing the request to the leader.
//
// A join costs the mesh nothing until it is known to succeed: attempts of
// a peer that is not a member are limited (joinLimiter), and the invite
// is checked against this node's catalog (checkJoin) before the request
// is passed on or anything is proposed, on the member that receives it
// and again on the leader.
func (m *Manager) ServeJoin(ctx context.Context, from peer.ID, data []byte) ([]byte, error) {
	cat := m.cfg.Catalog
	now := m.now().UTC()
	_, merr := cat.Member(from.String())
	fromMember := merr == nil
	if !fromMember {
		// A member passing a request on was limited where it came in.
		if ban, err := m.joins.allow(from, now); err != nil {
			if ban && m.cfg.Admission != nil {
				// A flood: its next streams are refused at negotiation,
				// its connection goes with the other guests' (EvictGuests),
				// and its handshakes are refused for a while, which its
				// own dial backoff then stretches.
				m.cfg.Admission.Ban(from, now.Add(joinBan))
				m.log.Warn("banned a peer that floods the join protocol", "peer", from, "for", joinBan)
			}
			return nil, err
		}
	}
	req, joiner, err := parseJoinRequest(data)
	if err != nil {
		return nil, err
	}
	if joiner != from && !fromMember {
		// Only members pass on other nodes' requests.
		return nil, fmt.Errorf("only a member may pass on a join request")
	}
	sum := acl.HashKey(req.Secret)
	if err := m.checkJoin(sum, req.PeerID, now); err != nil {
		return nil, err
	}
	if !cat.IsLeader() {
		return m.cfg.CallLeader(ctx, JoinProtocol, data)
	}
	if err := cat.CheckJoiner(req.Commands); err != nil {
		return nil, artmesh.E("join refused: "+artmesh.Message(err), err)
	}
	agent := joinAgent(req.PeerID)
	existing, agentErr := cat.Agent(agent)
	if agentErr == nil && existing.Node != req.PeerID {
		// The name is taken by an agent that is not this node's (a peer
		// id ground to collide, or an admin agent from before node
		// agents): its key is not handed out.
		return nil, artmesh.E(artmesh.Conflict, fmt.Sprintf("join refused: the agent %s exists and is not this node's; a mesh admin may delete it, or the node may join with a new identity", agent))
	}
	if err := cat.ConsumeInvite(ctx, sum, req.PeerID, now); err != nil {
		return nil, artmesh.E("join refused: "+artmesh.Message(err), err)
	}
	mb := catalog.Member{PeerID: req.PeerID, Addresses: req.Addrs, APIURL: req.APIURL, JoinedAt: now, Agent: agent, Commands: req.Commands}
	m.addMembers([]catalog.Member{mb})
	if err := cat.PutMember(ctx, mb); err != nil {
		return nil, err
	}
	// Admit it now, before Raft starts sending it the log.
	if members, err := cat.Members(); err == nil {
		m.admitMembers(members)
	}
	key := acl.NewAPIKey()
	if agentErr == nil {
		if err := cat.SetAgentKey(ctx, agent, acl.HashKey(key)); err != nil {
			return nil, err
		}
	} else if _, err := cat.CreateAgent(ctx, catalog.CreateAgent{Agent: artmesh.Agent{ID: agent, Node: req.PeerID, CreatedAt: now}, KeyHash: acl.HashKey(key)}); err != nil {
		return nil, err
	}
	servers, err := cat.Servers()
	if err != nil {
		return nil, err
	}
	index, err := cat.AddServer(ctx, req.PeerID, joinAsVoter(servers, req.PeerID, m.cfg.Voters))
	if err != nil {
		return nil, err
	}
	members, _ := cat.Members()
	m.savePeers(members)
	var voters []string
	if servers, err := cat.Servers(); err == nil {
		for _, s := range servers {
			if s.Voter {
				voters = append(voters, s.ID)
			}
		}
	}
	return json.Marshal(joinResponse{Agent: agent, APIKey: key, Index: index, Members: members, Voters: voters})
}

// checkJoin refuses a join that ConsumeInvite would refuse, from this
// node's catalog and without proposing anything: the invite whose secret
// hashes to sum must exist, be unused (or used by peerID: a retry) and
// not have expired at now. A member that lags may not know an invite
// created a moment ago; the joiner then asks the next member of its
// ticket.
func (m *Manager) checkJoin(sum, peerID string, now time.Time) error {
	inv, err := m.cfg.Catalog.Invite(sum)
	if errors.Is(err, artmesh.NotFound) {
		// As ConsumeInvite says it: a secret that is not known is no
		// right to join.
		return artmesh.E(artmesh.PermissionDenied, "join refused: the invite is not known to this mesh", err)
	}
	if err == nil {
		err = inv.Usable(peerID, now)
	}
	if err != nil {
		return artmesh.E("join refused: "+artmesh.Message(err), err)
	}
	return nil
}

// joinPatience is how long Join keeps asking while the mesh cannot take
// a join (no leader during an election, a leader that lost its term
// mid-way), joinUnansweredPatience while no member of the ticket answers
// at all (it may be restarting; or it is gone, or the address or the
// mesh's key is wrong, which asking again does not mend), and joinBackoff
// the first and longest waits between rounds.
const (
	joinCallTimeout        = 10 * time.Second // one member's answer; the leader's writes take well under 1 s
	joinPatience           = 60 * time.Second
	joinUnansweredPatience = 10 * time.Second
	joinBackoff            = 250 * time.Millisecond
	joinBackoffMax         = 4 * time.Second
)

// Join makes this node a member with the ticket it was initialised with:
// it asks the ticket's members in turn, admits them (and then the members
// the answer lists) until it has caught up, waits until its catalog has
// applied the index of its admission, and records its admin key and its
// membership in the repo.
//
// While the mesh cannot take the join now (no leader: an election; no
// member answers: they restart), it asks again, waiting longer each
// round, for up to joinPatience (joinUnansweredPatience while no member
// answers at all). A refusal (an invite unknown, used by
// another node or expired; a name taken) ends it at once. Asking again is
// safe: the invite stays usable by the node that used it.
func (m *Manager) Join(ctx context.Context, t *repo.Ticket) error {
	start, wait := m.now(), joinBackoff
	for {
		err := m.joinOnce(ctx, t)
		patience := joinPatience
		if errors.Is(err, errJoinUnanswered) {
			patience = joinUnansweredPatience
		}
		if err == nil || !joinRetryable(err) || m.now().Sub(start)+wait > patience {
			return err
		}
		m.log.Info("the mesh cannot take the join now; asking again", "in", wait, "reason", artmesh.Message(err))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
		wait = min(2*wait, joinBackoffMax)
	}
}

// joinRetryable reports whether a failed join may work when asked again:
// the members could not be reached, or answered that the mesh cannot take
// it now (unavailable, or a write whose outcome they do not know), and
// not that it is refused.
func joinRetryable(err error) bool {
	var re *mesh.RemoteError
	if !errors.As(err, &re) {
		return errors.Is(err, errJoinUnanswered)
	}
	return re.Kind == artmesh.Unavailable || re.Kind == artmesh.OutcomeUnknown
}

// errJoinUnanswered is in the chain of a join that no member of the
// ticket answered at all.
var errJoinUnanswered = errors.New("no member of the ticket answered")

// joinOnce asks the ticket's members once, in turn, until one answers.
func (m *Manager) joinOnce(ctx context.Context, t *repo.Ticket) error {
	req, _ := json.Marshal(joinRequest{PeerID: m.cfg.Self.String(), Secret: t.Secret, Addrs: m.ownAddrs(), APIURL: m.cfg.APIURL(), Commands: catalog.KnownCommands})
	var seeds []string
	for _, a := range t.Addrs {
		if info, err := peer.AddrInfoFromString(a); err == nil {
			seeds = append(seeds, info.ID.String())
		}
	}
	m.cfg.Roster.Seed(seeds)
	var lastErr, refusal error // refusal: the first member's that refused
	for _, a := range t.Addrs {
		info, err := peer.AddrInfoFromString(a)
		if err != nil {
			continue
		}
		m.cfg.Host.Peerstore().AddAddrs(info.ID, info.Addrs, peerstore.PermanentAddrTTL)
		cctx, cancel := context.WithTimeout(ctx, joinCallTimeout)
		resp, err := mesh.Call(cctx, m.cfg.Host, info.ID, JoinProtocol, req)
		cancel()
		if err != nil {
			lastErr = err
			var re *mesh.RemoteError
			if errors.As(err, &re) && !joinRetryable(err) && refusal == nil {
				refusal = err
			}
			if errors.As(err, &re) && joinRetryable(err) {
				// A member answered that the mesh cannot take a join now
				// (no leader): the others would pass it to the same
				// leader, or to none. Join waits and asks again.
				break
			}
			continue
		}
		var jr joinResponse
		if err := json.Unmarshal(resp, &jr); err != nil {
			return fmt.Errorf("membership: join answer: %w", err)
		}
		m.addMembers(jr.Members)
		m.cfg.Roster.Seed(memberIDs(jr.Members))
		m.savePeers(jr.Members)
		voters := joinLeaders(t, jr.Voters)
		m.joinVoters.Store(&voters)
		if err := m.cfg.Catalog.WaitApplied(ctx, jr.Index); err != nil {
			return fmt.Errorf("membership: catching up with the mesh: %w", err)
		}
		if err := repo.WriteFileSync(filepath.Join(m.cfg.Repo, repo.APIKeyFile), []byte(jr.APIKey+"\n"), 0o600); err != nil {
			return err
		}
		if err := m.recordMember(); err != nil {
			return err
		}
		m.log.Info("joined the mesh", "admin_agent", jr.Agent, "members", len(jr.Members))
		return nil
	}
	if refusal != nil {
		// A refusal says more than a member that could not be reached
		// after it, and asking again would not change it.
		lastErr = refusal
	}
	msg := "could not join the mesh with this ticket"
	var re *mesh.RemoteError
	if errors.As(lastErr, &re) {
		msg += ": " + re.Message
	} else if lastErr != nil {
		lastErr = fmt.Errorf("%w: %w", errJoinUnanswered, lastErr)
	} else {
		lastErr = errJoinUnanswered
	}
	return artmesh.E(artmesh.Unavailable, msg, lastErr)
}

// joinLeaders returns the peers that may lead a joiner with ticket t
// until it has a Raft configuration, given the voters the join answer
// names. The answer comes through whichever member of the ticket
// answered, which could name itself or anyone (a nonvoter's key would
// then lead the joiner and feed it a forged log), so it is trusted only
// as far as the ticket agrees: the ticket comes from the mesh's admin,
// out of band, and names the mesh's voters when the invite was made
// (Leaders; a ticket from an older node: its peers). The answer's voters
// that the ticket names lead; when the answer names none of them (all
// the voters changed since the invite), the ticket's alone do, and the
// join waits until one of them leads rather than take the answer's word.
func joinLeaders(t *repo.Ticket, answered []string) map[peer.ID]struct{} {
	named := t.Leaders
	if len(named) == 0 {
		for _, a := range t.Addrs {
			if info, err := peer.AddrInfoFromString(a); err == nil {
				named = append(named, info.ID.String())
			}
		}
	}
	trusted := decodeSet(named)
	both := map[peer.ID]struct{}{}
	for p := range decodeSet(answered) {
		if _, ok := trusted[p]; ok {
			both[p] = struct{}{}
		}
	}
	if len(both) == 0 {
		return trusted
	}
	return both
}

// MayLeadUnconfigured reports whether p may lead this node while its
// Raft configuration is empty (a node that is joining, or a member whose
// catalog state is gone): once the join answer came, only the voters
// that both it and the ticket name (joinLeaders); before it, or at a start without a join, the peers this
// node admits (the members it was told of or saved in peers.json), since
// it knows no better yet.
// JoinTrusted reports whether p is one of the voters this node took from
// its join (its ticket's, confirmed by the join answer): until it has
// caught up, a joiner replaying the log takes leader RPCs from them even
// when the configuration it has replayed so far (an early one) does not
// list them.
func (m *Manager) JoinTrusted(p peer.ID) bool {
	v := m.joinVoters.Load()
	if v == nil {
		return false
	}
	_, ok := (*v)[p]
	return ok
}

func (m *Manager) MayLeadUnconfigured(p peer.ID) bool {
	if v := m.joinVoters.Load(); v != nil {
		_, ok := (*v)[p]
		return ok
	}
	return m.cfg.Roster.Has(p)
}
