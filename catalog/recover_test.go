package catalog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

// TestRecoverSoleVoter: of a three-voter catalog, one follower is left;
// recovered, it leads alone with every entry it had, the other members
// are gone from the member table, and it takes writes.
func TestRecoverSoleVoter(t *testing.T) {
	ctx := testCtx(t)
	nodes, _, leader := startCluster(t, ctx, 3, false)
	for _, c := range nodes {
		if err := leader.PutMember(ctx, Member{PeerID: c.cfg.ServerID, JoinedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := leader.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}, KeyHash: "k"}); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	a, err := leader.CreateArtifact(ctx, CreateArtifact{ID: artmesh.NewArtifactID(at), Name: "kept", Owner: "alice", CID: "c1", At: at})
	if err != nil {
		t.Fatal(err)
	}
	survivor := followerOf(nodes, leader)
	waitApplied := func() uint64 {
		want := leader.AppliedIndex()
		for survivor.AppliedIndex() < want {
			select {
			case <-ctx.Done():
				t.Fatalf("the follower applied %d, want %d", survivor.AppliedIndex(), want)
			case <-time.After(5 * time.Millisecond):
			}
		}
		return want
	}
	waitApplied()
	// A snapshot on the survivor, then entries after it: the recovery
	// starts from the snapshot and applies the rest.
	if err := survivor.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	at2 := time.Now()
	b, err := leader.CreateArtifact(ctx, CreateArtifact{ID: artmesh.NewArtifactID(at2), Name: "after the snapshot", Owner: "alice", CID: "c2", At: at2})
	if err != nil {
		t.Fatal(err)
	}
	want := waitApplied()
	for _, c := range nodes {
		c.Close()
	}
	cfg := testConfig(survivor.cfg.Dir, survivor.cfg.ServerID)
	// What a recovery cut short left behind is cleared; the state file is
	// never written (the replay runs on a copy), which is what makes a
	// recovery killed at any point safe.
	if err := os.MkdirAll(filepath.Join(cfg.Dir, recoverDir, "junk"), 0o700); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(cfg.Dir, stateFile)
	before, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}

	rec, err := RecoverSoleVoter(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if after, err := os.ReadFile(statePath); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("the recovery changed the state file (err %v)", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, recoverDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the recovery's scratch folder is left: %v", err)
	}
	var others []string
	for _, c := range nodes {
		if c != survivor {
			others = append(others, c.cfg.ServerID)
		}
	}
	slices.Sort(rec.Dropped)
	// The removals are applied to the recovered state, not written to the
	// log: the last index is the log's.
	if len(rec.Servers) != 3 || !slices.Equal(rec.Dropped, others) || rec.LastIndex < want {
		t.Fatalf("recovery %+v; want 3 servers, %v dropped, last index >= %d", rec, others, want)
	}

	c, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.IsLeader() {
		t.Fatal("the recovered node does not lead")
	}
	for _, x := range []artmesh.Artifact{a, b} {
		if got, err := c.Artifact(x.ID); err != nil || got.Name != x.Name {
			t.Fatalf("an applied artifact after recovery: %+v %v", got, err)
		}
	}
	servers, err := c.Servers()
	if err != nil || len(servers) != 1 || servers[0].ID != cfg.ServerID || !servers[0].Voter {
		t.Fatalf("servers after recovery: %+v %v", servers, err)
	}
	members, err := c.Members()
	if err != nil || len(members) != 1 || members[0].PeerID != cfg.ServerID {
		t.Fatalf("members after recovery: %+v %v", members, err)
	}
	if _, err := c.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "bob", CreatedAt: time.Now()}, KeyHash: "k2"}); err != nil {
		t.Fatalf("a write after recovery: %v", err)
	}
	c.Close()

	// A server that is not in the configuration cannot recover it.
	if _, err := RecoverSoleVoter(ctx, testConfig(survivor.cfg.Dir, "stranger")); !errors.Is(err, artmesh.Conflict) {
		t.Fatalf("recovery by a server not in the configuration: %v", err)
	}
	// Nor can a folder with no state.
	if _, err := RecoverSoleVoter(ctx, testConfig(t.TempDir(), "node1")); !errors.Is(err, artmesh.NotFound) {
		t.Fatalf("recovery of an empty folder: %v", err)
	}
}
