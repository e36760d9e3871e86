// Package membership knows who belongs to the mesh and keeps it that way:
// the join protocol (a new node's side and the members' side), the roster
// of members that admission to the mesh is checked against, the members'
// addresses in the peerstore and in the repo's peers.json, the listing of
// members, invites, removal, the leader's upkeep of voters (an
// unreachable voter is demoted and a reachable nonvoter takes its vote; a
// member is removed only after DeadMemberAfter), and a removed node's
// finding out that it was removed.
//
// The package decides nothing about rights: package node checks that the
// caller may invite or remove before it calls a Manager. The catalog is
// the source of truth for who is a member; a Manager reads it through the
// Catalog interface and acts on the difference with the local state (the
// roster, the peerstore, the connections, peers.json), in Run.
package membership

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/repo"
)

// Catalog is what a Manager reads from and proposes to the catalog.
type Catalog interface {
	Members() ([]catalog.Member, error)
	Member(peerID string) (catalog.Member, error)
	PutMember(ctx context.Context, m catalog.Member) error
	DeleteMember(ctx context.Context, peerID string) error
	CreateInvite(ctx context.Context, inv catalog.Invite) error
	// Invite reads an invite by its secret's hash, without a proposal.
	Invite(secretHash string) (catalog.Invite, error)
	ConsumeInvite(ctx context.Context, secretHash, peerID string, at time.Time) error

	// The admin agent a joining node is given.
	Agent(id artmesh.AgentID) (artmesh.Agent, error)
	CreateAgent(ctx context.Context, cmd catalog.CreateAgent) (artmesh.Agent, error)
	SetAgentKey(ctx context.Context, id artmesh.AgentID, keyHash string) error

	// Raft's configuration.
	IsLeader() bool
	// LeaderTerm returns the leader this node follows or is ("" when
	// none) and its current Raft term.
	LeaderTerm() (leader string, term uint64)
	Servers() ([]catalog.Server, error)
	Configuration() ([]catalog.Server, uint64, error)
	CommitIndex() uint64
	AddServer(ctx context.Context, id string, voter bool) (uint64, error)
	RemoveServer(ctx context.Context, id string) error
	DemoteServer(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context) error
	// StopRaft stops this node's part in Raft, once it was removed.
	StopRaft() error

	// The local state's progress.
	WaitApplied(ctx context.Context, index uint64) error
	Watch() (uint64, <-chan struct{})
	CheckJoiner(commands int) error
	ChangedSince(index uint64, topics catalog.Topic) bool
}

var _ Catalog = (*catalog.Catalog)(nil)

// Config is what a Manager needs. Every field is required unless it says
// otherwise.
type Config struct {
	// Authenticate finds the agent a credential belongs to, by this
	// node's committed state (catalog.Config.Authenticate): the leader
	// checks with it that a removal asked by another member is asked by
	// a mesh admin, or by the leaving node's own agent.
	Authenticate func(ctx context.Context, c catalog.Credential) (catalog.Principal, error)
	Self         peer.ID
	Host         host.Host
	Catalog      Catalog
	// Roster is the set of admitted peers that Admission checks; the
	// Manager keeps it in step with the catalog.
	Roster    *Roster
	Admission *mesh.Admission
	// Repo is the node's repo folder: the Manager keeps peers.json there,
	// writes api.key at join and records the join state in config.json.
	Repo string
	// Member is repo.Config.Member at start: the node is, or was, one of
	// several members of a mesh. The Manager records it once it is.
	Member bool
	// Voters is how many members vote in the catalog; later members join
	// as nonvoters.
	Voters int
	// MeshKey is the private network key that invites carry; zero: none.
	MeshKey mesh.Key
	// APIURL returns this node's API URL, recorded in its member entry.
	APIURL func() string
	// CaughtUp reports whether the local catalog has applied the leader's
	// commit index since start; until then the seeds stay admitted.
	CaughtUp func() bool
	// CallLeader sends a request to the catalog's leader over proto.
	CallLeader func(ctx context.Context, proto protocol.ID, req []byte) ([]byte, error)
	// Placement, when set, returns the bytes each member holds and how
	// many versions allocated to each are under-replicated, for Members.
	Placement func(members int) (held map[string]int64, under map[string]int)
	// DeadVoterAfter is how long a voter may be unreachable before the
	// leader demotes it and gives its vote to a nonvoter. Zero means
	// DefaultDeadVoterAfter.
	DeadVoterAfter time.Duration
	// DeadMemberAfter is how long a member may be unreachable before the
	// leader removes it from the mesh. Zero means DefaultDeadMemberAfter.
	DeadMemberAfter time.Duration
	// Removed is repo.Config.Removed at start: the node found out earlier
	// that it was removed from its mesh. The Manager then does nothing.
	Removed *repo.Removal
	// Log receives the Manager's logs; nil discards them.
	Log *slog.Logger
	// Now is the clock that joins are checked and limited by; nil means
	// time.Now.
	Now func() time.Time
}

