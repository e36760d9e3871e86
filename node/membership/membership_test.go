package membership

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node/repo"
)

func TestParseJoinRequest(t *testing.T) {
	id := newPeer(t)
	tests := []struct {
		name, data, err string
	}{
		{"valid", `{"peer_id":"` + id.String() + `","secret":"s","addrs":["/ip4/127.0.0.1/tcp/1"],"api_url":"http://x"}`, ""},
		{"not JSON", `{"peer_id":`, "malformed join request"},
		{"wrong shape", `["peer_id"]`, "malformed join request"},
		{"no peer id", `{"secret":"s"}`, "malformed peer id"},
		{"bad peer id", `{"peer_id":"not-a-peer-id"}`, "malformed peer id"},
		// Decodes as a peer id, but is too short to name a node's key (it
		// used to crash the leader, which cuts the agent name from it).
		{"short peer id", `{"peer_id":"11"}`, "malformed peer id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, joiner, err := parseJoinRequest([]byte(tt.data))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || joiner != id || req.Secret != "s" || req.APIURL != "http://x" || len(req.Addrs) != 1 {
				t.Fatalf("got %+v %s %v", req, joiner, err)
			}
		})
	}
}

func TestJoinAgent(t *testing.T) {
	id := newPeer(t).String()
	a := joinAgent(id)
	if a != joinAgent(id) || !strings.HasPrefix(string(a), "admin-") || len(a) != len("admin-")+8 ||
		string(a) != strings.ToLower(string(a)) || !strings.EqualFold(string(a)[6:], id[len(id)-8:]) {
		t.Fatalf("joinAgent(%s) = %s", id, a)
	}
}

func TestJoinAsVoter(t *testing.T) {
	v := func(id string) catalog.Server { return catalog.Server{ID: id, Voter: true} }
	nv := func(id string) catalog.Server { return catalog.Server{ID: id} }
	tests := []struct {
		name    string
		servers []catalog.Server
		want    int
		voter   bool
	}{
		{"first joiner of one", []catalog.Server{v("a")}, 3, true},
		{"third voter", []catalog.Server{v("a"), v("b")}, 3, true},
		{"voters full", []catalog.Server{v("a"), v("b"), v("c")}, 3, false},
		{"nonvoters do not count", []catalog.Server{v("a"), nv("b"), nv("c")}, 3, true},
		{"a retry does not count itself", []catalog.Server{v("a"), v("b"), v("j")}, 3, true},
		{"five voters", []catalog.Server{v("a"), v("b"), v("c"), v("d")}, 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := joinAsVoter(tt.servers, "j", tt.want); got != tt.voter {
				t.Fatalf("joinAsVoter = %v, want %v", got, tt.voter)
			}
		})
	}
}

