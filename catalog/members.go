package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// Mesh membership: the nodes of the mesh, their addresses, and the
// one-time invites that let a new node join. Raft's own configuration says
// who votes; the members table says how to reach each node.

// Table names and record and command types of this file; types never
// change.
const (
	tableMembers = "members"
	tableInvites = "invites"

	recordMember byte = 7
	recordInvite byte = 8

	putMemberType     commandType = 20
	deleteMemberType  commandType = 21
	createInviteType  commandType = 22
	consumeInviteType commandType = 23
)

// Member is a node of the mesh.
type Member struct {
	PeerID    string    `json:"peer_id"`
	Addresses []string  `json:"addresses"` // libp2p multiaddrs, without /p2p
	APIURL    string    `json:"api_url"`
	JoinedAt  time.Time `json:"joined_at"`
	// Agent is the admin agent created for the node when it joined. Its
	// keys are revoked when the member is removed.
	Agent artmesh.AgentID `json:"agent,omitempty"`
	// Commands is the highest catalog command type the member's binary
	// knows (KnownCommands of its version); 0, for a member that did not
	// record it, means the types that existed before members recorded
	// theirs. The leader proposes no command that a member does not know.
	Commands int `json:"commands,omitempty"`
}

// Invite is a one-time secret that lets a node join, kept as its hash.
type Invite struct {
	SecretHash string          `json:"secret_hash"`
	CreatedBy  artmesh.AgentID `json:"created_by"`
	ExpiresAt  time.Time       `json:"expires_at"`
	UsedBy     string          `json:"used_by,omitempty"` // the peer id that joined with it
}

// PutMember records a member or updates its addresses.
type PutMember struct {
	Member Member `json:"member"`
}

type deleteMemberCmd struct {
	PeerID string `json:"peer_id"`
	// Purge also deletes the unused invites that the member's agent
	// made, so that nothing it created outlives it. Entries from before
	// it was added leave them, as they did.
	Purge bool `json:"purge,omitempty"`
}

// CreateInvite records an invite.
type CreateInvite struct {
	Invite Invite `json:"invite"`
}

// ConsumeInvite uses an invite up for a joining peer: it must exist, be
// unused and not expired at At.
type ConsumeInvite struct {
	SecretHash string    `json:"secret_hash"`
	PeerID     string    `json:"peer_id"`
	At         time.Time `json:"at"`
}

func (PutMember) commandType() commandType       { return putMemberType }
func (deleteMemberCmd) commandType() commandType { return deleteMemberType }
func (CreateInvite) commandType() commandType    { return createInviteType }
func (ConsumeInvite) commandType() commandType   { return consumeInviteType }

func memberTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableMembers: {
			Name: tableMembers,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*Member]{
					nargs: 1,
					key:   func(b []byte, r *Member) []byte { return appendPart(b, r.PeerID) },
				}},
			},
		},
		tableInvites: {
			Name: tableInvites,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*Invite]{
					nargs: 1,
					key:   func(b []byte, r *Invite) []byte { return appendPart(b, r.SecretHash) },
				}},
			},
		},
	}
}

func applyMemberCommand(tx *Txn, t commandType, payload []byte) (any, bool) {
	switch t {
	case putMemberType:
		return applyDecodedErr(tx, t, payload, putMemberTxn), true
	case deleteMemberType:
		return applyDecodedErr(tx, t, payload, deleteMemberTxn), true
	case createInviteType:
		return applyDecodedErr(tx, t, payload, createInviteTxn), true
	case consumeInviteType:
		return applyDecodedErr(tx, t, payload, consumeInviteTxn), true
	}
	return nil, false
}

func putMemberTxn(tx *Txn, cmd PutMember) error {
	m := cmd.Member
	m.Addresses = cloneSlice(m.Addresses)
	if m.Agent == "" {
		// An update of addresses keeps the join agent.
		if raw, err := tx.First(tableMembers, indexID, m.PeerID); err != nil {
			return internal("catalog.PutMember", err)
		} else if raw != nil {
			m.Agent = raw.(*Member).Agent
		}
	}
	if err := tx.Insert(tableMembers, &m); err != nil {
		return internal("catalog.PutMember", err)
	}
	return nil
}

func deleteMemberTxn(tx *Txn, cmd deleteMemberCmd) error {
	const op = artmesh.Op("catalog.DeleteMember")
	raw, err := tx.First(tableMembers, indexID, cmd.PeerID)
	if err != nil {
		return internal(op, err)
	}
	if raw == nil {
		return errorf(op, artmesh.NotFound, "member %s not found", cmd.PeerID)
	}
	if err := tx.Delete(tableMembers, raw); err != nil {
		return internal(op, err)
	}
	if err := revokeJoinAgentTxn(tx, op, raw.(*Member).Agent); err != nil {
		return err
	}
	if err := dropMemberFetchingTxn(tx, op, cmd.PeerID); err != nil {
		return err
	}
	if agent := raw.(*Member).Agent; cmd.Purge && agent != "" {
		if err := dropInvitesOfTxn(tx, op, agent); err != nil {
			return err
		}
	}
	return dropMemberPlacementTxn(tx, op, cmd.PeerID)
}

