package catalog

import (
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

// TestReadIndexAfterLeaderChange: a new leader's read index covers every
// write its predecessor acknowledged, and is its commit index (which the
// state machines reach), not merely what it had applied.
func TestReadIndexAfterLeaderChange(t *testing.T) {
	ctx := testCtx(t)
	nodes, trans, leader := startCluster(t, ctx, 3, false)
	if _, err := leader.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}, KeyHash: "k"}); err != nil {
		t.Fatal(err)
	}
	var last artmesh.ArtifactID
	for i := range 20 {
		at := time.Now().Add(time.Duration(i) * time.Millisecond)
		a, err := leader.CreateArtifact(ctx, CreateArtifact{ID: artmesh.NewArtifactID(at), Name: "x", Owner: "alice", CID: "c", At: at})
		if err != nil {
			t.Fatal(err)
		}
		last = a.ID
	}
	acked := leader.AppliedIndex()
	// Cut the old leader off; the other two elect a new one.
	var old int
	for i, c := range nodes {
		if c == leader {
			old = i
		}
	}
	trans[old].DisconnectAll()
	for i := range trans {
		if i != old {
			trans[i].Disconnect(trans[old].LocalAddr())
		}
	}
	var next *Catalog
	for next == nil {
		for i, c := range nodes {
			if i != old && c.IsLeader() {
				next = c
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("no new leader")
		case <-time.After(10 * time.Millisecond):
		}
	}
	idx, err := next.ReadIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if idx < acked {
		t.Fatalf("new leader's read index %d is below the acknowledged index %d", idx, acked)
	}
	if got := next.Raft().CommitIndex(); idx > got {
		t.Fatalf("read index %d above the commit index %d", idx, got)
	}
	// Every node that reaches the read index sees the last write.
	for i, c := range nodes {
		if i == old {
			continue
		}
		if err := c.WaitApplied(ctx, idx); err != nil {
			t.Fatalf("node %d never applied the read index: %v", i, err)
		}
		if _, err := c.Artifact(last); err != nil {
			t.Fatalf("node %d at the read index lacks the last acknowledged write: %v", i, err)
		}
	}
	// The cut-off old leader cannot confirm its leadership: no read index.
	if i, err := nodes[old].ReadIndex(ctx); err == nil {
		t.Fatalf("the cut-off old leader gave read index %d", i)
	}
}