func TestPlanVoters(t *testing.T) {
	tm := timing{deadVoter: 30 * time.Second, deadMember: time.Hour, stable: 10 * time.Second, voters: 3}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(time.Minute)
	v := func(id string) catalog.Server { return catalog.Server{ID: id, Voter: true} }
	nv := func(id string) catalog.Server { return catalog.Server{ID: id} }
	// up: every server reachable since t0 (stable at now).
	up := func(ids string) map[string]time.Time {
		m := map[string]time.Time{}
		for _, id := range ids {
			m[string(id)] = t0
		}
		return m
	}
	tests := []struct {
		name     string
		servers  []catalog.Server
		up       string               // the reachable servers, one letter each
		lastSeen map[string]time.Time // before; nil: this node just became leader
		upSince  map[string]time.Time // before
		now      time.Time
		want     upkeepPlan
		// seenAfter, when set, is lastSeen after the plan.
		seenAfter map[string]time.Time
	}{
		{
			name:    "all reachable",
			servers: []catalog.Server{v("a"), v("b"), nv("c")}, up: "abc", now: t0,
			seenAfter: map[string]time.Time{"a": t0, "b": t0, "c": t0},
		},
		{
			name:    "first look at an unreachable voter starts its clock",
			servers: []catalog.Server{v("a"), v("b"), v("e"), nv("c")}, up: "ace", upSince: up("ace"), now: now,
			seenAfter: map[string]time.Time{"a": now, "b": now, "c": now, "e": now},
		},
		{
			name:    "gone, but not long enough",
			servers: []catalog.Server{v("a"), v("b"), v("e"), nv("c")}, up: "ace", upSince: up("ace"),
			lastSeen: map[string]time.Time{"b": now.Add(-30 * time.Second)}, now: now,
			seenAfter: map[string]time.Time{"a": now, "b": now.Add(-30 * time.Second), "c": now, "e": now},
		},
		{
			name:    "a dead voter is demoted and a stable nonvoter takes its vote",
			servers: []catalog.Server{v("a"), v("b"), nv("c")}, up: "ac", upSince: up("ac"),
			lastSeen: map[string]time.Time{"b": now.Add(-31 * time.Second)}, now: now,
			want:      upkeepPlan{swaps: []swap{{dead: "b", promote: "c"}}},
			seenAfter: map[string]time.Time{"a": now, "b": now.Add(-31 * time.Second), "c": now},
		},
		{
			name:    "a nonvoter back a moment ago does not take a vote yet",
			servers: []catalog.Server{v("a"), v("b"), nv("c")}, up: "ac", upSince: map[string]time.Time{"a": t0, "c": now.Add(-9 * time.Second)},
			lastSeen: map[string]time.Time{"b": t0}, now: now,
			want: upkeepPlan{stranded: "b"},
		},
		{
			name:    "no nonvoter to promote",
			servers: []catalog.Server{v("a"), v("b"), v("c")}, up: "ac", upSince: up("ac"),
			lastSeen: map[string]time.Time{"b": t0}, now: now,
			want: upkeepPlan{stranded: "b"},
		},
		{
			name:    "an unreachable nonvoter is neither demoted nor promoted",
			servers: []catalog.Server{v("a"), v("b"), nv("c"), nv("d")}, up: "ad", upSince: up("ad"),
			lastSeen: map[string]time.Time{"b": t0, "c": t0}, now: now,
			want: upkeepPlan{swaps: []swap{{dead: "b", promote: "d"}}},
		},
		{
			name:    "two dead voters, one nonvoter: the second waits",
			servers: []catalog.Server{v("a"), v("b"), v("c"), v("d"), v("e"), nv("f")}, up: "adef", upSince: up("adef"),
			lastSeen: map[string]time.Time{"b": t0, "c": t0}, now: now,
			want: upkeepPlan{swaps: []swap{{dead: "b", promote: "f"}}, stranded: "c"},
		},
		{
			name:    "two dead voters, two nonvoters, in the order of the servers",
			servers: []catalog.Server{v("a"), v("b"), v("c"), nv("d"), nv("e")}, up: "ade", upSince: up("ade"),
			lastSeen: map[string]time.Time{"b": t0, "c": t0}, now: now,
			want: upkeepPlan{swaps: []swap{{dead: "b", promote: "d"}, {dead: "c", promote: "e"}}},
		},
		{
			name:    "too few voters: stable nonvoters are promoted up to the number",
			servers: []catalog.Server{v("a"), nv("b"), nv("c"), nv("d")}, up: "abcd", upSince: up("abcd"), now: now,
			want: upkeepPlan{promote: []string{"b", "c"}},
		},
		{
			name:    "a demoted member that is back stays a nonvoter while the voters are complete",
			servers: []catalog.Server{v("a"), nv("b"), v("c"), v("d")}, up: "abcd", upSince: up("acd"),
			lastSeen: map[string]time.Time{"b": t0}, now: now,
		},
		{
			name:    "a demoted member that is back takes a missing vote",
			servers: []catalog.Server{v("a"), nv("b"), v("c")}, up: "abc", upSince: up("abc"), now: now,
			want: upkeepPlan{promote: []string{"b"}},
		},
		{
			name:    "a swap and a promotion in one round",
			servers: []catalog.Server{v("a"), v("b"), nv("c"), nv("d")}, up: "acd", upSince: up("acd"),
			lastSeen: map[string]time.Time{"b": t0}, now: now,
			want: upkeepPlan{swaps: []swap{{dead: "b", promote: "c"}}, promote: []string{"d"}},
		},
		{
			name:    "members gone for longer than deadMember are removed, voters or not",
			servers: []catalog.Server{v("a"), v("b"), nv("c"), nv("d")}, up: "a", upSince: up("a"),
			lastSeen: map[string]time.Time{"b": now.Add(-time.Hour - time.Second), "c": now.Add(-time.Hour - time.Second), "d": now.Add(-time.Hour)}, now: now,
			want: upkeepPlan{remove: []string{"b", "c"}, stranded: "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := upkeep{lastSeen: tt.lastSeen, upSince: tt.upSince}
			if u.lastSeen == nil && tt.upSince != nil {
				u.lastSeen = map[string]time.Time{}
			}
			got := u.plan(tt.servers, func(id string) bool { return strings.Contains(tt.up, id) }, tt.now, tm)
			if !slices.Equal(got.swaps, tt.want.swaps) || !slices.Equal(got.promote, tt.want.promote) ||
				!slices.Equal(got.remove, tt.want.remove) || got.stranded != tt.want.stranded {
				t.Fatalf("plan = %+v; want %+v", got, tt.want)
			}
			if tt.seenAfter == nil {
				return
			}
			if len(u.lastSeen) != len(tt.seenAfter) {
				t.Fatalf("last seen %v, want %v", u.lastSeen, tt.seenAfter)
			}
			for id, at := range tt.seenAfter {
				if !u.lastSeen[id].Equal(at) {
					t.Fatalf("last seen %v, want %v", u.lastSeen, tt.seenAfter)
				}
			}
		})
	}
}