// dropInvitesOfTxn deletes the unused invites that agent made.
func dropInvitesOfTxn(tx *Txn, op artmesh.Op, agent artmesh.AgentID) error {
	invites, err := collect[*Invite](tx.Get(tableInvites, indexID))
	if err != nil {
		return internal(op, err)
	}
	for _, inv := range invites {
		if inv.CreatedBy == agent && inv.UsedBy == "" {
			if err := tx.Delete(tableInvites, inv); err != nil {
				return internal(op, err)
			}
		}
	}
	return nil
}

// revokeJoinAgentTxn takes every key of a removed member's join agent
// away: the agent stays (it may own artifacts) but nobody can act as it
// until the node joins anew with a fresh invite.
func revokeJoinAgentTxn(tx *Txn, op artmesh.Op, id artmesh.AgentID) error {
	if id == "" {
		return nil
	}
	raw, err := tx.First(tableAgents, indexID, id)
	if err != nil {
		return internal(op, err)
	}
	if raw == nil {
		return nil
	}
	next := *raw.(*agentRow)
	next.KeyHashes = nil
	if err := tx.Insert(tableAgents, &next); err != nil {
		return internal(op, err)
	}
	return nil
}

func createInviteTxn(tx *Txn, cmd CreateInvite) error {
	const op = artmesh.Op("catalog.CreateInvite")
	if raw, err := tx.First(tableInvites, indexID, cmd.Invite.SecretHash); err != nil {
		return internal(op, err)
	} else if raw != nil {
		return errorf(op, artmesh.Conflict, "invite exists")
	}
	inv := cmd.Invite
	inv.UsedBy = ""
	if err := tx.Insert(tableInvites, &inv); err != nil {
		return internal(op, err)
	}
	return nil
}

func consumeInviteTxn(tx *Txn, cmd ConsumeInvite) error {
	const op = artmesh.Op("catalog.ConsumeInvite")
	raw, err := tx.First(tableInvites, indexID, cmd.SecretHash)
	if err != nil {
		return internal(op, err)
	}
	if raw == nil {
		return errorf(op, artmesh.PermissionDenied, "the invite is not known to this mesh")
	}
	inv := *raw.(*Invite)
	if err := inv.usable(op, cmd.PeerID, cmd.At); err != nil {
		return err
	}
	inv.UsedBy = cmd.PeerID
	if err := tx.Insert(tableInvites, &inv); err != nil {
		return internal(op, err)
	}
	return nil
}

// Usable reports whether peerID may join with the invite at at: nil if
// the invite is unused (or used by peerID, a join retried) and not
// expired, the error that ConsumeInvite would give otherwise. A join is
// checked with it before anything is proposed.
func (inv Invite) Usable(peerID string, at time.Time) error {
	return inv.usable("catalog.Invite", peerID, at)
}

func (inv Invite) usable(op artmesh.Op, peerID string, at time.Time) error {
	if inv.UsedBy != "" && inv.UsedBy != peerID {
		return errorf(op, artmesh.Conflict, "the invite was already used")
	}
	if !at.Before(inv.ExpiresAt) {
		return errorf(op, artmesh.Expired, "the invite expired at %s", inv.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// PutMember records a member of the mesh or updates it.
func (c *Catalog) PutMember(ctx context.Context, m Member) error {
	if m.PeerID == "" {
		return invalid("catalog.PutMember", "a peer id is required")
	}
	_, err := c.propose(ctx, PutMember{Member: m})
	return err
}

// DeleteMember forgets a member.
func (c *Catalog) DeleteMember(ctx context.Context, peerID string) error {
	_, err := c.propose(ctx, deleteMemberCmd{PeerID: peerID, Purge: true})
	return err
}

// CreateInvite records a one-time invite by the hash of its secret.
func (c *Catalog) CreateInvite(ctx context.Context, inv Invite) error {
	_, err := c.propose(ctx, CreateInvite{Invite: inv})
	return err
}

// ConsumeInvite uses an invite up for peerID. Using it again for the same
// peer succeeds, so that a join can be retried.
func (c *Catalog) ConsumeInvite(ctx context.Context, secretHash, peerID string, at time.Time) error {
	_, err := c.propose(ctx, ConsumeInvite{SecretHash: secretHash, PeerID: peerID, At: at.UTC()})
	return err
}

// Invite returns the invite whose secret hashes to secretHash, as this
// node's catalog has applied it: NotFound if there is none.
func (c *Catalog) Invite(secretHash string) (Invite, error) {
	return read(c.fsm.state(), func(tx *Txn) (Invite, error) {
		raw, err := tx.First(tableInvites, indexID, secretHash)
		if err != nil {
			return Invite{}, internal("catalog.Invite", err)
		}
		if raw == nil {
			return Invite{}, errorf("catalog.Invite", artmesh.NotFound, "the invite is not known to this mesh")
		}
		return *raw.(*Invite), nil
	})
}

// Members returns the members of the mesh.
func (c *Catalog) Members() ([]Member, error) {
	return read(c.fsm.state(), func(tx *Txn) ([]Member, error) {
		it, err := tx.Get(tableMembers, indexID)
		if err != nil {
			return nil, internal("catalog.Members", err)
		}
		var out []Member
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out = append(out, *raw.(*Member))
		}
		return out, nil
	})
}

// Member returns one member.
func (c *Catalog) Member(peerID string) (Member, error) {
	return read(c.fsm.state(), func(tx *Txn) (Member, error) {
		raw, err := tx.First(tableMembers, indexID, peerID)
		if err != nil {
			return Member{}, internal("catalog.Member", err)
		}
		if raw == nil {
			return Member{}, errorf("catalog.Member", artmesh.NotFound, "member %s not found", peerID)
		}
		return *raw.(*Member), nil
	})
}

// Server is a member as Raft sees it.
type Server struct {
	ID     string
	Voter  bool
	Leader bool
}

// Servers returns Raft's configuration: who takes part and who votes.
// Unlike Configuration it does not look for the configuration's index,
// which may list the snapshots on disk.
func (c *Catalog) Servers() ([]Server, error) {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, unavailable("catalog.Configuration", err)
	}
	_, leader := c.raft.LeaderWithID()
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader})
	}
	return out, nil
}

