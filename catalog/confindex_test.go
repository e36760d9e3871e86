package catalog

import (
	"testing"
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