// TestPlanVotersOverTime runs the plan round after round on one clock: a
// voter that goes away is demoted after deadVoter, keeps its membership,
// and is removed only after deadMember; one that comes back in between
// is a nonvoter again, promoted only when a vote is missing.
func TestPlanVotersOverTime(t *testing.T) {
	tm := timing{deadVoter: 30 * time.Second, deadMember: time.Hour, stable: 10 * time.Second, voters: 3}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	servers := []catalog.Server{{ID: "a", Voter: true}, {ID: "b", Voter: true}, {ID: "c", Voter: true}, {ID: "d"}}
	role := func(id string, voter bool) {
		for i := range servers {
			if servers[i].ID == id {
				servers[i].Voter = voter
			}
		}
	}
	up := "abcd"
	var u upkeep
	var demotedAt, removedAt time.Duration
	for tick := time.Duration(0); tick <= 2*time.Hour; tick += 2 * time.Second {
		if tick == time.Minute {
			up = "acd" // b goes away
		}
		p := u.plan(servers, func(id string) bool { return strings.Contains(up, id) }, t0.Add(tick), tm)
		for _, s := range p.swaps {
			role(s.promote, true)
			role(s.dead, false)
			demotedAt = tick
		}
		for _, id := range p.promote {
			role(id, true)
		}
		for _, id := range p.remove {
			servers = slices.DeleteFunc(servers, func(s catalog.Server) bool { return s.ID == id })
			removedAt = tick
		}
	}
	// b was last seen at 58 s: demoted at the first round more than 30 s
	// later, removed at the first round more than 1 h later.
	if demotedAt != 90*time.Second || removedAt != time.Hour+time.Minute {
		t.Fatalf("demoted at %s, removed at %s", demotedAt, removedAt)
	}
	if len(servers) != 3 || !servers[0].Voter || !servers[1].Voter || !servers[2].Voter {
		t.Fatalf("servers at the end: %+v", servers)
	}
}

