package catalog

import (
	"context"
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

// keyCtx returns ctx carrying a fresh use of alice's key with a request
// digest of body.
func keyCtx(ctx context.Context, key, body string) (context.Context, *Idempotency) {
	k := &Idempotency{Agent: "alice", Key: key, Digest: func() ([32]byte, error) { return sha256.Sum256([]byte(body)), nil }}
	return WithIdempotency(ctx, k), k
}

func createCmd(name string) CreateArtifact {
	return CreateArtifact{ID: artmesh.NewArtifactID(time.Now()), Name: name, ContentType: "text/plain", Owner: "alice", CID: "c-" + name, SizeBytes: 1, At: time.Now().UTC()}
}

// TestIdempotencyKeys: a write sent again with its key, to the leader or
// through a follower, takes effect once and answers the first result; the
// same key with another request is refused; a refused write leaves its key
// free; the records survive a restart.
func TestIdempotencyKeys(t *testing.T) {
	ctx := testCtx(t)
	nodes, _, leader := startCluster(t, ctx, 3, true)
	follower := followerOf(nodes, leader)
	if _, err := leader.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}, KeyHash: "k"}); err != nil {
		t.Fatal(err)
	}
	kctx, k := keyCtx(ctx, "create-1", "request A")
	first, err := leader.CreateArtifact(kctx, createCmd("a"))
	if err != nil {
		t.Fatal(err)
	}
	if k.Replayed() {
		t.Fatal("a first write reported as replayed")
	}
	for _, via := range []struct {
		name string
		c    *Catalog
	}{{"leader", leader}, {"follower", follower}} {
		// The retry mints another id, as a node does for every request.
		kctx, k := keyCtx(ctx, "create-1", "request A")
		again, err := via.c.CreateArtifact(kctx, createCmd("a"))
		if err != nil {
			t.Fatalf("retry via the %s: %v", via.name, err)
		}
		if again.ID != first.ID || !again.CreatedAt.Equal(first.CreatedAt) || !k.Replayed() {
			t.Fatalf("retry via the %s: got %s (replayed %v), want the first result %s", via.name, again.ID, k.Replayed(), first.ID)
		}
	}
	page, err := leader.List("alice", artmesh.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 {
		t.Fatalf("%d artifacts after three sends of one keyed create, want 1", len(page.Items))
	}

	// The same key with another request.
	for _, c := range []*Catalog{leader, follower} {
		kctx, _ = keyCtx(ctx, "create-1", "request B")
		_, err = c.CreateArtifact(kctx, createCmd("b"))
		wantKind(t, err, artmesh.IdempotencyKeyReused)
	}

	// A refused write does not take its key.
	kctx, _ = keyCtx(ctx, "delete-1", "delete")
	err = follower.DeleteArtifact(kctx, "no-such-artifact")
	wantKind(t, err, artmesh.NotFound)
	kctx, k = keyCtx(ctx, "delete-1", "delete")
	if err := follower.DeleteArtifact(kctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if k.Replayed() {
		t.Fatal("the key of a refused write was kept")
	}
	// A delete sent again is a replay, not a not-found.
	kctx, k = keyCtx(ctx, "delete-1", "delete")
	if err := leader.DeleteArtifact(kctx, first.ID); err != nil || !k.Replayed() {
		t.Fatalf("delete sent again: %v, replayed %v; want a replay", err, k.Replayed())
	}
	if n := leader.IdempotencyKeys(); n != 2 {
		t.Fatalf("%d key records, want 2", n)
	}
	rec, ok, err := follower.IdempotencyRecord("alice", "create-1")
	if err != nil || !ok || rec.Digest != sha256.Sum256([]byte("request A")) {
		t.Fatalf("record of create-1 on the follower: %+v %v %v", rec, ok, err)
	}
	if _, ok, _ := follower.IdempotencyRecord("bob", "create-1"); ok {
		t.Fatal("a key is visible to another agent")
	}
}

// TestIdempotencyKeyOfAnotherAgent: a member cannot forward a keyed write
// that spends another agent's key.
func TestIdempotencyKeyOfAnotherAgent(t *testing.T) {
	ctx := testCtx(t)
	nodes, _, leader := startCluster(t, ctx, 3, true)
	follower := followerOf(nodes, leader)
	for _, id := range []artmesh.AgentID{"alice", "mallory"} {
		if _, err := leader.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: id, CreatedAt: time.Now()}, KeyHash: "k" + string(id)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := follower.WaitApplied(ctx, leader.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	// mallory's credential, alice's key.
	mctx := WithCredential(ctx, Credential{APIKey: "user:mallory"})
	kctx, _ := keyCtx(mctx, "k1", "x")
	cmd := createCmd("m")
	cmd.Owner = "mallory"
	_, err := follower.CreateArtifact(kctx, cmd)
	wantKind(t, err, artmesh.PermissionDenied)
}

// TestIdempotencyKeysSurviveRestart: a key's record is state: after a
// restart the retry is still a replay.
func TestIdempotencyKeysSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	c := openSingle(t, dir)
	ctx := testCtx(t)
	if _, err := c.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}, KeyHash: "k"}); err != nil {
		t.Fatal(err)
	}
	kctx, _ := keyCtx(ctx, "k", "req")
	first, err := c.CreateArtifact(kctx, createCmd("a"))
	if err != nil {
		t.Fatal(err)
	}
	// From a snapshot: the records travel in it.
	if err := c.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openSingle(t, dir)
	kctx, k := keyCtx(ctx, "k", "req")
	again, err := c.CreateArtifact(kctx, createCmd("a"))
	if err != nil || again.ID != first.ID || !k.Replayed() {
		t.Fatalf("after a restart: %v %v replayed %v, want %s", again.ID, err, k.Replayed(), first.ID)
	}
}

