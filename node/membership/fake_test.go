package membership

import (
	"context"
	"crypto/rand"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
)

// fakeCatalog is the part of the catalog a Manager uses, in memory, with
// the rules that membership relies on (an invite is used once, for one
// peer, before it expires). Methods it does not implement panic through
// the nil embedded interface: a test that reaches one is wrong.
type fakeCatalog struct {
	Catalog

	mu        sync.Mutex
	leader    bool
	leaderID  string // LeaderTerm's leader
	term      uint64 // LeaderTerm's term
	members   map[string]catalog.Member
	invites   map[string]catalog.Invite
	agents    map[artmesh.AgentID]string // agent: key hash
	agentNode map[artmesh.AgentID]string // agent: the node it manages
	// minCommands is the lowest KnownCommands a joiner must have.
	minCommands int
	servers     []catalog.Server
	removed     []string // RemoveServer's ids, in order
	demoted     []string // DemoteServer's ids, in order
	confIndex   uint64   // the index Configuration reports
	// uncommitted: the latest configuration is not committed yet
	// (CommitIndex is below confIndex).
	uncommitted bool
	stopped     bool // StopRaft was called
	transfers   int  // TransferLeadership's calls
	// onAddServer, when set, is called at AddServer, before the change.
	onAddServer func(id string, voter bool)
	// proposals counts the calls that would be Raft entries in the real
	// catalog, refused or not (a refused ConsumeInvite is still an
	// entry: the FSM refuses it once it is committed).
	proposals int
}

func newFakeCatalog(leader bool, servers ...catalog.Server) *fakeCatalog {
	return &fakeCatalog{
		leader:    leader,
		members:   make(map[string]catalog.Member),
		invites:   make(map[string]catalog.Invite),
		agents:    make(map[artmesh.AgentID]string),
		agentNode: make(map[artmesh.AgentID]string),
		servers:   servers,
	}
}

func (f *fakeCatalog) setMembers(ms ...catalog.Member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = make(map[string]catalog.Member)
	for _, m := range ms {
		f.members[m.PeerID] = m
	}
}

func (f *fakeCatalog) Members() ([]catalog.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []catalog.Member
	for _, m := range f.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b catalog.Member) int { return strings.Compare(a.PeerID, b.PeerID) })
	return out, nil
}

func (f *fakeCatalog) Member(id string) (catalog.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.members[id]
	if !ok {
		return catalog.Member{}, artmesh.E(artmesh.NotFound, "no such member")
	}
	return m, nil
}

func (f *fakeCatalog) PutMember(_ context.Context, m catalog.Member) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.proposals++
	if m.Agent == "" {
		m.Agent = f.members[m.PeerID].Agent
	}
	f.members[m.PeerID] = m
	return nil
}

func (f *fakeCatalog) DeleteMember(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.members[id]; !ok {
		return artmesh.E(artmesh.NotFound, "no such member")
	}
	delete(f.members, id)
	return nil
}

func (f *fakeCatalog) CreateInvite(_ context.Context, inv catalog.Invite) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.proposals++
	f.invites[inv.SecretHash] = inv
	return nil
}

func (f *fakeCatalog) ConsumeInvite(_ context.Context, hash, id string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.proposals++
	inv, ok := f.invites[hash]
	switch {
	case !ok:
		return artmesh.E(artmesh.PermissionDenied, "the invite is not known to this mesh")
	case inv.UsedBy != "" && inv.UsedBy != id:
		return artmesh.E(artmesh.Conflict, "the invite was already used")
	case !at.Before(inv.ExpiresAt):
		return artmesh.E(artmesh.Expired, "the invite expired")
	}
	inv.UsedBy = id
	f.invites[hash] = inv
	return nil
}

func (f *fakeCatalog) Invite(hash string) (catalog.Invite, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inv, ok := f.invites[hash]
	if !ok {
		return catalog.Invite{}, artmesh.E(artmesh.NotFound, "no such invite")
	}
	return inv, nil
}

// proposed returns how many proposals the catalog has taken.
func (f *fakeCatalog) proposed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.proposals
}

func (f *fakeCatalog) Agent(id artmesh.AgentID) (artmesh.Agent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.agents[id]; !ok {
		return artmesh.Agent{}, artmesh.E(artmesh.NotFound, "no such agent")
	}
	node := f.agentNode[id]
	return artmesh.Agent{ID: id, Admin: node == "", Node: node}, nil
}

