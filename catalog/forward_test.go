package catalog

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
)

// startCluster starts n voters on connected in-memory transports and
// returns them, their transports and the leader once there is one. With
// forward, followers forward writes to the leader by a direct call.
func startCluster(t *testing.T, ctx context.Context, n int, forward bool) (nodes []*Catalog, trans []*raft.InmemTransport, leader *Catalog) {
	t.Helper()
	addrs := make([]raft.ServerAddress, n)
	trans = make([]*raft.InmemTransport, n)
	byAddr := map[raft.ServerAddress]*Catalog{}
	var conf raft.Configuration
	for i := range n {
		addrs[i], trans[i] = raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("node%d", i)))
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(addrs[i]), Address: addrs[i]})
	}
	for i := range n {
		for j := range n {
			if i != j {
				trans[i].Connect(addrs[j], trans[j])
			}
		}
	}
	forwardTo := func(ctx context.Context, addr raft.ServerAddress, req ForwardRequest) (ForwardResult, error) {
		c, ok := byAddr[addr]
		if !ok {
			return ForwardResult{}, errors.New("no such leader")
		}
		return c.ApplyForwarded(ctx, "follower", req)
	}
	for i := range n {
		cfg := testConfig(t.TempDir(), string(addrs[i]))
		cfg.Transport = trans[i]
		if forward {
			cfg.Forward = forwardTo
		}
		c, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Raft().BootstrapCluster(conf).Error(); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, c)
		byAddr[addrs[i]] = c
	}
	for leader == nil {
		for _, c := range nodes {
			if c.IsLeader() {
				leader = c
			}
		}
		if leader != nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("no leader")
		case <-time.After(10 * time.Millisecond):
		}
	}
	// Every node knows the leader, so that followers can forward to it.
	for _, c := range nodes {
		if err := c.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return nodes, trans, leader
}

// followerOf returns the last of nodes that is not leader.
func followerOf(nodes []*Catalog, leader *Catalog) *Catalog {
	var f *Catalog
	for _, c := range nodes {
		if c != leader {
			f = c
		}
	}
	return f
}

// TestForwardedWrites checks that a write on a follower is applied through
// the leader, that the follower reads it as soon as the write returns,
// and that rule violations come back with their kind.
func TestForwardedWrites(t *testing.T) {
	ctx := testCtx(t)
	nodes, _, leader := startCluster(t, ctx, 3, true)
	follower := followerOf(nodes, leader)
	if _, err := follower.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}, KeyHash: "k"}); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	a, err := follower.CreateArtifact(ctx, CreateArtifact{ID: artmesh.NewArtifactID(at), Name: "x", Owner: "alice", CID: "c1", At: at})
	if err != nil {
		t.Fatal(err)
	}
	// Read your write, on the node that wrote, at once.
	if got, err := follower.Artifact(a.ID); err != nil || got.CID != "c1" || got.Version != 1 {
		t.Fatalf("follower read after its write: %+v %v", got, err)
	}
	if a.ID == "" || a.Owner != "alice" {
		t.Fatalf("forwarded result %+v", a)
	}
	// A rule violation keeps its kind across the forward.
	_, err = follower.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}})
	wantKind(t, err, artmesh.Conflict)
	err = follower.DeleteArtifact(ctx, "art_01JD0000000000000000000000")
	wantKind(t, err, artmesh.NotFound)
	// A malformed entry never reaches the log.
	if _, err := leader.ApplyForwarded(ctx, "f", ForwardRequest{Entry: []byte{byte(createArtifactType), '{', 'x'}, Credential: Credential{APIKey: "as:alice"}}); !errors.Is(err, artmesh.Invalid) {
		t.Fatalf("malformed forwarded entry: %v", err)
	}
	if _, err := leader.ApplyForwarded(ctx, "f", ForwardRequest{Entry: []byte{250}}); !errors.Is(err, artmesh.Invalid) {
		t.Fatalf("unknown forwarded entry type: %v", err)
	}
	// Followers do not take forwarded writes.
	if _, err := follower.ApplyForwarded(ctx, "f", ForwardRequest{Entry: []byte{byte(deleteGroupType), '{', '}'}}); !errors.Is(err, artmesh.Unavailable) {
		t.Fatalf("forwarded write to a follower: %v", err)
	}
}

