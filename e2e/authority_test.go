package e2e

import (
	"context"
	"crypto/rand"
	bin "encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/repo"
)

// memberHost is a libp2p host with a member's identity and the mesh's
// key, built from the project's own mesh package: what anyone who holds a
// member's identity key can run.
func memberHost(t *testing.T, memberRepo string) host.Host {
	t.Helper()
	priv, _, err := repo.ReadIdentity(memberRepo)
	if err != nil {
		t.Fatal(err)
	}
	return hostWith(t, priv, memberRepo)
}

// hostWith starts a mesh host with identity priv and the mesh key kept in
// repoDir (if any).
func hostWith(t *testing.T, priv crypto.PrivKey, repoDir string) host.Host {
	t.Helper()
	key, err := repo.ReadMeshKey(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	return hostileHost(t, priv, key)
}

// leaderAddrs returns the peer id and libp2p addresses of the member that
// d lists as the leader.
func leaderAddrs(t *testing.T, d *daemon) (peer.ID, []ma.Multiaddr) {
	t.Helper()
	for _, m := range d.members(t) {
		if !m.Leader {
			continue
		}
		for _, info := range meshTargets(t, d) {
			if info.ID.String() == m.PeerID {
				return info.ID, info.Addrs
			}
		}
	}
	t.Fatal("no leader among the members")
	return "", nil
}

// forgedEntry is a catalog log entry as a follower forwards it: the
// envelope (type 32, a request id, the time) around a command's type byte
// and JSON. The command types are the catalog's log format, which never
// changes.
func forgedEntry(t *testing.T, cmdType byte, cmd any) []byte {
	t.Helper()
	payload, err := json.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	env := make([]byte, 1+16+8, 1+16+8+1+len(payload))
	env[0] = 32
	if _, err := rand.Read(env[1:17]); err != nil {
		t.Fatal(err)
	}
	bin.BigEndian.PutUint64(env[17:], uint64(time.Now().UnixNano()))
	return append(append(env, cmdType), payload...)
}

// TestForgedForwardedWrites replays the writes of the security trial
// through the catalog-apply protocol with a member's identity: an admin
// agent with a chosen key, a new key for alice, a hidden member and an
// invite, each with no credential, a wrong one, an ordinary agent's and
// the member's own node agent's. The leader refuses every one before the
// log; the mesh admin can do the same through the API, a node's agent
// cannot; and a removed member, with the invite it made, is gone.
func TestForgedForwardedWrites(t *testing.T) {
	ds := meshOf(t, 3)
	a, b, c := ds[0], ds[1], ds[2]
	aliceKey := a.addAgent(t, "alice")
	var art artifact
	a.callAs(t, aliceKey, "POST", "/v1/artifacts?name=before.txt", strings.NewReader("before"), 201, &art)
	cKeyRaw, err := os.ReadFile(filepath.Join(c.repo, "api.key"))
	if err != nil {
		t.Fatal(err)
	}
	cKey := strings.TrimSpace(string(cKeyRaw))
	var agents struct {
		Items []struct {
			ID    string `json:"id"`
			Admin bool   `json:"admin"`
			Node  string `json:"node"`
		} `json:"items"`
	}
	c.callAs(t, cKey, "GET", "/v1/agents", nil, 200, &agents)
	var cAgent struct{ ID string }
	for _, ag := range agents.Items {
		if ag.Node == c.peerID(t) {
			if ag.Admin {
				t.Fatalf("a joined node's agent is a mesh admin: %+v", ag)
			}
			cAgent.ID = ag.ID
		}
	}
	if cAgent.ID == "" {
		t.Fatalf("no agent names node c: %+v", agents.Items)
	}

	// c's identity, in a hostile process: c itself is stopped.
	c.stop()
	evil := memberHost(t, c.repo)
	leader, addrs := leaderAddrs(t, a)
	evil.Peerstore().AddAddrs(leader, addrs, time.Hour)

	forgedKey := "amk_" + strings.Repeat("a", 52)
	hidden := hostWith(t, mustKey(t), c.repo).ID().String()
	now := time.Now().UTC()
	writes := map[string][]byte{
		"an admin agent with a chosen key": forgedEntry(t, 7, map[string]any{
			"agent": map[string]any{"id": "mallory", "admin": true, "created_at": now}, "key_hash": acl.HashKey(forgedKey)}),
		"alice's key replaced": forgedEntry(t, 9, map[string]any{"id": "alice", "key_hash": acl.HashKey(forgedKey)}),
		"a hidden member": forgedEntry(t, 20, map[string]any{
			"member": map[string]any{"peer_id": hidden, "addresses": []string{}, "api_url": "", "joined_at": now}}),
		"an invite": forgedEntry(t, 22, map[string]any{
			"invite": map[string]any{"secret_hash": acl.HashKey("forged-secret"), "created_by": cAgent.ID, "expires_at": now.Add(time.Hour)}}),
	}
	creds := map[string]map[string]string{
		"no credential":         nil,
		"a wrong credential":    {"api_key": forgedKey},
		"a non-admin's":         {"api_key": aliceKey},
		"the member's own node": {"api_key": cKey},
	}
	before := scrapeMetrics(t, a).get("artmesh_catalog_commit_index")
	for wname, entry := range writes {
		for cname, cred := range creds {
			body, _ := json.Marshal(map[string]any{"entry": entry, "credential": cred})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := mesh.Call(ctx, evil, leader, mesh.ApplyProtocol, body)
			cancel()
			var re *mesh.RemoteError
			if !errors.As(err, &re) || re.Kind != artmesh.PermissionDenied && re.Kind != artmesh.Unauthenticated {
				t.Fatalf("%s with %s: %v, want a refusal (permission denied or unauthenticated)", wname, cname, err)
			}
		}
	}
	if after := scrapeMetrics(t, a).get("artmesh_catalog_commit_index"); after != before {
		t.Fatalf("the refused writes moved the leader's commit index from %v to %v", before, after)
	}
	if code, _ := a.status(t, forgedKey, "GET", "/v1/artifacts", nil); code != 401 {
		t.Fatalf("the forged key works: %d", code)
	}
	a.callAs(t, aliceKey, "GET", "/v1/artifacts/"+art.ID, nil, 200, nil)
	for _, m := range a.members(t) {
		if m.PeerID == hidden {
			t.Fatalf("the hidden member is listed: %+v", m)
		}
	}

	// A node's own agent cannot do what only a mesh admin may.
	bKeyRaw, err := os.ReadFile(filepath.Join(b.repo, "api.key"))
	if err != nil {
		t.Fatal(err)
	}
	bKey := strings.TrimSpace(string(bKeyRaw))
	for _, w := range []struct {
		what, method, path string
		body               any
	}{
		{"create an invite", "POST", "/v1/mesh/invites", map[string]any{}},
		{"change the policy", "PUT", "/v1/mesh/policy", map[string]any{"replication_factor": 1}},
		{"create an admin", "POST", "/v1/agents", map[string]any{"id": "mallory", "admin": true}},
		{"set another agent's key", "POST", "/v1/agents/alice/keys", nil},
	} {
		if code, body := b.status(t, bKey, w.method, w.path, w.body); code != 403 {
			t.Fatalf("node b's agent may %s: %d %s", w.what, code, body)
		}
	}
	// It may create an ordinary agent and a new group, but not change an
	// existing group (its members read what is shared with it) or
	// delete one.
	a.call(t, "PUT", "/v1/groups/team", map[string]any{"members": []string{"alice"}}, 200, nil)
	for _, w := range []struct {
		what, method, path string
		body               any
	}{
		{"join an existing group", "PUT", "/v1/groups/team", map[string]any{"members": []string{"alice", cAgent.ID}}},
		{"delete a group", "DELETE", "/v1/groups/team", nil},
		{"create an agent in an existing group", "POST", "/v1/agents", map[string]any{"id": "spy", "groups": []string{"team"}}},
	} {
		if code, body := b.status(t, bKey, w.method, w.path, w.body); code != 403 {
			t.Fatalf("node b's agent may %s: %d %s", w.what, code, body)
		}
	}
	b.callAs(t, bKey, "PUT", "/v1/groups/crew", map[string]any{"members": []string{}}, 200, nil)
	// The mesh admin may do all of it.
	b.callAs(t, bKey, "POST", "/v1/agents", map[string]any{"id": "worker"}, 201, nil)
	a.call(t, "POST", "/v1/agents", map[string]any{"id": "second-admin", "admin": true}, 201, nil)
	a.call(t, "POST", "/v1/agents/worker/keys", nil, 201, nil)
	a.call(t, "PUT", "/v1/mesh/policy", map[string]any{"node_agents_invite": true}, 200, nil)

	// c comes back, makes an invite (node agents may now), and is
	// removed: its invite goes with it, and its identity can open no
	// protocol but join.
	c = c.restart(t)
	waitFor(t, 30*time.Second, "c is back", func() bool {
		code, _ := c.status(t, "", "GET", "/readyz", nil)
		return code == 200
	})
	var inv struct {
		Ticket string `json:"ticket"`
	}
	c.callAs(t, cKey, "POST", "/v1/mesh/invites", map[string]any{}, 201, &inv)
	cID := c.peerID(t)
	a.call(t, "DELETE", "/v1/mesh/members/"+cID, nil, 204, nil)
	c.stop()
	evil2 := memberHost(t, c.repo)
	evil2.Peerstore().AddAddrs(leader, addrs, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"entry": forgedEntry(t, 26, map[string]any{})})
	if _, err := mesh.Call(ctx, evil2, leader, mesh.ApplyProtocol, body); err == nil {
		t.Fatal("the removed member's identity still forwards writes")
	}
	if _, err := mesh.Call(ctx, evil2, leader, "/artmesh/join/1.0.0", []byte(`{}`)); err != nil {
		var re *mesh.RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("the removed member cannot even ask to join: %v", err)
		}
	}
	joiner := t.TempDir()
	initJoin(t, joiner, inv.Ticket)
	refusedJoin(t, joiner, "ticket made by a member that was removed since")
	ms := a.members(t)
	if len(ms) != 2 {
		t.Fatalf("members after the removal: %+v", ms)
	}
	for _, m := range ms {
		if m.Role != "voter" && m.Role != "nonvoter" {
			t.Fatalf("a member the Raft configuration does not know is listed: %+v", m)
		}
	}
	// The mesh goes on: a create and a read.
	var after artifact
	b.callAs(t, aliceKey, "POST", "/v1/artifacts?name=after.txt", strings.NewReader("after"), 201, &after)
	a.callAs(t, aliceKey, "GET", "/v1/artifacts/"+after.ID+"?consistent=true", nil, 200, nil)
}

// mustKey returns a fresh Ed25519 identity.
func mustKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}
