package catalog

import (
	"testing"

	"github.com/hashicorp/raft"
)

// TestConfigurationIndex: Configuration reports the index of the latest
// configuration entry (raft v1.8.0's GetConfiguration reports 0), which
// rises with each change and is found again when the catalog reopens.
func TestConfigurationIndex(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	c := openSingle(t, dir)
	servers, first, err := c.Configuration()
	if err != nil || len(servers) != 1 || first == 0 {
		t.Fatalf("after bootstrap: %v at index %d, %v", servers, first, err)
	}
	added, err := c.AddServer(ctx, "node2", false)
	if err != nil {
		t.Fatal(err)
	}
	servers, idx, err := c.Configuration()
	if err != nil || len(servers) != 2 || idx != added || idx <= first {
		t.Fatalf("after adding a nonvoter at %d: %v at index %d (bootstrap's %d), %v", added, servers, idx, first, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	re, err := Open(ctx, testConfig(dir, "node1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { re.Close() })
	if _, got, err := re.Configuration(); err != nil || got != added {
		t.Fatalf("reopened: index %d, %v; want %d", got, err, added)
	}
}

// TestConfLog: the index follows what raft stores: a configuration raises
// it, a compacted prefix leaves it, a replaced suffix makes it scan the
// log again, and with no configuration left in the log it is the latest
// snapshot's.
func TestConfLog(t *testing.T) {
	logs, snaps := raft.NewInmemStore(), raft.NewInmemSnapshotStore()
	c, err := newConfLog(logs, snaps)
	if err != nil || c.latest() != 0 {
		t.Fatalf("empty: %d, %v", c.latest(), err)
	}
	entry := func(i uint64, typ raft.LogType) *raft.Log { return &raft.Log{Index: i, Term: 1, Type: typ} }
	if err := c.StoreLogs([]*raft.Log{entry(1, raft.LogConfiguration), entry(2, raft.LogCommand), entry(3, raft.LogConfiguration), entry(4, raft.LogCommand)}); err != nil {
		t.Fatal(err)
	}
	if c.latest() != 3 {
		t.Fatalf("after storing: %d, want 3", c.latest())
	}
	if err := c.StoreLog(entry(5, raft.LogConfiguration)); err != nil || c.latest() != 5 {
		t.Fatalf("after a configuration at 5: %d, %v", c.latest(), err)
	}
	// A new leader replaces entries 5 on: the configuration at 3 holds.
	if err := c.DeleteRange(5, 5); err != nil || c.latest() != 3 {
		t.Fatalf("after replacing the suffix: %d, %v, want 3", c.latest(), err)
	}
	// A snapshot covers 1 to 3, and the prefix is compacted: still 3.
	sink, err := snaps.Create(raft.SnapshotVersionMax, 3, 1, raft.Configuration{}, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteRange(1, 3); err != nil || c.latest() != 3 {
		t.Fatalf("after compacting the prefix: %d, %v, want 3", c.latest(), err)
	}
	// Reopened over what is left: no configuration in the log, the
	// snapshot's.
	re, err := newConfLog(logs, snaps)
	if err != nil || re.latest() != 3 {
		t.Fatalf("reopened: %d, %v, want 3", re.latest(), err)
	}
	// The rest of the log replaced too: the snapshot's.
	if err := re.DeleteRange(4, 4); err != nil || re.latest() != 3 {
		t.Fatalf("after replacing all the log: %d, %v, want 3", re.latest(), err)
	}
	// A snapshot installed from the leader (raft leaves an empty log
	// alone): its configuration, at 9, is the latest.
	sink, err = snaps.Create(raft.SnapshotVersionMax, 12, 2, raft.Configuration{}, 9, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if re.latest() != 9 {
		t.Fatalf("after a snapshot with a configuration at 9 is installed: %d, want 9", re.latest())
	}
}