// TestTendVoters: the leader promotes a connected nonvoter in place of a
// voter it has not reached for longer than DeadVoterAfter, then demotes
// the dead voter, which stays in Raft and in the members; only after
// DeadMemberAfter is it removed. A node that stops leading forgets what
// it saw.
func TestTendVoters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cat := newFakeCatalog(true)
	a := newTestNode(t, cat, t.TempDir())
	spare := newTestNode(t, newFakeCatalog(false), t.TempDir())
	dead := newPeer(t).String()
	a.m.cfg.DeadVoterAfter = time.Minute
	a.m.cfg.DeadMemberAfter = time.Hour
	cat.servers = []catalog.Server{{ID: a.id.String(), Voter: true, Leader: true}, {ID: dead, Voter: true}, {ID: spare.id.String()}}
	cat.setMembers(a.member(), spare.member(), catalog.Member{PeerID: dead})
	a.roster.SetMembers([]string{spare.id.String()})
	spare.roster.SetMembers([]string{a.id.String()})
	if err := spare.host.Connect(ctx, peer.AddrInfo{ID: a.id, Addrs: a.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	var u upkeep
	a.m.tendVoters(ctx, &u) // the first look starts the dead voter's clock
	if got := mustServers(t, cat); len(got) != 3 || !got[1].Voter || got[2].Voter {
		t.Fatalf("servers changed at the first look: %+v", got)
	}
	u.lastSeen[dead] = time.Now().Add(-2 * time.Minute)
	u.upSince[spare.id.String()] = time.Now().Add(-time.Minute)
	a.m.tendVoters(ctx, &u)
	got := mustServers(t, cat)
	want := []catalog.Server{{ID: a.id.String(), Voter: true, Leader: true}, {ID: dead}, {ID: spare.id.String(), Voter: true}}
	if !slices.Equal(got, want) || len(cat.removed) != 0 {
		t.Fatalf("after the upkeep: servers %+v (want %+v), removed %v", got, want, cat.removed)
	}
	if _, err := cat.Member(dead); err != nil {
		t.Fatalf("a demoted voter lost its membership: %v", err)
	}
	// Gone for longer than DeadMemberAfter: removed from Raft and from
	// the members.
	u.lastSeen[dead] = time.Now().Add(-2 * time.Hour)
	a.m.tendVoters(ctx, &u)
	if got := mustServers(t, cat); len(got) != 2 || !slices.Equal(cat.removed, []string{dead}) {
		t.Fatalf("after DeadMemberAfter: servers %+v, removed %v", got, cat.removed)
	}
	if _, err := cat.Member(dead); err == nil {
		t.Fatal("a member gone for longer than DeadMemberAfter is still a member")
	}
	if _, ok := u.lastSeen[dead]; ok {
		t.Fatal("the removed voter is still tracked")
	}
	cat.leader = false
	a.m.tendVoters(ctx, &u)
	if u.lastSeen != nil || u.upSince != nil {
		t.Fatal("a node that stopped leading kept its view of the voters")
	}
}

func mustServers(t *testing.T, cat *fakeCatalog) []catalog.Server {
	t.Helper()
	s, err := cat.Servers()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPeersFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m := New(Config{Repo: dir})
	path := filepath.Join(dir, repo.PeersFile)
	m.savePeers(nil)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no members wrote peers.json: %v", err)
	}
	members := []catalog.Member{
		{PeerID: newPeer(t).String(), Addresses: []string{"/ip4/127.0.0.1/tcp/4001"}, APIURL: "http://127.0.0.1:7480", JoinedAt: time.Unix(1700000000, 0).UTC(), Agent: "admin-x"},
		{PeerID: newPeer(t).String(), Addresses: []string{"/ip4/10.0.0.2/tcp/4001", "/ip4/10.0.0.3/tcp/4001"}},
	}
	m.savePeers(members)
	got, err := readPeers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].PeerID != members[0].PeerID || !got[0].JoinedAt.Equal(members[0].JoinedAt) ||
		got[0].Agent != "admin-x" || !slices.Equal(got[1].Addresses, members[1].Addresses) {
		t.Fatalf("read back %+v, want %+v", got, members)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("peers.json: %v %v", fi, err)
	}
	// The same members again: not written (peers.json is written only on
	// change, not every 2 s).
	os.Remove(path)
	m.savePeers(members)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unchanged members were written again: %v", err)
	}
	m.savePeers(members[:1])
	if got, err := readPeers(dir); err != nil || len(got) != 1 {
		t.Fatalf("changed members: %v %v", got, err)
	}
	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := readPeers(dir); err == nil {
		t.Fatal("a corrupt peers.json was read")
	}
}

// TestSeedsUntilCaughtUp: the members saved in peers.json are admitted
// and reachable from the start, until the node has caught up; then only
// the catalog's members are. The node's own entry is kept current, and
// the repo records that the node is a mesh's member once there are
// others.
func TestSeedsUntilCaughtUp(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, repo.Config{})
	cat := newFakeCatalog(true)
	n := newTestNode(t, cat, dir)
	cat.setMembers(catalog.Member{PeerID: n.id.String()}) // addresses not yet recorded
	saved := newPeer(t)
	data, _ := json.Marshal([]catalog.Member{{PeerID: n.id.String()}, {PeerID: saved.String(), Addresses: []string{"/ip4/127.0.0.1/tcp/9"}}})
	os.WriteFile(filepath.Join(dir, repo.PeersFile), data, 0o600)

	n.m.AdmitListed()
	if n.roster.Has(saved) {
		t.Fatal("a saved peer was admitted before peers.json was loaded")
	}
	n.m.LoadSaved()
	if !n.roster.Has(saved) {
		t.Fatal("a member saved in peers.json is not admitted at start")
	}
	if len(n.host.Peerstore().Addrs(saved)) != 1 {
		t.Fatalf("the saved member's address is not in the peerstore: %v", n.host.Peerstore().Addrs(saved))
	}
	ctx := context.Background()
	n.m.syncMembers(ctx)
	if !n.roster.Has(saved) {
		t.Fatal("a saved member was dropped before the node caught up")
	}
	if self, _ := cat.Member(n.id.String()); !slices.Equal(self.Addresses, n.addrs()) || self.APIURL != n.m.cfg.APIURL() {
		t.Fatalf("own entry not brought up to date: %+v", self)
	}
	n.caughtUp = true
	n.m.syncMembers(ctx)
	if n.roster.Has(saved) {
		t.Fatal("a saved peer that the catalog does not list is still admitted after catching up")
	}
	if rc, _ := repo.ReadConfig(dir); rc.Member {
		t.Fatal("a single node recorded itself as a mesh member")
	}
	other := newPeer(t)
	cat.setMembers(n.member(), catalog.Member{PeerID: other.String()})
	n.m.syncMembers(ctx)
	if !n.roster.Has(other) {
		t.Fatal("a member the catalog lists is not admitted")
	}
	if rc, err := repo.ReadConfig(dir); err != nil || !rc.Member {
		t.Fatalf("membership of a mesh not recorded in the repo config: %+v %v", rc, err)
	}
	if got, _ := readPeers(dir); len(got) != 2 {
		t.Fatalf("peers.json not brought up to date: %+v", got)
	}
}

