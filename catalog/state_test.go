package catalog

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/artmesh/artmesh"
)

// TestStateFileSurvivesReopen: the state, its applied index and the event
// log are in the state file; a state machine opened on it again has them
// without a snapshot or a log, and skips the entries it already holds.
func TestStateFileSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	f, err := newFSM(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := &testFSM{t: t, f: f}
	arts := fill(h)
	before := dump(t, h.st(), arts)
	index := f.applied.Load()
	if err := f.close(); err != nil {
		t.Fatal(err)
	}

	g, err := newFSM(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.close() })
	if got := g.applied.Load(); got != index {
		t.Fatalf("applied after reopen = %d, want %d", got, index)
	}
	if w, _ := g.watch.current(); w != index {
		t.Fatalf("watch after reopen at %d, want %d", w, index)
	}
	if after := dump(t, g.state(), arts); !reflect.DeepEqual(after, before) {
		for k := range before {
			if !reflect.DeepEqual(before[k], after[k]) {
				t.Errorf("%s differs after reopen:\n before %v\n after  %v", k, before[k], after[k])
			}
		}
		t.FailNow()
	}
	// An entry the state holds is skipped; a new one applies.
	again, _ := encodeCommand(deleteArtifactCmd{ID: arts[1]})
	if res := g.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: again}); res != nil {
		t.Fatalf("an entry the state holds answered %v", res)
	}
	if _, err := g.state().artifact(arts[1]); err != nil {
		t.Fatalf("a skipped entry changed the state: %v", err)
	}
	if res := g.Apply(&raft.Log{Index: index + 1, Type: raft.LogCommand, Data: again}); res != nil {
		if err, ok := res.(error); ok {
			t.Fatalf("a new entry failed: %v", err)
		}
	}
	if _, err := g.state().artifact(arts[1]); artmesh.KindOf(err) != artmesh.NotFound {
		t.Fatalf("a new entry did not apply: %v", err)
	}
}

// TestReferenceSnapshot: the snapshot Raft takes refers to the state
// file: restoring it on the state it came from keeps the state; on a state
// that lacks it, it is refused with the reason.
func TestReferenceSnapshot(t *testing.T) {
	h := newTestFSM(t)
	arts := fill(h)
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufferSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if n := sink.Len(); n != snapshotHeaderLen {
		t.Fatalf("reference snapshot of %d bytes, want %d", n, snapshotHeaderLen)
	}
	if err := h.f.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatalf("restore on its own state: %v", err)
	}
	if _, err := h.st().artifact(arts[0]); err != nil {
		t.Fatal(err)
	}
	empty := newTestFSM(t)
	err = empty.f.Restore(io.NopCloser(bytes.NewReader(sink.Bytes())))
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("refers to the state file")) {
		t.Fatalf("restore on an empty state: %v", err)
	}
}