// Manager keeps this node's view of the mesh's members in step with the
// catalog. Its methods are safe for concurrent use.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	member atomic.Bool // Config.Member, then true once recorded
	// removed is set once this node knows it was removed from its mesh.
	removed atomic.Pointer[repo.Removal]

	// joinVoters are the voters the join answer named, once this node
	// joined at this run (MayLeadUnconfigured).
	joinVoters atomic.Pointer[map[peer.ID]struct{}]

	mu         sync.Mutex // serialises writes of peers.json and config.json
	savedPeers []byte     // what peers.json holds, to write it only on change

	cutMu sync.Mutex
	cutAt map[peer.ID]time.Time // peers no longer admitted, and when their connections close

	joins *joinLimiter // join attempts of peers that are not members

	// vouched is the last leader a majority of this node's voters named
	// (VouchedLeader), and vouchAsk asks runVouches for a round.
	vouched  atomic.Pointer[vouchedLeader]
	vouchAsk chan struct{}
}

// cutGrace is how long the connections of a peer that is no longer a
// member stay open after it was dropped: its new streams are refused at
// once, and answers already on their way (the leader's answer to the
// removal of a node that leaves) still reach it.
const cutGrace = time.Second

// New returns a Manager for cfg. It starts nothing: Run is the
// reconciler.
func New(cfg Config) *Manager {
	if cfg.DeadVoterAfter <= 0 {
		cfg.DeadVoterAfter = DefaultDeadVoterAfter
	}
	if cfg.DeadMemberAfter <= 0 {
		cfg.DeadMemberAfter = DefaultDeadMemberAfter
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{cfg: cfg, log: cfg.Log, joins: newJoinLimiter(), vouchAsk: make(chan struct{}, 1)}
	m.member.Store(cfg.Member)
	m.removed.Store(cfg.Removed)
	return m
}

// now is the Manager's clock.
func (m *Manager) now() time.Time { return m.cfg.Now() }

// AdmitListed admits the members that the local catalog lists now. It is
// called once at start, before the node serves or dials anyone, so
// nobody is cut off.
func (m *Manager) AdmitListed() {
	if members, err := m.cfg.Catalog.Members(); err == nil {
		m.cfg.Roster.SetMembers(memberIDs(members))
	}
}

// Run is the membership reconciler: every 2 s and at once whenever the
// catalog's members change it checks whether this node was removed, makes
// the cut-offs that are due, runs syncMembers when fullSync says so, and
// on the leader tends the voters; until ctx ends or this node finds out
// that it was removed from its mesh (see checkRemoved). It runs from the
// start, caught up or not: admission follows the local catalog.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	// runVouches is Run's: it ends with it.
	vctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { m.runVouches(vctx) })
	defer wg.Wait()
	defer stop()
	var u upkeep
	var rc removalCheck
	var fs fullSync
	seen, changed := m.cfg.Catalog.Watch()
	for {
		if _, gone := m.Removed(); gone {
			return
		}
		if why := m.checkRemoved(ctx, &rc); why != "" {
			m.markRemoved(why, time.Now())
			return
		}
		// The members are read and applied when they changed, when the
		// node caught up, and at least every fullSyncEvery; between those
		// only the cut-offs that are due are made. Reading and applying
		// them every 2 s was most of what an idle member of a wide mesh
		// did (30 rows decoded, 30 peers' addresses parsed).
		idx, _ := m.cfg.Catalog.Watch()
		caughtUp, own := m.cfg.CaughtUp(), m.ownRow()
		if fs.due(m.cfg.Catalog, caughtUp, own, m.now()) {
			if m.syncMembers(ctx) {
				fs.done(idx, caughtUp, own, m.now())
			}
		} else {
			m.cutOff(nil)
		}
		m.tendVoters(ctx, &u)
		for wait := true; wait; {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				wait = false
			case <-changed:
				var idx uint64
				idx, changed = m.cfg.Catalog.Watch()
				wait = !m.cfg.Catalog.ChangedSince(seen, catalog.TopicMembers)
				seen = idx
			}
		}
	}
}

// fullSyncEvery is the longest the membership reconciler goes without
// reading the members anew when nothing says they changed.
const fullSyncEvery = 30 * time.Second

// fullSync is when the membership reconciler last read the members.
type fullSync struct {
	ok       bool
	index    uint64 // the catalog's index then
	caughtUp bool
	own      string // this node's addresses and API URL then
	at       time.Time
}

// due reports whether the members must be read now: never yet, a change
// of the members since, the node caught up since, its own addresses or
// API URL (own) changed since, or fullSyncEvery passed.
func (f *fullSync) due(c interface {
	ChangedSince(uint64, catalog.Topic) bool
}, caughtUp bool, own string, now time.Time) bool {
	return !f.ok || caughtUp != f.caughtUp || own != f.own || now.Sub(f.at) >= fullSyncEvery || c.ChangedSince(f.index, catalog.TopicMembers)
}

// done records a read of the members at the catalog's index idx.
func (f *fullSync) done(idx uint64, caughtUp bool, own string, now time.Time) {
	*f = fullSync{ok: true, index: idx, caughtUp: caughtUp, own: own, at: now}
}

