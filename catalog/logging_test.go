package catalog

import (
	"bytes"
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
	// A state change of raft: the next one is logged again.
	buf.Reset()
	l.Info("entering follower state", "follower", "A")
	l.Error("failed to appendEntries to", "peer", "B", "error", "dial backoff")
	if n := strings.Count(buf.String(), "peer=B"); n != 1 {
		t.Fatalf("after a state change the warning about B was logged %d times, want once:\n%s", n, buf.String())
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
