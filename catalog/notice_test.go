package catalog

import (
	"slices"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

// TestForwardedWriteNoticesCommit checks that a member that forwards a
// write learns of its commit at once, not after raft's CommitTimeout:
// the leader appends a no-op when no later entry carries the commit
// index, and only then.
func TestForwardedWriteNoticesCommit(t *testing.T) {
	ctx := testCtx(t)
	nodes, _, leader := startCluster(t, ctx, 3, true)
	follower := followerOf(nodes, leader)
	if _, err := follower.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}, KeyHash: "k"}); err != nil {
		t.Fatal(err)
	}
	var took []time.Duration
	for i := range 5 {
		before := leader.CommitNotices()
		at := time.Now()
		if _, err := follower.CreateArtifact(ctx, CreateArtifact{ID: artmesh.NewArtifactID(at), Name: "x", Owner: "alice", CID: "c1", At: at}); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(at))
		// The notice is sent after the write returned: wait for it.
		for deadline := time.Now().Add(5 * time.Second); leader.CommitNotices() == before; {
			if time.Now().After(deadline) {
				t.Fatalf("write %d: the leader sent no commit notice after a lone forwarded write", i)
			}
			time.Sleep(time.Millisecond)
		}
		// Idle again: raft's own send after CommitTimeout has carried the
		// notice's commit, so the next write starts from quiet.
		time.Sleep(2 * commitTimeout)
	}
	slices.Sort(took)
	if med := took[len(took)/2]; med >= commitTimeout {
		t.Errorf("a lone forwarded write took %s (median of %v): the follower waited for raft's CommitTimeout (%s) to learn its commit", med, took, commitTimeout)
	}
	// Writes that follow each other closely carry each other's commit:
	// a burst costs at most a notice or two, not one each.
	before := leader.CommitNotices()
	done := make(chan error, 20)
	for range 20 {
		go func() {
			at := time.Now()
			_, err := follower.CreateArtifact(ctx, CreateArtifact{ID: artmesh.NewArtifactID(at), Name: "y", Owner: "alice", CID: "c2", At: at})
			done <- err
		}()
	}
	for range 20 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(10 * noticeGrace)
	if sent := leader.CommitNotices() - before; sent > 10 {
		t.Errorf("20 concurrent forwarded writes cost %d commit notices", sent)
	}
}