func (f *fakeCatalog) CreateAgent(_ context.Context, cmd catalog.CreateAgent) (artmesh.Agent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.proposals++
	f.agents[cmd.Agent.ID] = cmd.KeyHash
	f.agentNode[cmd.Agent.ID] = cmd.Agent.Node
	return cmd.Agent, nil
}

func (f *fakeCatalog) SetAgentKey(_ context.Context, id artmesh.AgentID, hash string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.proposals++
	f.agents[id] = hash
	return nil
}

func (f *fakeCatalog) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

func (f *fakeCatalog) LeaderTerm() (string, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leaderID, f.term
}

func (f *fakeCatalog) Servers() ([]catalog.Server, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.servers), nil
}

func (f *fakeCatalog) AddServer(_ context.Context, id string, voter bool) (uint64, error) {
	if f.onAddServer != nil {
		f.onAddServer(id, voter)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers = slices.DeleteFunc(f.servers, func(s catalog.Server) bool { return s.ID == id })
	f.servers = append(f.servers, catalog.Server{ID: id, Voter: voter})
	return uint64(100 + len(f.servers)), nil
}

func (f *fakeCatalog) RemoveServer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers = slices.DeleteFunc(f.servers, func(s catalog.Server) bool { return s.ID == id })
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeCatalog) Configuration() ([]catalog.Server, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.servers), f.confIndex, nil
}

// CommitIndex: the fake's configurations are committed as soon as they
// are made, unless uncommitted says otherwise.
func (f *fakeCatalog) CommitIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.uncommitted {
		return f.confIndex - 1
	}
	return f.confIndex
}

func (f *fakeCatalog) StopRaft() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	return nil
}

func (f *fakeCatalog) DemoteServer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.servers {
		if f.servers[i].ID == id {
			f.servers[i].Voter = false
		}
	}
	f.demoted = append(f.demoted, id)
	return nil
}

func (f *fakeCatalog) WaitApplied(context.Context, uint64) error { return nil }

// TransferLeadership makes another server the leader: this one follows.
func (f *fakeCatalog) TransferLeadership(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader = false
	f.transfers++
	return nil
}

// testNode is what a Manager runs with: a real libp2p host on 127.0.0.1
// whose admission checks the Manager's roster.
type testNode struct {
	id       peer.ID
	host     host.Host
	roster   *Roster
	cat      *fakeCatalog
	m        *Manager
	caughtUp bool
}

// newTestNode starts a host and a Manager over cat with repo folder dir.
func newTestNode(t *testing.T, cat *fakeCatalog, dir string) *testNode {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{id: id, roster: NewRoster(id), cat: cat}
	adm := mesh.NewAdmission(JoinProtocol, StatusProtocol)
	adm.SetMember(tn.roster.Has)
	cfg := mesh.DefaultConfig()
	cfg.Identity, cfg.Listen, cfg.Admission = priv, []string{"/ip4/127.0.0.1/tcp/0"}, adm
	if tn.host, err = mesh.NewHost(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.host.Close() })
	tn.m = New(Config{
		Self: id, Host: tn.host, Catalog: cat, Roster: tn.roster, Admission: adm,
		Repo: dir, Voters: 3,
		APIURL:   func() string { return "http://api." + id.String()[len(id.String())-4:] },
		CaughtUp: func() bool { return tn.caughtUp },
		CallLeader: func(context.Context, protocol.ID, []byte) ([]byte, error) {
			return nil, artmesh.E(artmesh.Unavailable, "no leader in this test")
		},
	})
	mesh.ServeGuest(tn.host, JoinProtocol, tn.m.ServeJoin)
	mesh.Serve(tn.host, StatusProtocol, tn.m.ServeStatus)
	return tn
}

// addrs returns the node's mesh addresses as strings.
func (tn *testNode) addrs() []string {
	var out []string
	for _, a := range tn.host.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// member is the node's entry as the catalog records it.
func (tn *testNode) member() catalog.Member {
	return catalog.Member{PeerID: tn.id.String(), Addresses: tn.addrs(), APIURL: tn.m.cfg.APIURL()}
}

// CheckJoiner refuses joiners that know fewer commands than minCommands.
func (f *fakeCatalog) CheckJoiner(commands int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if commands < f.minCommands {
		return artmesh.E(artmesh.Conflict, "the joining node is too old")
	}
	return nil
}