// TestFirstNodeRecordsItself: a node alone in Raft records its member
// entry once it leads.
func TestFirstNodeRecordsItself(t *testing.T) {
	cat := newFakeCatalog(false)
	n := newTestNode(t, cat, t.TempDir())
	cat.servers = []catalog.Server{{ID: n.id.String(), Voter: true, Leader: true}}
	n.m.syncMembers(context.Background())
	if _, err := cat.Member(n.id.String()); err == nil {
		t.Fatal("a node that does not lead recorded itself")
	}
	cat.leader = true
	n.m.syncMembers(context.Background())
	if self, err := cat.Member(n.id.String()); err != nil || !slices.Equal(self.Addresses, n.addrs()) || self.JoinedAt.IsZero() || self.Commands != catalog.KnownCommands {
		t.Fatalf("the first node's entry: %+v %v", self, err)
	}
	// A row written by an older (or newer) binary, with the addresses
	// unchanged, records this binary's commands once it starts.
	stale, _ := cat.Member(n.id.String())
	for _, commands := range []int{0, 10, catalog.KnownCommands + 1} {
		stale.Commands = commands
		cat.setMembers(stale)
		n.m.syncMembers(context.Background())
		if self, err := cat.Member(n.id.String()); err != nil || self.Commands != catalog.KnownCommands || !slices.Equal(self.Addresses, n.addrs()) {
			t.Fatalf("the entry recorded with commands %d, after a start: %+v %v", commands, self, err)
		}
	}
}

// TestJoin runs the join protocol between two Managers over real hosts:
// an invite from the leader, the new node's request, and what each side
// records.
func TestJoin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leaderCat := newFakeCatalog(true)
	a := newTestNode(t, leaderCat, t.TempDir())
	leaderCat.servers = []catalog.Server{{ID: a.id.String(), Voter: true, Leader: true}}
	leaderCat.setMembers(a.member())
	a.caughtUp = true
	a.m.AdmitListed()

	inv, err := a.m.CreateInvite(ctx, "admin", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ticket, err := repo.ParseTicket(inv.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	if ticket.Voters != 3 || ticket.Key != "" || !strings.HasSuffix(ticket.Addrs[0], "/p2p/"+a.id.String()) || !inv.ExpiresAt.After(time.Now().Add(59*time.Minute)) {
		t.Fatalf("ticket %+v, expires %s", ticket, inv.ExpiresAt)
	}

	dirB := t.TempDir()
	writeConfig(t, dirB, repo.Config{Join: ticket})
	b := newTestNode(t, newFakeCatalog(false), dirB)
	var admittedFirst, asVoter bool
	leaderCat.onAddServer = func(id string, voter bool) {
		admittedFirst = id == b.id.String() && a.roster.Has(b.id)
		asVoter = voter
	}

	// A wrong secret: refused, with the leader's reason.
	bad := *ticket
	bad.Secret = strings.Repeat("0", 64)
	err = b.m.Join(ctx, &bad)
	if !errors.Is(err, artmesh.Unavailable) || !strings.Contains(err.Error(), "join refused: the invite is not known to this mesh") {
		t.Fatalf("join with a wrong secret: %v", err)
	}
	if a.roster.Has(b.id) {
		t.Fatal("a node with a wrong secret was admitted")
	}

	if err := b.m.Join(ctx, ticket); err != nil {
		t.Fatal(err)
	}
	// The leader's side.
	if !admittedFirst {
		t.Fatal("the joiner was not admitted before it was added to Raft")
	}
	if !asVoter {
		t.Fatal("the second node of a mesh of 3 voters joined as a nonvoter")
	}
	mb, err := leaderCat.Member(b.id.String())
	if err != nil || mb.Agent != joinAgent(b.id.String()) || mb.APIURL != b.m.cfg.APIURL() || !slices.Equal(mb.Addresses, b.addrs()) || mb.Commands != catalog.KnownCommands {
		t.Fatalf("the joiner's member entry: %+v %v", mb, err)
	}
	if got, _ := readPeers(a.m.cfg.Repo); len(got) != 2 {
		t.Fatalf("the leader's peers.json: %+v", got)
	}
	// The joiner's side.
	key, err := os.ReadFile(filepath.Join(dirB, repo.APIKeyFile))
	if err != nil || leaderCat.agents[mb.Agent] != acl.HashKey(strings.TrimSpace(string(key))) {
		t.Fatalf("api.key %q does not match the join agent's key: %v", key, err)
	}
	if rc, err := repo.ReadConfig(dirB); err != nil || rc.Join != nil || !rc.Member {
		t.Fatalf("the joiner's repo config: %+v %v", rc, err)
	}
	if !b.roster.Has(a.id) {
		t.Fatal("the joiner does not admit the mesh's members")
	}
	if got, _ := readPeers(dirB); len(got) != 2 {
		t.Fatalf("the joiner's peers.json: %+v", got)
	}
	// The listing, on the leader.
	a.m.cfg.Placement = func(members int) (map[string]int64, map[string]int) {
		if members != 2 {
			t.Errorf("placement asked for %d members", members)
		}
		return map[string]int64{b.id.String(): 42}, map[string]int{b.id.String(): 1}
	}
	list, err := a.m.Members()
	if err != nil || len(list) != 2 {
		t.Fatalf("members: %+v %v", list, err)
	}
	if l := list[0]; l.PeerID != a.id.String() || l.Role != "voter" || !l.Leader || !l.Reachable {
		t.Fatalf("the leader as listed: %+v", l)
	}
	if l := list[1]; l.PeerID != b.id.String() || l.Role != "voter" || l.Leader || !l.Reachable || l.BytesHeld != 42 || l.UnderReplicated != 1 || l.APIURL != mb.APIURL {
		t.Fatalf("the joiner as listed: %+v", l)
	}

	// The same invite cannot let another node in, and a node that is
	// not a member cannot pass on a request for someone else.
	c := newTestNode(t, newFakeCatalog(false), t.TempDir())
	if err := c.m.Join(ctx, ticket); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("a used ticket let another node join: %v", err)
	}
	req, _ := json.Marshal(joinRequest{PeerID: b.id.String(), Secret: ticket.Secret})
	if _, err := a.m.ServeJoin(ctx, c.id, req); err == nil || err.Error() != "only a member may pass on a join request" {
		t.Fatalf("a stranger passed on a join request: %v", err)
	}
}

