package catalog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRepeatedPeerWarningsAreLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLog(slog.New(slog.NewTextHandler(&buf, nil)), "raft")
	for range 50 {
		l.Error("failed to appendEntries to", "peer", "B", "error", "dial backoff")
	}
	l.Named("replication").Error("failed to appendEntries to", "peer", "C", "error", "dial backoff")
	l.Warn("unrelated warning")
	l.Warn("unrelated warning")
	got := buf.String()
	if n := strings.Count(got, "peer=B"); n != 1 {
		t.Fatalf("the warning about B was logged %d times, want once:\n%s", n, got)
	}
	if strings.Count(got, "peer=C") != 1 || strings.Count(got, "unrelated warning") != 2 {
		t.Fatalf("other warnings were dropped:\n%s", got)
	}
	// A state change of raft does not start the count again.
	buf.Reset()
	l.Info("entering follower state", "follower", "A")
	l.Error("failed to appendEntries to", "peer", "B", "error", "dial backoff")
	if n := strings.Count(buf.String(), "peer=B"); n != 0 {
		t.Fatalf("after a state change the warning about B was logged %d times, want none within a minute:\n%s", n, buf.String())
	}
}

// TestCandidateLoopLogsEachDownPeerOnce is a node without a quorum: it
// enters the candidate state at every election timeout and its vote
// requests to the two members that are down fail each time. At the
// default level (Info) each failure is logged once, not once an election.
func TestCandidateLoopLogsEachDownPeerOnce(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), "raft")
	for term := 2; term < 100; term++ {
		l.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "", "last-leader-id", "")
		l.Info("entering candidate state", "node", "A", "term", term)
		for _, p := range []string{"B", "C"} {
			l.Error("failed to make requestVote RPC", "target", p, "error", "dial backoff", "term", term)
		}
		l.Warn("Election timeout reached, restarting election")
	}
	got := buf.String()
	for _, p := range []string{"B", "C"} {
		if n := strings.Count(got, "target="+p); n != 1 {
			t.Errorf("the failed vote request to %s was logged %d times, want once:\n%s", p, n, got)
		}
	}
	if n := strings.Count(got, "level=ERROR"); n != 2 {
		t.Errorf("%d error lines, want 2:\n%s", n, got)
	}
	for _, m := range []string{"heartbeat timeout reached", "Election timeout reached"} {
		if n := strings.Count(got, m); n != 1 {
			t.Errorf("%q was logged %d times, want once:\n%s", m, n, got)
		}
	}
	if strings.Contains(got, "entering candidate state") {
		t.Errorf("raft's state changes are logged at Info (they are Debug here):\n%s", got)
	}
}

func TestRepeatsForgetOldPeers(t *testing.T) {
	r := &repeats{last: map[string]repeat{}}
	t0 := time.Now()
	for i := range maxRepeats {
		r.admit("failed to heartbeat to", fmt.Sprint("peer-", i), t0)
	}
	// A minute on, the next new peer makes room: the old entries go.
	if ok, _ := r.admit("failed to heartbeat to", "new", t0.Add(repeatEvery)); !ok {
		t.Fatal("a new peer's warning was not logged")
	}
	if len(r.last) != 1 {
		t.Fatalf("%d entries remembered, want 1", len(r.last))
	}
}

func TestRepeatsCountedAfterAMinute(t *testing.T) {
	r := &repeats{last: map[string]repeat{}}
	t0 := time.Now()
	steps := []struct {
		at    time.Duration
		ok    bool
		count int
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{30 * time.Second, false, 0},
		{repeatEvery + time.Second, true, 2},
		{repeatEvery + 2*time.Second, false, 0},
	}
	for i, s := range steps {
		ok, n := r.admit("failed to heartbeat to", "B", t0.Add(s.at))
		if ok != s.ok || n != s.count {
			t.Fatalf("step %d: admit = %v, %d; want %v, %d", i, ok, n, s.ok, s.count)
		}
	}
}