// ownRow is what this node's own row of the members says of it that can
// change while it runs: its addresses and its API URL.
func (m *Manager) ownRow() string {
	return strings.Join(m.ownAddrs(), " ") + " " + m.cfg.APIURL()
}

// syncMembers keeps the peerstore, the roster and peers.json in step with
// the catalog's members, and keeps this node's own entry current. It
// reports whether all was in step: false when it could not read the
// members or had to write this node's entry (the next run checks again).
func (m *Manager) syncMembers(ctx context.Context) bool {
	members, err := m.cfg.Catalog.Members()
	if err != nil {
		return false
	}
	m.addMembers(members)
	m.admitMembers(members)
	m.savePeers(members)
	settled := true
	if len(members) > 1 && !m.member.Load() {
		// From now on this node's catalog is a mesh's, never to be
		// bootstrapped anew.
		if err := m.recordMember(); err != nil {
			m.log.Warn("recording mesh membership in the repo config", "err", err)
			settled = false
		}
	}
	self := m.cfg.Self.String()
	want := m.ownAddrs()
	apiURL := m.cfg.APIURL()
	for _, mb := range members {
		if mb.PeerID == self {
			if strings.Join(mb.Addresses, " ") == strings.Join(want, " ") && mb.APIURL == apiURL && mb.Commands == catalog.KnownCommands {
				return settled
			}
			// The row also says which catalog commands this binary knows
			// (the leader gates new ones on it): rewritten after an
			// upgrade or a downgrade.
			mb.Addresses, mb.APIURL, mb.Commands = want, apiURL, catalog.KnownCommands
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_ = m.cfg.Catalog.PutMember(cctx, mb)
			return false
		}
	}
	// Not a member yet: the first node records itself once it leads.
	if servers, err := m.cfg.Catalog.Servers(); err == nil && len(servers) == 1 && servers[0].ID == self && m.cfg.Catalog.IsLeader() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = m.cfg.Catalog.PutMember(cctx, catalog.Member{PeerID: self, Addresses: want, APIURL: apiURL, JoinedAt: time.Now().UTC(), Commands: catalog.KnownCommands})
	}
	return false // not a member (yet)
}

// admitMembers makes the catalog's members the peers admitted to the
// mesh, and cuts off at once every peer that is no longer one (a removed
// member: its streams, forwarded writes and fetches end with its
// connections), and peers that connected to join but have not become
// members within mesh.GuestGrace.
func (m *Manager) admitMembers(members []catalog.Member) {
	dropped := m.cfg.Roster.SetMembers(memberIDs(members))
	if m.cfg.CaughtUp() {
		// Caught up: the catalog's members are current, and peers the
		// node only remembered are admitted no more.
		dropped = append(dropped, m.cfg.Roster.Seed(nil)...)
	}
	m.cutOff(dropped)
}

// cutOff closes the connections of peers cutGrace after they were
// dropped (the membership loop runs at least every 2 s), and those of
// guests past their grace.
func (m *Manager) cutOff(peers []peer.ID) {
	h := m.cfg.Host
	now := time.Now()
	m.cutMu.Lock()
	defer m.cutMu.Unlock()
	if m.cutAt == nil {
		m.cutAt = make(map[peer.ID]time.Time)
	}
	for _, p := range peers {
		h.ConnManager().Unprotect(p, "member")
		m.cutAt[p] = now.Add(cutGrace)
	}
	for p, at := range m.cutAt {
		switch {
		case m.cfg.Roster.Has(p):
			delete(m.cutAt, p) // admitted again
		case !now.Before(at):
			if h.Network().Connectedness(p) == network.Connected {
				m.log.Info("closing the connections of a peer that is not a member", "peer", p)
			}
			_ = h.Network().ClosePeer(p)
			delete(m.cutAt, p)
		}
	}
	if c := m.cfg.Admission.EvictGuests(h, mesh.GuestGrace); c > 0 {
		m.log.Info("closed connections of peers that are not members", "peers", c)
	}
}

// addMembers records members' addresses in the peerstore, and protects
// their connections from trimming.
func (m *Manager) addMembers(members []catalog.Member) {
	for _, mb := range members {
		id, err := peer.Decode(mb.PeerID)
		if err != nil || id == m.cfg.Self {
			continue
		}
		var addrs []ma.Multiaddr
		for _, a := range mb.Addresses {
			if x, err := ma.NewMultiaddr(a); err == nil {
				addrs = append(addrs, x)
			}
		}
		m.cfg.Host.Peerstore().AddAddrs(id, addrs, peerstore.PermanentAddrTTL)
		m.cfg.Host.ConnManager().Protect(id, "member")
	}
}

// ownAddrs returns this node's mesh addresses.
func (m *Manager) ownAddrs() []string {
	var out []string
	for _, a := range m.cfg.Host.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// memberIDs returns the members' peer ids.
func memberIDs(members []catalog.Member) []string {
	ids := make([]string, 0, len(members))
	for _, mb := range members {
		ids = append(ids, mb.PeerID)
	}
	return ids
}