// TestRemovedMemberIsCutOff: once the catalog no longer lists a member,
// its connections are closed and it is not admitted.
func TestRemovedMemberIsCutOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	catA := newFakeCatalog(true)
	a := newTestNode(t, catA, t.TempDir())
	b := newTestNode(t, newFakeCatalog(false), t.TempDir())
	a.caughtUp = true
	catA.setMembers(a.member(), b.member())
	a.m.syncMembers(ctx)
	b.roster.SetMembers([]string{a.id.String()})
	if err := b.host.Connect(ctx, peer.AddrInfo{ID: a.id, Addrs: a.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if a.host.Network().Connectedness(b.id) != network.Connected {
		t.Fatal("a member is not connected")
	}
	catA.setMembers(a.member())
	a.m.syncMembers(ctx)
	if a.roster.Has(b.id) {
		t.Fatal("a removed member is still admitted")
	}
	// Its connections close at the next pass of the loop after cutGrace
	// (answers on their way still reach it).
	time.Sleep(cutGrace)
	a.m.syncMembers(ctx)
	if a.host.Network().Connectedness(b.id) == network.Connected {
		t.Fatal("a removed member's connections were not closed")
	}
}

func TestRemove(t *testing.T) {
	self, other, gone := newPeer(t).String(), newPeer(t).String(), newPeer(t).String()
	servers := func() []catalog.Server {
		return []catalog.Server{{ID: self, Voter: true, Leader: true}, {ID: other, Voter: true}}
	}
	tests := []struct {
		name     string
		leader   bool
		servers  []catalog.Server
		members  []string
		remove   string
		kind     artmesh.Kind // 0: no error
		removed  []string     // RemoveServer's calls
		called   protocol.ID  // CallLeader's protocol
		leftover []string     // members after
	}{
		{"a server and member, on the leader", true, servers(), []string{self, other}, other, 0, []string{other}, "", []string{self}},
		// The leader does it; the follower does not wait to apply it.
		{"a server and member, on a follower", false, servers(), []string{self, other}, other, 0, nil, RemoveProtocol, []string{self, other}},
		// A leader that leaves hands its leadership over, then asks the
		// new leader (`mesh leave` used to hang).
		{"the leader leaves", true, servers(), []string{self, other}, self, 0, nil, RemoveProtocol, []string{self, other}},
		{"a follower leaves", false, servers(), []string{self, other}, self, 0, nil, RemoveProtocol, []string{self, other}},
		{"a member no longer in Raft", true, servers(), []string{self, other, gone}, gone, 0, nil, "", []string{other, self}},
		{"in Raft, no member entry", true, servers(), []string{self}, other, 0, []string{other}, "", []string{self}},
		{"unknown", true, servers(), []string{self, other}, gone, artmesh.NotFound, nil, "", []string{other, self}},
		{"the last member", true, servers()[:1], []string{self}, self, artmesh.Conflict, nil, "", []string{self}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat := newFakeCatalog(tt.leader, tt.servers...)
			for _, id := range tt.members {
				cat.members[id] = catalog.Member{PeerID: id}
			}
			var called protocol.ID
			m := New(Config{Self: mustDecode(t, self), Catalog: cat, CallLeader: func(_ context.Context, p protocol.ID, data []byte) ([]byte, error) {
				var req removeRequest
				if err := json.Unmarshal(data, &req); err != nil || req.PeerID != tt.remove || req.Credential.APIKey != "the caller's key" {
					t.Errorf("asked the leader to remove %q", data)
				}
				called = p
				return nil, nil
			}})
			err := m.Remove(catalog.WithCredential(context.Background(), catalog.Credential{APIKey: "the caller's key"}), tt.remove)
			if tt.kind == 0 && err != nil || tt.kind != 0 && !errors.Is(err, tt.kind) {
				t.Fatalf("Remove: %v, want kind %v", err, tt.kind)
			}
			if !slices.Equal(cat.removed, tt.removed) || called != tt.called {
				t.Fatalf("removed from Raft %v, leader asked over %q", cat.removed, called)
			}
			if wantTransfers := map[bool]int{true: 1}[tt.leader && tt.remove == self && tt.kind == 0]; cat.transfers != wantTransfers {
				t.Fatalf("leadership transfers %d, want %d", cat.transfers, wantTransfers)
			}
			var left []string
			for id := range cat.members {
				left = append(left, id)
			}
			slices.Sort(left)
			want := slices.Clone(tt.leftover)
			slices.Sort(want)
			if !slices.Equal(left, want) {
				t.Fatalf("members left %v, want %v", left, want)
			}
		})
	}
}

