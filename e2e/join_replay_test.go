package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestJoinReplaysFromAnEarlyConfiguration: a node that joins replays the
// log from its start (no snapshot yet), so the configuration it has after
// the first batch of entries lists only the bootstrap node, not the
// leader, which joined later. The Raft gate must still take the leader's
// entries (it is one of the voters the joiner's ticket and join answer
// name) until the joiner has caught up, and the join must finish.
func TestJoinReplaysFromAnEarlyConfiguration(t *testing.T) {
	a := startDaemon(t, t.TempDir())
	// More entries than Raft sends in one batch (256).
	for i := range 400 {
		a.call(t, "POST", "/v1/snippets", map[string]any{"name": fmt.Sprintf("s%d", i), "content": i}, 201, nil)
	}
	b := joinDaemon(t, a, t.TempDir())
	b.key = a.key
	c := joinDaemon(t, a, t.TempDir())
	c.key = a.key
	waitFor(t, 30*time.Second, "three voters", func() bool {
		n := 0
		for _, m := range a.members(t) {
			if m.Role == "voter" {
				n++
			}
		}
		return n == 3
	})
	a.stop()
	var leader *daemon
	waitFor(t, 30*time.Second, "b or c leads", func() bool {
		for _, m := range b.members(t) {
			switch {
			case !m.Leader:
			case m.PeerID == b.peerID(t):
				leader = b
			case m.PeerID == c.peerID(t):
				leader = c
			}
		}
		return leader != nil
	})
	d := joinDaemon(t, leader, t.TempDir())
	d.key = a.key
	var page artifactPage
	d.call(t, "GET", "/v1/artifacts?name=s399&consistent=true", nil, 200, &page)
	if len(page.Items) != 1 {
		t.Fatalf("the joiner does not see the last snippet written before it joined: %+v", page)
	}
}
