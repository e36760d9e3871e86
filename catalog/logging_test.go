package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
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
	for _, m := range []string{"heartbeat timeout reached", "election timeout reached"} {
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

// records is a slog.Handler that keeps each record as one line: its level,
// its message and its attributes, in order, as key=value.
type records struct {
	mu    sync.Mutex
	attrs []slog.Attr
	lines *[]string
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }

func (h *records) Handle(_ context.Context, r slog.Record) error {
	parts := []string{r.Level.String(), fmt.Sprintf("%q", r.Message)}
	for _, a := range h.attrs {
		parts = append(parts, a.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		parts = append(parts, a.String())
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.lines = append(*h.lines, strings.Join(parts, " "))
	return nil
}

func (h *records) WithAttrs(as []slog.Attr) slog.Handler {
	return &records{attrs: append(append([]slog.Attr(nil), h.attrs...), as...), lines: h.lines}
}

func (h *records) WithGroup(string) slog.Handler { return h }

// TestHclogRecords checks what each kind of raft record becomes: its level
// (raft's Info is our Debug; the warning of every join is Debug; a new
// election is Info), its message in our style and its attributes as ours.
func TestHclogRecords(t *testing.T) {
	for _, tc := range []struct {
		name  string
		level hclog.Level
		msg   string
		args  []any
		want  string // "" for nothing logged
	}{
		{"a join's missing previous log is Debug", hclog.Warn, "failed to get previous log",
			[]any{"previous-index", 7, "last-index", 0, "error", raft.ErrLogNotFound},
			`DEBUG "failed to get previous log" logger=raft previous_index=7 last_index=0 err=log not found`},
		{"a previous log the store fails to read is a warning", hclog.Warn, "failed to get previous log",
			[]any{"previous-index", 7, "last-index", 9, "error", errors.New("read segment: input/output error")},
			`WARN "failed to get previous log" logger=raft previous_index=7 last_index=9 err=read segment: input/output error`},
		{"other warnings stay warnings", hclog.Warn, "failed to contact quorum of nodes, stepping down", nil,
			`WARN "failed to contact quorum of nodes, stepping down" logger=raft`},
		{"a new election is Info, lower-cased", hclog.Warn, "Election timeout reached, restarting election", nil,
			`INFO "election timeout reached, restarting election" logger=raft`},
		{"raft's Info is Debug", hclog.Info, "entering follower state",
			[]any{"follower", "node-a", "leader-address", "10.0.0.2:7001", "leader-id", "B"},
			`DEBUG "entering follower state" logger=raft follower=node-a leader_address=10.0.0.2:7001 leader_id=B`},
		{"a capital letter is lower-cased, a final period dropped", hclog.Info, "Installed remote snapshot.", nil,
			`DEBUG "installed remote snapshot" logger=raft`},
		{"an acronym keeps its capitals", hclog.Error, "CRC checksum failed", []any{"stored", 1, "computed", 2},
			`ERROR "CRC checksum failed" logger=raft stored=1 computed=2`},
		{"hclog.Fmt values are formatted", hclog.Info, "updating configuration",
			[]any{"servers", hclog.Fmt("%d of %d", 2, 3)},
			`DEBUG "updating configuration" logger=raft servers=2 of 3`},
		{"camelCase keys are snake_case", hclog.Error, "failed to delete old segment",
			[]any{"baseIndex", 42, "id", 3, "err", "busy"},
			`ERROR "failed to delete old segment" logger=raft base_index=42 id=3 err=busy`},
		{"a value without a key is kept", hclog.Error, "odd", []any{"a", 1, "lonely"},
			`ERROR "odd" logger=raft a=1 extra_value=lonely`},
		{"Off logs nothing", hclog.Off, "never", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lines []string
			l := newHCLog(slog.New(&records{lines: &lines}), "raft")
			l.Log(tc.level, tc.msg, tc.args...)
			want := []string{tc.want}
			if tc.want == "" {
				want = nil
			}
			if !slices.Equal(lines, want) {
				t.Errorf("logged %q, want %q", lines, want)
			}
		})
	}
}

// TestHclogImpliedArgs: the arguments given to With are written as ours too.
func TestHclogImpliedArgs(t *testing.T) {
	var lines []string
	l := newHCLog(slog.New(&records{lines: &lines}), "wal").With("segment-id", 4)
	l.Error("rotate error", "error", "disk full")
	want := `ERROR "rotate error" logger=wal segment_id=4 err=disk full`
	if len(lines) != 1 || lines[0] != want {
		t.Fatalf("logged %q, want %q", lines, want)
	}
}

func TestOurMessage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Election timeout reached, restarting election", "election timeout reached, restarting election"},
		{"failed to get previous log", "failed to get previous log"},
		{"Installed remote snapshot.", "installed remote snapshot"},
		{"CRC checksum failed", "CRC checksum failed"},
		{"RPC failed", "RPC failed"},
		{"A", "a"},
		{"", ""},
		{"Élan.", "élan"},
	} {
		if got := ourMessage(tc.in); got != tc.want {
			t.Errorf("ourMessage(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