// TestOutcomeUnknown: a write that Raft may have taken and whose answer
// was lost is OutcomeUnknown; one it certainly did not take stays
// Unavailable; a refusal keeps its kind.
func TestOutcomeUnknown(t *testing.T) {
	const op = artmesh.Op("catalog.Test")
	for _, tc := range []struct {
		name string
		err  error
		want artmesh.Kind
	}{
		{"leadership lost after the append", unavailable(op, raft.ErrLeadershipLost), artmesh.OutcomeUnknown},
		{"shut down with the entry taken", unavailable(op, raft.ErrRaftShutdown), artmesh.OutcomeUnknown},
		{"the caller stopped waiting", unavailable(op, context.DeadlineExceeded), artmesh.OutcomeUnknown},
		{"not the leader", unavailable(op, raft.ErrNotLeader), artmesh.Unavailable},
		{"the queue was full", unavailable(op, raft.ErrEnqueueTimeout), artmesh.Unavailable},
		{"a refusal", artmesh.E(op, artmesh.Conflict, "taken"), artmesh.Conflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := artmesh.KindOf(outcomeUnknown(op, tc.err)); got != tc.want {
				t.Fatalf("kind %v, want %v", got, tc.want)
			}
		})
	}
}

// TestForwardOutcomes: a forwarded write that got no answer is sent again
// (the same envelope, applied once) and succeeds once an attempt is
// answered; when every attempt fails, the write is OutcomeUnknown if one
// may have reached the leader, and Unavailable if none did.
func TestForwardOutcomes(t *testing.T) {
	ctx := testCtx(t)
	nodes, _, leader := startCluster(t, ctx, 3, false)
	follower := followerOf(nodes, leader)
	if _, err := leader.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}, KeyHash: "k"}); err != nil {
		t.Fatal(err)
	}
	if err := follower.WaitApplied(ctx, leader.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	lost := artmesh.E(artmesh.OutcomeUnknown, "the leader did not answer")
	notSent := artmesh.E(artmesh.Unavailable, "the leader could not be reached")
	for _, tc := range []struct {
		name string
		// attempt answers the i-th attempt (from 1); apply sends it to
		// the leader.
		attempt func(i int32, apply func() (ForwardResult, error)) (ForwardResult, error)
		want    artmesh.Kind // Other: success
		applied int          // artifacts of the name afterwards
	}{
		{"taken, answer lost, then answered", func(i int32, apply func() (ForwardResult, error)) (ForwardResult, error) {
			res, err := apply()
			if i == 1 && err == nil {
				return ForwardResult{}, lost
			}
			return res, err
		}, artmesh.Other, 1},
		{"taken, never answered", func(i int32, apply func() (ForwardResult, error)) (ForwardResult, error) {
			_, _ = apply()
			return ForwardResult{}, lost
		}, artmesh.OutcomeUnknown, 1},
		{"never reached", func(int32, func() (ForwardResult, error)) (ForwardResult, error) {
			return ForwardResult{}, notSent
		}, artmesh.Unavailable, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			follower.cfg.Forward = func(ctx context.Context, addr raft.ServerAddress, req ForwardRequest) (ForwardResult, error) {
				return tc.attempt(calls.Add(1), func() (ForwardResult, error) { return leader.ApplyForwarded(ctx, "follower", req) })
			}
			wctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
			defer cancel()
			at := time.Now()
			_, err := follower.CreateArtifact(wctx, CreateArtifact{ID: artmesh.NewArtifactID(at), Name: tc.name, Owner: "alice", CID: "c1", At: at})
			if got := artmesh.KindOf(err); (tc.want == artmesh.Other) != (err == nil) || (err != nil && got != tc.want) {
				t.Fatalf("after %d attempts: %v (kind %v), want kind %v", calls.Load(), err, got, tc.want)
			}
			if err := follower.WaitApplied(ctx, leader.AppliedIndex()); err != nil {
				t.Fatal(err)
			}
			page, err := follower.List("alice", artmesh.Filter{Name: tc.name, Limit: 10})
			if err != nil || len(page.Items) != tc.applied {
				t.Fatalf("artifacts named %q: %+v %v, want %d", tc.name, page.Items, err, tc.applied)
			}
		})
	}
}