// AddServer makes a node take part in Raft, as a voter or not. Only the
// leader can; the address of a server is its id (the mesh dials peer
// ids).
func (c *Catalog) AddServer(ctx context.Context, id string, voter bool) (uint64, error) {
	const op = artmesh.Op("catalog.AddServer")
	var f raft.IndexFuture
	if voter {
		f = c.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(id), 0, c.timeout(ctx))
	} else {
		f = c.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(id), 0, c.timeout(ctx))
	}
	if err := c.await(ctx, op, f); err != nil {
		return 0, err
	}
	return f.Index(), nil
}

// RemoveServer takes a node out of Raft. Only the leader can.
func (c *Catalog) RemoveServer(ctx context.Context, id string) error {
	f := c.raft.RemoveServer(raft.ServerID(id), 0, c.timeout(ctx))
	return c.await(ctx, "catalog.RemoveServer", f)
}

// TransferLeadership hands the leadership to another voter and waits
// until one has it, for a leader that is about to leave.
func (c *Catalog) TransferLeadership(ctx context.Context) error {
	const op = artmesh.Op("catalog.TransferLeadership")
	if err := c.await(ctx, op, c.raft.LeadershipTransfer()); err != nil {
		return err
	}
	for {
		if addr, id := c.raft.LeaderWithID(); addr != "" && string(id) != c.cfg.ServerID {
			return nil
		}
		select {
		case <-ctx.Done():
			return unavailable(op, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// String describes a member for logs.
func (m Member) String() string { return fmt.Sprintf("%s %v", m.PeerID, m.Addresses) }

// DemoteServer takes a voter's vote away: it stays in Raft as a nonvoter
// and keeps receiving the log. Only the leader can.
func (c *Catalog) DemoteServer(ctx context.Context, id string) error {
	f := c.raft.DemoteVoter(raft.ServerID(id), 0, c.timeout(ctx))
	return c.await(ctx, "catalog.DemoteServer", f)
}

// CommitIndex is the highest log index this node knows to be committed:
// a configuration written at or below it is the mesh's, not a proposal
// that a new leader may still drop.
func (c *Catalog) CommitIndex() uint64 { return c.raft.CommitIndex() }

// Configuration returns Raft's latest configuration, as Servers does, and
// the log index it was written at (0: none yet). Of two configurations of
// one mesh, the one with the higher index is the newer.
func (c *Catalog) Configuration() ([]Server, uint64, error) {
	out, err := c.Servers()
	if err != nil {
		return nil, 0, err
	}
	// raft's GetConfiguration().Index() is always 0 in raft v1.8.0 (see
	// confLog). The entry may be stored a moment before or after raft
	// makes it the latest configuration: the two agree again at once.
	return out, c.logs.latest(), nil
}

// StopRaft stops this node's part in Raft for good, for a node that was
// removed from the mesh: it no longer campaigns or answers Raft's calls,
// and writes fail, while the local state stays readable. Close still
// closes the log. It is safe to call more than once.
func (c *Catalog) StopRaft() error {
	if err := c.raft.Shutdown().Error(); err != nil {
		return artmesh.E(artmesh.Op("catalog.StopRaft"), fmt.Errorf("shut raft down: %w", err))
	}
	return nil
}

// LeaderTerm returns the leader this node follows (or is), by server ID
// ("" when it knows none), and its current Raft term. The two are read
// one after the other, not at once: around an election they may disagree
// for a moment, which a caller that compares the answers of several nodes
// (membership's vouch for a leader) sees as no agreement.
func (c *Catalog) LeaderTerm() (leader string, term uint64) {
	_, id := c.raft.LeaderWithID()
	return string(id), c.raft.CurrentTerm()
}