// TestNewMemberInstallsFullSnapshot: a member that joins after the log
// was compacted gets a full snapshot (the state file, streamed), installs
// it as its state file, goes on with the log, and keeps it across a
// restart.
func TestNewMemberInstallsFullSnapshot(t *testing.T) {
	ctx := testCtx(t)
	addr1, trans1 := raft.NewInmemTransport("node1")
	addr2, trans2 := raft.NewInmemTransport("node2")
	trans1.Connect(addr2, trans2)
	trans2.Connect(addr1, trans1)
	open := func(dir string, id raft.ServerAddress, trans *raft.InmemTransport) *Catalog {
		cfg := testConfig(dir, string(id))
		cfg.Transport = trans
		cfg.TrailingLogs = 2
		c, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	leader := open(t.TempDir(), addr1, trans1)
	if err := leader.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	const agents = 40
	for i := range agents {
		if _, err := leader.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: artmesh.AgentID(fmt.Sprintf("a%02d", i)), CreatedAt: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Now()
	art, err := leader.CreateArtifact(ctx, CreateArtifact{ID: artmesh.NewArtifactID(at), Name: "x", Owner: "a00", CID: "c1", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	first, _ := leader.wal.FirstIndex()
	if first <= 2 {
		t.Fatalf("the log was not compacted (first index %d)", first)
	}

	dir2 := t.TempDir()
	follower := open(dir2, addr2, trans2)
	if err := leader.Raft().AddNonvoter("node2", addr2, 0, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	want := leader.AppliedIndex()
	for follower.AppliedIndex() < want {
		select {
		case <-ctx.Done():
			t.Fatalf("the new member applied %d, want %d", follower.AppliedIndex(), want)
		case <-time.After(5 * time.Millisecond):
		}
	}
	snaps, err := follower.snaps.List()
	if err != nil || len(snaps) == 0 {
		t.Fatalf("the new member has no snapshot (%v): it did not install one", err)
	}
	check := func(c *Catalog) {
		t.Helper()
		for i := range agents {
			if _, err := c.Agent(artmesh.AgentID(fmt.Sprintf("a%02d", i))); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := c.Artifact(art.ID); err != nil || got.Name != "x" {
			t.Fatalf("artifact on the new member: %+v, %v", got, err)
		}
		evs, err := c.Events(0, 100)
		if err != nil || len(evs.Events) != 1 || evs.Events[0].ArtifactID != art.ID {
			t.Fatalf("events on the new member: %+v, %v", evs, err)
		}
	}
	check(follower)
	// The log goes on after the snapshot.
	if _, err := leader.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "late", CreatedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := follower.Agent("late"); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the new member did not apply the log after its snapshot")
		case <-time.After(5 * time.Millisecond):
		}
	}
	// No temporary file is left behind on either side.
	for _, dir := range []string{leader.cfg.Dir, dir2} {
		left, _ := filepath.Glob(filepath.Join(dir, stateFile+".*"))
		if len(left) > 0 {
			t.Fatalf("left behind: %v", left)
		}
	}
	if err := follower.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir2, stateFile)); err != nil {
		t.Fatal(err)
	}
	again := open(dir2, addr2, trans2)
	check(again)
}

// TestEveryTableDecodes: each table's id index tells its row type, which
// is what the state file's rows decode into.
func TestEveryTableDecodes(t *testing.T) {
	s := schema()
	for name := range s.Tables {
		if _, err := decodeRow(s, name, []byte("{}")); err != nil {
			t.Errorf("table %s: %v", name, err)
		}
	}
}

// TestFirstOnUniqueIndexIsExact: as in go-memdb, First on a unique index
// finds the key given, not the first key it is a prefix of.
func TestFirstOnUniqueIndexIsExact(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	at := testBase
	a := h.must(CreateArtifact{ID: artmesh.NewArtifactID(at), Name: "n", Owner: "alice", CID: "c1", At: at}).(artmesh.Artifact)
	tx := h.st().db.Txn(false)
	defer tx.Abort()
	// The versions' id is the artifact id and the number: the artifact
	// id alone is a prefix of it, not a key.
	if raw, err := tx.First(tableVersions, indexID, a.ID); err != nil || raw != nil {
		t.Fatalf("First by a prefix of a unique key = %v, %v; want nothing", raw, err)
	}
	if raw, err := tx.First(tableVersions, indexID, a.ID, 1); err != nil || raw == nil {
		t.Fatalf("First by the whole key = %v, %v", raw, err)
	}
	// Get iterates the prefix.
	it, err := tx.Get(tableVersions, indexID, a.ID)
	if err != nil || it.Next() == nil {
		t.Fatalf("Get by a prefix found nothing: %v", err)
	}
}

// TestGroupCommit: with a commit window, batches share one transaction:
// their results are known at once, their effects are seen once it
// commits (by the flusher when no batch follows), and a batch that fails
// as a whole loses only its failing entry, not the batches before it in
// the same transaction.
func TestGroupCommit(t *testing.T) {
	f, err := newFSM(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.close() })
	const window = 200 * time.Millisecond
	f.startFlusher(window)
	entry := func(index uint64, cmd command) *raft.Log {
		data, err := encodeCommand(cmd)
		if err != nil {
			t.Fatal(err)
		}
		return &raft.Log{Index: index, Type: raft.LogCommand, Data: data}
	}
	agent := func(id string) command {
		return CreateAgent{Agent: artmesh.Agent{ID: artmesh.AgentID(id), CreatedAt: testBase}, KeyHash: "hash-" + id}
	}
	start := time.Now()
	for i, id := range []string{"a", "b"} {
		if res := f.ApplyBatch([]*raft.Log{entry(uint64(i+1), agent(id))}); res[0] != nil {
			if err, ok := res[0].(error); ok {
				t.Fatal(err)
			}
		}
	}
	if time.Since(start) < window/2 {
		if got := f.applied.Load(); got != 0 {
			t.Fatalf("applied %d before the window passed, want 0 (not committed yet)", got)
		}
		if _, err := f.state().agent("a"); err == nil {
			t.Fatal("an entry of the open transaction can be read before it commits")
		}
	}
	if got := f.heldIndex(); got != 2 {
		t.Fatalf("held index %d, want 2", got)
	}
	// A batch with a malformed entry, in the same open transaction.
	bad := &raft.Log{Index: 4, Type: raft.LogCommand, Data: []byte("\x01{not json")}
	res := f.ApplyBatch([]*raft.Log{entry(3, agent("c")), bad, entry(5, agent("d"))})
	if !isMalformed(res[1]) {
		t.Fatalf("the malformed entry answered %v", res[1])
	}
	for _, r := range []any{res[0], res[2]} {
		if err, ok := r.(error); ok {
			t.Fatalf("a good entry of the failed batch: %v", err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.applied.Load() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("applied %d, want 5: the flusher did not commit", f.applied.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, id := range []artmesh.AgentID{"a", "b", "c", "d"} {
		if _, err := f.state().agent(id); err != nil {
			t.Fatalf("agent %s after the commit: %v", id, err)
		}
	}
	if got := f.rejected.Load(); got != 1 {
		t.Fatalf("rejected %d entries, want 1", got)
	}
}

// TestTrimResidency: dropping the state file's pages from the map keeps
// the state readable (they come back from the page cache).
func TestTrimResidency(t *testing.T) {
	h := newTestFSM(t)
	arts := fill(h)
	before := dump(t, h.st(), arts)
	if err := h.st().db.trimResidency(); err != nil {
		t.Fatal(err)
	}
	if after := dump(t, h.st(), arts); !reflect.DeepEqual(after, before) {
		t.Fatal("state differs after trimming")
	}
	h.create("alice", "after-trim", "text/plain", nil)
}
