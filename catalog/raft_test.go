package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
)

// testConfig returns a configuration with short timings for tests.
func testConfig(dir, id string) Config {
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.ServerID = id
	cfg.Address = id
	cfg.HeartbeatTimeout = 100 * time.Millisecond
	cfg.ElectionTimeout = 100 * time.Millisecond
	cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.Authenticate = testAuthenticate
	return cfg
}

// testAuthenticate is the unit tests' stand-in for the node's check of a
// credential: the API key "as:ID" is agent ID, a mesh admin, and
// "user:ID" an ordinary agent ID; anything else is refused.
func testAuthenticate(_ context.Context, c Credential) (Principal, error) {
	if id, ok := strings.CutPrefix(c.APIKey, "as:"); ok {
		return Principal{Agent: artmesh.Agent{ID: artmesh.AgentID(id), Admin: true}}, nil
	}
	if id, ok := strings.CutPrefix(c.APIKey, "user:"); ok {
		return Principal{Agent: artmesh.Agent{ID: artmesh.AgentID(id)}}, nil
	}
	return Principal{}, artmesh.E(artmesh.Unauthenticated, "not a test key")
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	// Forwarded writes act for alice, a mesh admin (testAuthenticate).
	return WithCredential(ctx, Credential{APIKey: "as:alice"})
}

// openSingle opens and bootstraps a single node in dir.
func openSingle(t *testing.T, dir string) *Catalog {
	t.Helper()
	ctx := testCtx(t)
	c, err := Open(ctx, testConfig(dir, "node1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigValidate(t *testing.T) {
	ok := testConfig(t.TempDir(), "n")
	tests := []struct {
		name   string
		change func(*Config)
		valid  bool
	}{
		{"ok", func(*Config) {}, true},
		{"no dir", func(c *Config) { c.Dir = "" }, false},
		{"no server id", func(c *Config) { c.ServerID = "" }, false},
		{"no apply timeout", func(c *Config) { c.ApplyTimeout = 0 }, false},
		{"no snapshot threshold", func(c *Config) { c.SnapshotThreshold = 0 }, false},
		{"no snapshots kept", func(c *Config) { c.SnapshotRetain = 0 }, false},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = time.Second }, false},
		{"zero config", func(c *Config) { *c = Config{} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.change(&cfg)
			err := cfg.Validate()
			if tt.valid {
				wantKind(t, err, artmesh.Other)
			} else {
				wantKind(t, err, artmesh.Invalid)
			}
		})
	}
}

func TestSingleNodeRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	c := openSingle(t, dir)
	if _, err := c.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", Groups: []string{"team"}, CreatedAt: time.Now()}, KeyHash: "k1"}); err != nil {
		t.Fatal(err)
	}
	// Writes check their input before proposing and return the rule
	// violations of Apply.
	_, err := c.CreateArtifact(ctx, CreateArtifact{ID: "bad", Name: "x", Owner: "alice", CID: "c", At: time.Now()})
	wantKind(t, err, artmesh.Invalid)
	_, err = c.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}})
	wantKind(t, err, artmesh.Conflict)

	var arts []artmesh.ArtifactID
	create := func(c *Catalog, n int) {
		t.Helper()
		for i := range n {
			at := time.Now()
			a, err := c.CreateArtifact(ctx, CreateArtifact{
				ID: artmesh.NewArtifactID(at), Name: fmt.Sprintf("f%d", i), ContentType: "text/plain", Owner: "alice",
				Metadata: md("i", jsonInt(i)), CID: fmt.Sprintf("cid%d", len(arts)), SizeBytes: int64(i), At: at,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := c.Artifact(a.ID); err != nil || got.CID != a.CID {
				t.Fatalf("read your write: %+v, %v", got, err)
			}
			arts = append(arts, a.ID)
		}
	}
	check := func(c *Catalog) {
		t.Helper()
		p, err := c.List("alice", artmesh.Filter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if totalOf(p) != len(arts) {
			t.Fatalf("after restart: %d artifacts, want %d", totalOf(p), len(arts))
		}
		for _, id := range arts {
			if _, err := c.Artifact(id); err != nil {
				t.Fatal(err)
			}
		}
		if a, err := c.AgentByKeyHash("k1"); err != nil || a.ID != "alice" || len(a.Groups) != 1 {
			t.Fatalf("agent after restart: %+v, %v", a, err)
		}
	}
	create(c, 10)
	idx := c.AppliedIndex()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = c.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "bob", CreatedAt: time.Now()}})
	wantKind(t, err, artmesh.Unavailable)

	// From the log alone.
	c = openSingle(t, dir)
	check(c)
	if c.AppliedIndex() < idx {
		t.Fatalf("applied index %d after restart, want at least %d", c.AppliedIndex(), idx)
	}
	// From a snapshot, plus the log after it.
	if err := c.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	create(c, 5)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openSingle(t, dir)
	check(c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCluster(t *testing.T) {
	ctx := testCtx(t)
	nodes, trans, leader := startCluster(t, ctx, 3, false)
	var followers []*Catalog
	for _, c := range nodes {
		if c != leader {
			followers = append(followers, c)
		}
	}

	if _, err := leader.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}, KeyHash: "k"}); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	a, err := leader.CreateArtifact(ctx, CreateArtifact{ID: artmesh.NewArtifactID(at), Name: "x", Owner: "alice", CID: "c1", At: at})
	if err != nil {
		t.Fatal(err)
	}
	want := leader.AppliedIndex()
	for _, f := range followers {
		for f.AppliedIndex() < want {
			select {
			case <-ctx.Done():
				t.Fatalf("follower applied %d, want %d", f.AppliedIndex(), want)
			case <-time.After(5 * time.Millisecond):
			}
		}
		if got, err := f.Artifact(a.ID); err != nil || got.CID != "c1" {
			t.Fatalf("follower read: %+v, %v", got, err)
		}
		if !f.CanRead("alice", a.ID) {
			t.Fatal("follower: owner cannot read")
		}
		// A write on a follower is refused (forwarding comes later).
		_, err := f.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "bob", CreatedAt: time.Now()}})
		wantKind(t, err, artmesh.Unavailable)
		if !errors.Is(err, raft.ErrNotLeader) {
			t.Fatalf("follower write: %v, want it to wrap raft.ErrNotLeader", err)
		}
	}

	// A leader cut off from the others cannot commit: the writer gives up
	// when its context ends, and the write is answered (leadership lost)
	// in the background before Close returns.
	for i, c := range nodes {
		if c == leader {
			trans[i].DisconnectAll()
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = leader.CreateAgent(short, CreateAgent{Agent: artmesh.Agent{ID: "carol", CreatedAt: time.Now()}})
	wantKind(t, err, artmesh.Unavailable)
	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestProposeGivesUpWithContext(t *testing.T) {
	c := openSingle(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}})
	wantKind(t, err, artmesh.Unavailable)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v does not wrap context.Canceled", err)
	}
}
