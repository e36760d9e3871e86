package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/membership"
	"github.com/artmesh/artmesh/node/repo"
)

// The RPC type bytes of raft's NetworkTransport (unexported in raft).
const (
	rpcAppendEntries   = 0
	rpcInstallSnapshot = 2
)

// hostileHost starts a mesh host in this test process with identity priv
// and the mesh key of ticket: a peer built from the project's own mesh
// package, with no node behind it.
func hostileHost(t *testing.T, priv crypto.PrivKey, key mesh.Key) host.Host {
	t.Helper()
	cfg := mesh.DefaultConfig()
	cfg.Identity, cfg.Key, cfg.Listen = priv, key, []string{"/ip4/127.0.0.1/tcp/0"}
	h, err := mesh.NewHost(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// joinHostile makes a fresh identity a member of d's mesh with an invite,
// speaking the join protocol itself, and returns its host. The mesh
// already has its three voters, so the leader adds it to Raft as a
// nonvoter: a member whose key is one of the mesh's, whose streams
// admission lets through, and that must not be able to lead anyone.
func joinHostile(t *testing.T, d *daemon) host.Host {
	t.Helper()
	tk, err := repo.ParseTicket(strings.TrimSpace(d.cli(t, "mesh", "invite", "--expires", "10m")))
	if err != nil {
		t.Fatal(err)
	}
	var key mesh.Key
	if tk.Key != "" {
		if key, err = mesh.ParseKey(tk.Key); err != nil {
			t.Fatal(err)
		}
	}
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := hostileHost(t, priv, key)
	var addrs []string
	for _, a := range h.Addrs() {
		addrs = append(addrs, a.String())
	}
	req, _ := json.Marshal(map[string]any{"peer_id": h.ID().String(), "secret": tk.Secret, "addrs": addrs, "api_url": "", "commands": catalog.KnownCommands})
	info, err := peer.AddrInfoFromString(tk.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	h.Peerstore().AddAddrs(info.ID, info.Addrs, peerstore.PermanentAddrTTL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := mesh.Call(ctx, h, info.ID, membership.JoinProtocol, req)
	if err != nil {
		t.Fatalf("the hostile peer's join: %v", err)
	}
	var jr struct {
		Members []struct {
			PeerID    string   `json:"peer_id"`
			Addresses []string `json:"addresses"`
		} `json:"members"`
	}
	if err := json.Unmarshal(resp, &jr); err != nil {
		t.Fatal(err)
	}
	addPeers(t, h, jr.Members)
	return h
}

// addPeers puts members' addresses into h's peerstore.
func addPeers(t *testing.T, h host.Host, members []struct {
	PeerID    string   `json:"peer_id"`
	Addresses []string `json:"addresses"`
}) {
	t.Helper()
	for _, m := range members {
		for _, a := range m.Addresses {
			if info, err := peer.AddrInfoFromString(a + "/p2p/" + m.PeerID); err == nil {
				h.Peerstore().AddAddrs(info.ID, info.Addrs, peerstore.PermanentAddrTTL)
			}
		}
	}
}

// sendRaft opens a Raft stream from h to p, sends one RPC framed as raft's
// NetworkTransport frames it (a type byte, the msgpack request, then the
// snapshot bytes of an InstallSnapshot) and reads the answer. It returns
// nil if the RPC was answered (raft saw it), else the error that ended
// the stream.
func sendRaft(t *testing.T, h host.Host, p peer.ID, typ byte, req any, tail []byte) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := h.NewStream(ctx, p, mesh.RaftProtocol)
	if err != nil {
		t.Fatalf("opening a Raft stream to %s: %v", p, err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(10 * time.Second))
	w := bufio.NewWriter(st)
	w.WriteByte(typ)
	if err := codec.NewEncoder(w, &codec.MsgpackHandle{}).Encode(req); err != nil {
		t.Fatal(err)
	}
	w.Write(tail)
	if err := w.Flush(); err != nil {
		return err
	}
	dec := codec.NewDecoder(bufio.NewReader(st), &codec.MsgpackHandle{})
	var rpcErr string
	if err := dec.Decode(&rpcErr); err != nil {
		return err
	}
	var resp map[string]any
	if err := dec.Decode(&resp); err != nil {
		return err
	}
	return nil
}

// rpcHeader is an RPC header naming id as the sender.
func rpcHeader(id string) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: []byte(id)}
}

// metricValue reads one sample of name (with its labels, as in the text
// format) from d's /metrics; -1 if absent.
func metricValue(t *testing.T, d *daemon, sample string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindStringSubmatch(scrape(t, d))
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// refused is d's count of Raft streams refused for reason.
func refused(t *testing.T, d *daemon, reason string) float64 {
	t.Helper()
	return metricValue(t, d, fmt.Sprintf(`artmesh_raft_rpcs_refused_total{reason=%q}`, reason))
}

// waitRole waits until every node lists id with role.
func waitRole(t *testing.T, id, role string, ds ...*daemon) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, d := range ds {
		for {
			found := ""
			for _, m := range d.members(t) {
				if m.PeerID == id {
					found = m.Role
				}
			}
			if found == role {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s lists %s as %q, want %q", d.url, id, found, role)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// healthy checks that every node is ready, they agree on one leader
// among three voters, and a write on one node reads back on every node.
// (waitMeshOf3 would count the hostile member as a fourth reachable
// member.)
func healthy(t *testing.T, name string, ds ...*daemon) {
	t.Helper()
	for _, d := range ds {
		waitReady(t, d, 30*time.Second) // a node still catching up lists no members
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		leaders, good, last := map[string]bool{}, true, ""
		for _, d := range ds {
			voters, leader := 0, ""
			for _, m := range d.members(t) {
				if m.Role == "voter" {
					voters++
				}
				if m.Leader {
					leader = m.PeerID
				}
			}
			leaders[leader] = true
			if voters != 3 || leader == "" {
				good, last = false, fmt.Sprintf("%s sees %d voters, leader %q", d.url, voters, leader)
			}
		}
		if good && len(leaders) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mesh did not settle within 30s: %d leaders seen; last: %s", len(leaders), last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var sn artifact
	ds[0].call(t, "POST", "/v1/snippets", map[string]any{"name": name, "content": map[string]any{"after": name}}, 201, &sn)
	for _, d := range ds {
		st, _, body, err := httpDo(d, ds[0].key, "GET", "/v1/artifacts/"+sn.ID+"/content?consistent=true", nil, 20*time.Second)
		if err != nil || st != 200 || !strings.Contains(string(body), name) {
			t.Fatalf("reading %s on %s: %d %v %s", sn.ID, d.url, st, err, short(body))
		}
	}
}

// TestHostileRaftPeer runs a mesh of three voters and a hostile member
// built from the mesh package, and checks that the Raft gate stops it:
//
//	(a) a member without a vote sends every node an AppendEntries of a
//	    much higher term naming itself leader, and an InstallSnapshot:
//	    each stream is reset, counted as not_voter, and the leader keeps
//	    its leadership and its term;
//	(b) the same member, and then a peer holding a real voter's identity
//	    key (taken from a stopped follower's repo), send a follower an
//	    AppendEntries whose header names the leader: reset, counted as
//	    impersonation; and that voter's key, as itself, sends an
//	    InstallSnapshot whose configuration does not decode (raft
//	    panics on one): reset, counted as malformed;
//
// and after each the mesh has its leader, every node is up, and a write
// reads back everywhere.
func TestHostileRaftPeer(t *testing.T) {
	a, b, c := newMesh3(t)
	nodes := []*daemon{a, b, c}
	leader := leaderOf(t, nodes...)
	leaderID := peerIDOf(t, leader)
	var followers []*daemon
	for _, d := range nodes {
		if d != leader {
			followers = append(followers, d)
		}
	}
	term := metricValue(t, leader, "artmesh_catalog_term")
	if term < 1 {
		t.Fatalf("the leader's term: %v", term)
	}

	evil := joinHostile(t, leader)
	evilID := evil.ID().String()
	waitRole(t, evilID, "nonvoter", nodes...)

	// (a) A member without a vote claims to lead, with a much higher term.
	for _, d := range nodes {
		p, _ := peer.Decode(peerIDOf(t, d))
		before := refused(t, d, "not_voter")
		//lint:ignore SA1019 raft still reads the deprecated Leader field, so a forger sets it too
		forged := &raft.AppendEntriesRequest{RPCHeader: rpcHeader(evilID), Term: uint64(term) + 1000, Leader: []byte(evilID)}
		if err := sendRaft(t, evil, p, rpcAppendEntries, forged, nil); err == nil {
			t.Fatalf("%s answered a forged AppendEntries from a nonvoter", d.url)
		}
		snap := []byte("not a snapshot of this catalog")
		inst := &raft.InstallSnapshotRequest{RPCHeader: rpcHeader(evilID), SnapshotVersion: raft.SnapshotVersionMax, Term: uint64(term) + 1000,
			Leader: []byte(evilID), LastLogIndex: 1 << 40, LastLogTerm: uint64(term) + 1000, Size: int64(len(snap))}
		if err := sendRaft(t, evil, p, rpcInstallSnapshot, inst, snap); err == nil {
			t.Fatalf("%s answered a forged InstallSnapshot from a nonvoter", d.url)
		}
		if got := refused(t, d, "not_voter") - before; got != 2 {
			t.Fatalf("%s counted %v refusals as not_voter, want 2", d.url, got)
		}
	}
	time.Sleep(2 * time.Second) // several election timeouts
	if now := leaderOf(t, nodes...); now != leader {
		t.Fatalf("the leader changed from %s to %s after the forged RPCs", leader.url, now.url)
	}
	if got := metricValue(t, leader, "artmesh_catalog_term"); got != term {
		t.Fatalf("the leader's term went from %v to %v after the forged RPCs", term, got)
	}
	healthy(t, "after-forged-leader", nodes...)

	// (b) The member speaks as the leader to a follower, in the leader's
	// own term.
	f0, _ := peer.Decode(peerIDOf(t, followers[0]))
	before := refused(t, followers[0], "impersonation")
	//lint:ignore SA1019 raft still reads the deprecated Leader field, so a forger sets it too
	spoof := &raft.AppendEntriesRequest{RPCHeader: rpcHeader(leaderID), Term: uint64(term), Leader: []byte(leaderID), LeaderCommitIndex: 1 << 40}
	if err := sendRaft(t, evil, f0, rpcAppendEntries, spoof, nil); err == nil {
		t.Fatal("a follower answered an AppendEntries that a nonvoter sent in the leader's name")
	}
	if got := refused(t, followers[0], "impersonation") - before; got != 1 {
		t.Fatalf("the follower counted %v refusals as impersonation, want 1", got)
	}

	// A real voter's key: stop the other follower and use its identity.
	other := followers[1]
	other.stop()
	priv, otherID, err := repo.ReadIdentity(other.repo)
	if err != nil {
		t.Fatal(err)
	}
	key, err := repo.ReadMeshKey(other.repo)
	if err != nil {
		t.Fatal(err)
	}
	voter := hostileHost(t, priv, key)
	if voter.ID() != otherID {
		t.Fatalf("the host's id %s is not the stopped voter's %s", voter.ID(), otherID)
	}
	voter.Peerstore().AddAddrs(f0, evil.Peerstore().Addrs(f0), peerstore.PermanentAddrTTL)
	before = refused(t, followers[0], "impersonation")
	if err := sendRaft(t, voter, f0, rpcAppendEntries, spoof, nil); err == nil {
		t.Fatal("a follower answered an AppendEntries that a voter sent in the leader's name")
	}
	if got := refused(t, followers[0], "impersonation") - before; got != 1 {
		t.Fatalf("the follower counted %v refusals as impersonation from the voter's key, want 1", got)
	}
	// Even as itself, a voter's key cannot send a snapshot request that
	// raft would panic on (its configuration does not decode).
	before = refused(t, followers[0], "malformed")
	crash := &raft.InstallSnapshotRequest{RPCHeader: rpcHeader(otherID.String()), SnapshotVersion: raft.SnapshotVersionMax, Term: uint64(term),
		LastLogIndex: 1 << 40, LastLogTerm: uint64(term), Size: 4}
	if err := sendRaft(t, voter, f0, rpcInstallSnapshot, crash, []byte("snap")); err == nil {
		t.Fatal("a follower answered an InstallSnapshot without a configuration")
	}
	if got := refused(t, followers[0], "malformed") - before; got != 1 {
		t.Fatalf("the follower counted %v refusals as malformed, want 1", got)
	}
	voter.Close()
	if got := metricValue(t, leader, "artmesh_catalog_term"); got != term {
		t.Fatalf("the leader's term went from %v to %v after the impersonation", term, got)
	}
	followers[1] = relaunch(t, other)
	healthy(t, "after-impersonation", leader, followers[0], followers[1])
	if now := leaderOf(t, leader, followers[0], followers[1]); now != leader {
		t.Fatalf("the leader changed from %s to %s", leader.url, now.url)
	}
}

// TestRestartedVoterFollowsPromotedLeader: the Raft gate lets only voters
// lead, but a node's configuration can lag. A voter killed while the
// leader demoted it and promoted the nonvoter, restarted while that
// promoted node leads, knows it only as a nonvoter: it must still follow
// it and catch up (until it has caught up since its start, the gate lets
// a nonvoter of its configuration lead it once a majority of the voters of
// that configuration name it as their leader, up to their term).
func TestRestartedVoterFollowsPromotedLeader(t *testing.T) {
	ds := meshOf(t, 4, "--dead-voter-after", "2s")
	ids := map[*daemon]string{}
	for _, d := range ds {
		ids[d] = d.peerID(t)
	}
	leader := leaderOf(t, ds...)
	var spare, victim *daemon
	for _, d := range ds {
		role, _ := listed(t, leader, ids[d])
		switch {
		case role == "nonvoter":
			spare = d
		case d != leader && victim == nil:
			victim = d
		}
	}
	if spare == nil || victim == nil {
		t.Fatalf("no nonvoter or no follower voter among %d members", len(ds))
	}
	var others []*daemon
	for _, d := range ds {
		if d != victim {
			others = append(others, d)
		}
	}
	victim.kill()
	waitFor(t, 60*time.Second, "the killed voter is demoted and the nonvoter promoted, on every survivor", func() bool {
		for _, o := range others {
			v, _ := listed(t, o, ids[victim])
			s, _ := listed(t, o, ids[spare])
			if v != "nonvoter" || s != "voter" {
				return false
			}
		}
		return true
	})
	// Pause whoever leads (SIGSTOP) until the other two voters elect the
	// promoted node; each election is between two nodes, the paused one
	// sitting it out.
	var paused *daemon
	for round := 0; ; round++ {
		var awake []*daemon
		for _, o := range others {
			if o != paused {
				awake = append(awake, o)
			}
		}
		now := leaderOf(t, awake...) // a paused node would not answer
		if paused != nil {
			paused.resume()
		}
		if now == spare {
			break
		}
		if round == 16 {
			t.Fatal("the promoted node never led in 16 elections")
		}
		t.Logf("round %d: %s leads; pausing it", round, ids[now])
		now.pause()
		paused = now
	}
	// The killed voter comes back knowing the leader only as a nonvoter.
	back := victim.restart(t) // fails the test unless ready within 30 s
	if role, _ := listed(t, back, ids[spare]); role != "voter" {
		t.Fatalf("the restarted node lists the leader as %q, want voter once caught up", role)
	}
	back.call(t, "POST", "/v1/snippets", map[string]any{"name": "after-promotion", "content": 1}, 201, nil)
	// It followed the promoted node only once a majority of the voters
	// it knew named it: the first leader's RPCs were refused meanwhile.
	var raftLines []string
	vouched := false
	for line := range strings.Lines(back.logs()) {
		if strings.Contains(line, "a majority of its voters name it") && strings.Contains(line, "leader="+ids[spare]) {
			vouched = true
		}
		if strings.Contains(line, "raft") || strings.Contains(line, "voters") {
			raftLines = append(raftLines, line)
		}
	}
	if !vouched {
		t.Fatalf("the restarted node did not log following the promoted leader on its voters' word; its Raft lines:\n%s", strings.Join(raftLines, ""))
	}
	if got := metricValue(t, back, `artmesh_raft_rpcs_refused_total{reason="not_voter"}`); got < 1 {
		t.Fatalf("the restarted node refused %v of the promoted leader's RPCs before the vouch, want at least 1", got)
	}
}