// TestKeyRecordsBounded: past the age bound a key's record is dropped by
// the next keyed write, and the count follows.
func TestKeyRecordsBounded(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	tx := h.st().db.Txn(true)
	old := time.Now().Add(-KeyWindow - time.Hour).UTC()
	for i, key := range []string{"a", "b", "c"} {
		env := wrapKeyed(keyed{At: old.Add(time.Duration(i) * time.Second), Agent: "alice", Key: key}, mustEncode(t, createCmd(key)))
		if res := applyCommand(tx, env); res == nil {
			t.Fatal("no result")
		} else if err, ok := res.(error); ok {
			t.Fatal(err)
		}
	}
	if n := tx.metaUint(metaKeyCount); n != 3 {
		t.Fatalf("count %d, want 3", n)
	}
	env := wrapKeyed(keyed{At: time.Now().UTC(), Agent: "alice", Key: "d"}, mustEncode(t, createCmd("d")))
	if res, ok := applyCommand(tx, env).(error); ok {
		t.Fatal(res)
	}
	if n := tx.metaUint(metaKeyCount); n != 1 {
		t.Fatalf("count %d after the old ones expired, want 1", n)
	}
	for _, key := range []string{"a", "b", "c"} {
		if raw, _ := tx.First(tableKeys, indexID, "alice", key); raw != nil {
			t.Fatalf("expired key %s kept", key)
		}
	}
	tx.Abort()
}

func mustEncode(t *testing.T, cmd command) []byte {
	t.Helper()
	data, err := encodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestEnvelopedWritesMakeEvents: a write in a keyed or conditional
// envelope makes the event the bare write makes, and a replay makes none.
func TestEnvelopedWritesMakeEvents(t *testing.T) {
	c := openSingle(t, t.TempDir())
	ctx := testCtx(t)
	if _, err := c.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}, KeyHash: "k"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "bob", CreatedAt: time.Now()}, KeyHash: "kb"}); err != nil {
		t.Fatal(err)
	}
	kctx, _ := keyCtx(WithPrecondition(ctx, Precondition{IfNoneMatch: true}), "c", "create")
	a, err := c.CreateArtifact(kctx, createCmd("ev"))
	if err != nil {
		t.Fatal(err)
	}
	kctx, _ = keyCtx(WithPrecondition(ctx, Precondition{IfMatch: []string{a.CID}}), "u", "update")
	if _, err := c.AddVersion(kctx, AddVersion{ArtifactID: a.ID, By: "alice", CID: "c2", SizeBytes: 1, At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	kctx, _ = keyCtx(ctx, "s", "share")
	if _, err := c.Share(kctx, a.ID, []artmesh.AgentID{"bob"}, nil); err != nil {
		t.Fatal(err)
	}
	// Replays of all three.
	for _, k := range []string{"c", "u", "s"} {
		kctx, rk := keyCtx(ctx, k, map[string]string{"c": "create", "u": "update", "s": "share"}[k])
		var err error
		switch k {
		case "c":
			_, err = c.CreateArtifact(kctx, createCmd("ev"))
		case "u":
			_, err = c.AddVersion(kctx, AddVersion{ArtifactID: a.ID, By: "alice", CID: "c3", SizeBytes: 1, At: time.Now().UTC()})
		case "s":
			_, err = c.Share(kctx, a.ID, []artmesh.AgentID{"bob"}, nil)
		}
		if err != nil || !rk.Replayed() {
			t.Fatalf("replay of %s: %v, replayed %v", k, err, rk.Replayed())
		}
	}
	page, err := c.Events(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range page.Events {
		if ev.ArtifactID == a.ID {
			kinds = append(kinds, ev.Type)
		}
	}
	if want := []string{EventCreated, EventUpdated, EventShared}; !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	tx := c.fsm.state().db.Txn(false)
	defer tx.Abort()
	raw, err := tx.First(tableArtifacts, indexID, string(a.ID))
	if err != nil || raw == nil || raw.(*artifactRow).AgentGrantIndex["bob"] == 0 {
		t.Fatalf("the keyed share's grant has no stamp: %+v %v", raw, err)
	}
}