// TestServeRemove: the leader removes a member for another member only
// with the credential of a mesh admin, or of the leaving node's own agent
// when a node leaves; a member's identity alone is not enough.
func TestServeRemove(t *testing.T) {
	member, stranger, target := newPeer(t), newPeer(t), newPeer(t).String()
	auth := func(_ context.Context, c catalog.Credential) (catalog.Principal, error) {
		switch c.APIKey {
		case "admin":
			return catalog.Principal{Agent: artmesh.Agent{ID: "root", Admin: true}}, nil
		case "user":
			return catalog.Principal{Agent: artmesh.Agent{ID: "bob"}}, nil
		case "member-node":
			return catalog.Principal{Agent: artmesh.Agent{ID: "node-m", Node: member.String()}}, nil
		}
		return catalog.Principal{}, artmesh.E(artmesh.Unauthenticated, "no such key")
	}
	req := func(peerID, key string) []byte {
		data, _ := json.Marshal(removeRequest{PeerID: peerID, Credential: catalog.Credential{APIKey: key}})
		return data
	}
	cat := newFakeCatalog(true, catalog.Server{ID: member.String(), Voter: true}, catalog.Server{ID: target, Voter: true})
	cat.members[member.String()] = catalog.Member{PeerID: member.String()}
	cat.members[target] = catalog.Member{PeerID: target}
	m := New(Config{Catalog: cat, Authenticate: auth})
	if _, err := m.ServeRemove(context.Background(), stranger, req(target, "admin")); err == nil {
		t.Fatal("a stranger removed a server")
	}
	for _, bad := range []struct {
		name string
		data []byte
		kind artmesh.Kind
	}{
		{"the bare peer id of old", []byte(target), artmesh.Invalid},
		{"no credential", req(target, ""), artmesh.PermissionDenied},
		{"a wrong credential", req(target, "forged"), artmesh.Unauthenticated},
		{"an ordinary agent", req(target, "user"), artmesh.PermissionDenied},
		{"the member's node agent, for another node", req(target, "member-node"), artmesh.PermissionDenied},
	} {
		if _, err := m.ServeRemove(context.Background(), member, bad.data); !errors.Is(err, bad.kind) || len(cat.removed) != 0 {
			t.Fatalf("%s: %v (want %v), removed %v", bad.name, err, bad.kind, cat.removed)
		}
	}
	if _, err := m.ServeRemove(context.Background(), member, req(target, "admin")); err != nil || !slices.Equal(cat.removed, []string{target}) {
		t.Fatalf("a mesh admin's request: %v, removed %v", err, cat.removed)
	}
	if _, ok := cat.members[target]; ok {
		t.Fatal("the leader took the member out of Raft but left its member entry")
	}
	// A node's own agent makes its node leave.
	if _, err := m.ServeRemove(context.Background(), member, req(member.String(), "member-node")); err != nil || !slices.Equal(cat.removed, []string{target, member.String()}) {
		t.Fatalf("a node leaving: %v, removed %v", err, cat.removed)
	}
	cat.leader = false
	if _, err := m.ServeRemove(context.Background(), member, req(target, "admin")); !errors.Is(err, artmesh.Unavailable) && !errors.Is(err, artmesh.PermissionDenied) {
		t.Fatalf("a follower took a removal: %v", err)
	}
}

