package catalog

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/artmesh/artmesh"
)

// applyRaw applies data as a committed log entry.
func (h *testFSM) applyRaw(data []byte) any {
	h.t.Helper()
	h.index++
	return h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data})
}

func TestForwardedWriteAppliedOnce(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	id, at := h.nextID()
	inner, err := encodeCommand(CreateArtifact{ID: id, Name: "once", Owner: "alice", CID: "c1", At: at})
	if err != nil {
		t.Fatal(err)
	}
	env := wrapForwarded(inner, at)
	first := h.applyRaw(env)
	a, ok := first.(artmesh.Artifact)
	if !ok {
		t.Fatalf("first apply: %#v", first)
	}
	// The same envelope again (a retry at a new leader): no Conflict, the
	// first result, and one artifact.
	again := h.applyRaw(env)
	if b, ok := again.(artmesh.Artifact); !ok || b.ID != a.ID || b.Version != 1 {
		t.Fatalf("retry: %#v, want the first result %+v", again, a)
	}
	// The raw write without an envelope is a second write: Conflict.
	if _, err := h.apply(CreateArtifact{ID: id, Name: "once", Owner: "alice", CID: "c1", At: at}); !errors.Is(err, artmesh.Conflict) {
		t.Fatalf("an unwrapped second create: %v, want Conflict", err)
	}
	// A replica that lost the first result (a restart) still applies
	// nothing, and says so.
	h.st().recent = recentResults{}
	if res := h.applyRaw(env); !errors.Is(res.(error), artmesh.OutcomeUnknown) {
		t.Fatalf("retry after the result was forgotten: %#v, want OutcomeUnknown", res)
	}
	// Ids are forgotten after the window, by the requests' own times.
	later, _ := encodeCommand(noopCmd{})
	h.applyRaw(wrapForwarded(later, at.Add(requestWindow+time.Second)))
	n := 0
	tx := h.st().db.Txn(false)
	it, _ := tx.Get(tableRequests, indexID)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		n++
	}
	tx.Abort()
	if n != 1 {
		t.Fatalf("%d request ids remembered, want only the latest", n)
	}
}

func TestMalformedEnvelopes(t *testing.T) {
	h := newTestFSM(t)
	inner, _ := encodeCommand(noopCmd{})
	nested := wrapForwarded(wrapForwarded(inner, time.Now()), time.Now())
	for name, entry := range map[string][]byte{
		"short":   {byte(forwardedType), 1, 2, 3},
		"empty":   wrapForwarded(nil, time.Now()),
		"nested":  nested,
		"unknown": wrapForwarded([]byte{250}, time.Now()),
	} {
		if err := h.st().validateEntry(entry); err == nil {
			t.Errorf("%s envelope passed validation", name)
		}
	}
}

// TestForwardRetriedAtNewLeader: a follower's write whose leader stops
// answering is sent again to the next leader as soon as there is one, and
// applied once although the first leader had applied it too.
func TestForwardRetriedAtNewLeader(t *testing.T) {
	ctx := testCtx(t)
	nodes, _, leader := startCluster(t, ctx, 3, false)
	follower := followerOf(nodes, leader)
	byAddr := map[raft.ServerAddress]*Catalog{}
	for _, c := range nodes {
		byAddr[raft.ServerAddress(c.cfg.Address)] = c
	}
	var calls atomic.Int32
	follower.cfg.Forward = func(ctx context.Context, addr raft.ServerAddress, req ForwardRequest) (ForwardResult, error) {
		if calls.Add(1) == 1 {
			// The first leader applies the write, then its answer is lost
			// and it stops leading.
			if _, err := byAddr[addr].ApplyForwarded(ctx, "follower", req); err != nil {
				t.Errorf("first leader: %v", err)
			}
			go func() { _ = byAddr[addr].Raft().LeadershipTransfer().Error() }()
			<-ctx.Done()
			return ForwardResult{}, ctx.Err()
		}
		return byAddr[addr].ApplyForwarded(ctx, "follower", req)
	}
	if _, err := leader.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}, KeyHash: "k"}); err != nil {
		t.Fatal(err)
	}
	if err := follower.WaitApplied(ctx, leader.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	start := time.Now()
	a, err := follower.CreateArtifact(ctx, CreateArtifact{ID: artmesh.NewArtifactID(at), Name: "x", Owner: "alice", CID: "c1", At: at})
	if err != nil {
		t.Fatalf("a write whose leader changed in flight: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the retry took %s", took)
	}
	// The retry went to the new leader, or, when the leadership came to
	// the follower itself, was applied there.
	if (calls.Load() < 2 && !follower.IsLeader()) || a.Version != 1 {
		t.Fatalf("calls %d, artifact %+v", calls.Load(), a)
	}
	page, err := follower.List("alice", artmesh.Filter{Limit: 10})
	if err != nil || totalOf(page) != 1 {
		t.Fatalf("artifacts after the retried write: %+v %v, want exactly one", page, err)
	}
}

// TestRequestIDsSurviveSnapshots: a replica restored from a snapshot still
// knows the ids of forwarded writes, so a retry applies nothing.
func TestRequestIDsSurviveSnapshots(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	id, at := h.nextID()
	inner, _ := encodeCommand(CreateArtifact{ID: id, Name: "once", Owner: "alice", CID: "c1", At: at})
	env := wrapForwarded(inner, at)
	h.applyRaw(env)
	r := h.restored()
	if res := r.applyRaw(env); !errors.Is(res.(error), artmesh.OutcomeUnknown) {
		t.Fatalf("a retry on a restored replica: %#v, want OutcomeUnknown (applied before, result unknown)", res)
	}
}

// TestLeaderChecksForwardedInputRules: a member that forwards a write its
// own checks would refuse (an admin agent with an id that is no id, an
// artifact without a CID) gets Invalid from the leader, raw or in an
// envelope, and nothing reaches the log.
func TestLeaderChecksForwardedInputRules(t *testing.T) {
	ctx := testCtx(t)
	_, _, leader := startCluster(t, ctx, 1, false)
	badAgent, _ := encodeCommand(CreateAgent{Agent: artmesh.Agent{ID: "root agent\n", Admin: true, CreatedAt: time.Now()}, KeyHash: "k"})
	at := time.Now()
	noCID, _ := encodeCommand(CreateArtifact{ID: artmesh.NewArtifactID(at), Name: "x", Owner: "alice", At: at})
	badGroup, _ := encodeCommand(putGroupCmd{Name: "no spaces allowed"})
	// The new leader's own first entries (the bootstrap configuration, a
	// no-op of its term) are applied first, so that only the refused
	// writes could move the index below.
	idx, err := leader.ReadIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.WaitApplied(ctx, idx); err != nil {
		t.Fatal(err)
	}
	before := leader.AppliedIndex()
	for name, entry := range map[string][]byte{
		"agent id":           badAgent,
		"agent id, wrapped":  wrapForwarded(badAgent, time.Now()),
		"artifact CID":       noCID,
		"group name wrapped": wrapForwarded(badGroup, time.Now()),
	} {
		if _, err := leader.ApplyForwarded(ctx, "f", ForwardRequest{Entry: entry, Credential: Credential{APIKey: "as:alice"}}); !errors.Is(err, artmesh.Invalid) {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
	if got := leader.AppliedIndex(); got != before {
		t.Fatalf("refused writes reached the log: applied index %d, was %d", got, before)
	}
	if _, err := leader.Agent("root agent\n"); !errors.Is(err, artmesh.NotFound) {
		t.Fatalf("the agent with a bad id exists: %v", err)
	}
}