// writeConfig writes a repo config as repo.Init would.
func writeConfig(t *testing.T, dir string, rc repo.Config) {
	t.Helper()
	data, _ := json.MarshalIndent(rc, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, repo.ConfigFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustDecode(t *testing.T, s string) peer.ID {
	t.Helper()
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestWarnStrandedAtMostEveryInterval(t *testing.T) {
	var u upkeep
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		id   string
		at   time.Duration
		want bool
	}{
		{"a", 0, true},
		{"a", time.Second, false},
		{"b", time.Second, true},
		{"a", strandedWarnEvery - time.Second, false},
		{"a", strandedWarnEvery, true},
		{"a", strandedWarnEvery + time.Minute, false},
	} {
		if got := u.warnStranded(c.id, t0.Add(c.at)); got != c.want {
			t.Fatalf("warnStranded(%s, +%s) = %v, want %v", c.id, c.at, got, c.want)
		}
	}
}

// TestJoinNamesVoters: the join answer names the leader's voters, and
// until the joiner has a Raft configuration only those of them that the
// ticket names too may lead it (not a member without a vote, which it
// admits all the same, nor the joiner, which the answer names as a new
// voter but the ticket does not: the Raft gate never asks about itself).
func TestJoinNamesVoters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	spare := newPeer(t) // a member and nonvoter of the mesh
	leaderCat := newFakeCatalog(true)
	a := newTestNode(t, leaderCat, t.TempDir())
	leaderCat.servers = []catalog.Server{{ID: a.id.String(), Voter: true, Leader: true}, {ID: spare.String()}}
	leaderCat.setMembers(a.member(), catalog.Member{PeerID: spare.String(), Addresses: []string{"/ip4/127.0.0.1/tcp/4001"}})
	a.caughtUp = true
	a.m.AdmitListed()
	inv, err := a.m.CreateInvite(ctx, "admin", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ticket, err := repo.ParseTicket(inv.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	dirB := t.TempDir()
	writeConfig(t, dirB, repo.Config{Join: ticket})
	b := newTestNode(t, newFakeCatalog(false), dirB)
	if err := b.m.Join(ctx, ticket); err != nil {
		t.Fatal(err)
	}
	if !b.roster.Has(spare) {
		t.Fatal("the joiner does not admit a member the join answer listed")
	}
	for _, tc := range []struct {
		who  string
		p    peer.ID
		want bool
	}{{"the leader", a.id, true}, {"a member without a vote", spare, false}, {"itself", b.id, false}, {"a stranger", newPeer(t), false}} {
		if got := b.m.MayLeadUnconfigured(tc.p); got != tc.want {
			t.Errorf("%s may lead the joiner: %v, want %v", tc.who, got, tc.want)
		}
	}
}

// changedAt is a catalog whose members last changed at an index.
type changedAt uint64

func (c changedAt) ChangedSince(index uint64, topics catalog.Topic) bool {
	return topics&catalog.TopicMembers != 0 && uint64(c) > index
}

// TestFullSyncDue checks when the membership reconciler reads the members
// anew: first, after a change of them, once caught up, and after
// fullSyncEvery; not otherwise.
func TestFullSyncDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	synced := fullSync{}
	synced.done(10, true, "addrs url", t0)
	for _, tc := range []struct {
		name     string
		f        fullSync
		changed  changedAt
		caughtUp bool
		own      string
		now      time.Time
		want     bool
	}{
		{"never read", fullSync{}, 0, true, "addrs url", t0, true},
		{"nothing since", synced, 10, true, "addrs url", t0.Add(time.Second), false},
		{"members changed", synced, 11, true, "addrs url", t0.Add(time.Second), true},
		{"caught up since", func() fullSync { f := synced; f.caughtUp = false; return f }(), 10, true, "addrs url", t0.Add(time.Second), true},
		{"own addresses changed", synced, 10, true, "other-addrs url", t0.Add(time.Second), true},
		{"a while since", synced, 10, true, "addrs url", t0.Add(fullSyncEvery), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.due(tc.changed, tc.caughtUp, tc.own, tc.now); got != tc.want {
				t.Errorf("due = %v, want %v", got, tc.want)
			}
		})
	}
}
