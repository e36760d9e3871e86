package mesh

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// fakePipeline records when each AppendEntries was sent.
type fakePipeline struct {
	sent []time.Time
}

func (f *fakePipeline) AppendEntries(*raft.AppendEntriesRequest, *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	f.sent = append(f.sent, time.Now())
	return nil, nil
}
func (f *fakePipeline) Consumer() <-chan raft.AppendFuture { return nil }
func (f *fakePipeline) Close() error                       { return nil }

// TestPacedPipeline checks that pipelined sends to a busy nonvoter are at
// least Every apart, that a quiet one takes two at once, that a voter's are not held back, and that closing the
// pipeline lets a waiting send go.
func TestPacedPipeline(t *testing.T) {
	const every = 40 * time.Millisecond
	voter := raft.ServerID("voter")
	tr := &PacedTransport{Every: every, Paced: func(id raft.ServerID) bool { return id != voter }}
	send := func(id raft.ServerID, n int) []time.Time {
		f := &fakePipeline{}
		p := &pacedPipeline{AppendPipeline: f, id: id, t: tr, closed: make(chan struct{})}
		for i := range n {
			req := &raft.AppendEntriesRequest{Term: 1, Entries: []*raft.Log{{Index: uint64(i + 1), Term: 1}}}
			if _, err := p.AppendEntries(req, &raft.AppendEntriesResponse{}); err != nil {
				t.Fatal(err)
			}
		}
		return f.sent
	}
	sent := send("nonvoter", 5)
	// The first two go at once (a lone write and its commit notice),
	// the others each Every after the one before.
	if d := sent[1].Sub(sent[0]); d >= every/2 {
		t.Errorf("the second send to a quiet nonvoter waited %s", d)
	}
	for i := 2; i < len(sent); i++ {
		if d := sent[i].Sub(sent[i-1]); d < every-2*time.Millisecond {
			t.Errorf("sends %d and %d to a nonvoter %s apart, want at least %s", i-1, i, d, every)
		}
	}
	t0 := time.Now()
	send(voter, 20)
	if d := time.Since(t0); d >= every {
		t.Errorf("20 sends to a voter took %s: they were paced", d)
	}

	f := &fakePipeline{}
	p := &pacedPipeline{AppendPipeline: f, id: "nonvoter", t: &PacedTransport{Every: time.Hour, Paced: tr.Paced}, closed: make(chan struct{})}
	entry := func() *raft.AppendEntriesRequest {
		return &raft.AppendEntriesRequest{Term: 1, Entries: []*raft.Log{{Index: 1, Term: 1}}}
	}
	p.AppendEntries(entry(), &raft.AppendEntriesResponse{})
	p.AppendEntries(entry(), &raft.AppendEntriesResponse{})
	done := make(chan struct{})
	go func() {
		p.AppendEntries(entry(), &raft.AppendEntriesResponse{})
		close(done)
	}()
	time.Sleep(10 * time.Millisecond)
	p.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a send waiting for its turn did not go when the pipeline closed")
	}
}

// TestPacedPipelineSkipsEmptyRepeats checks that a send without entries
// that tells a nonvoter nothing new is not sent, that one with a new
// commit index or after entries is, and that a voter gets every one.
func TestPacedPipelineSkipsEmptyRepeats(t *testing.T) {
	tr := &PacedTransport{Every: time.Millisecond, Paced: func(id raft.ServerID) bool { return id != "voter" }}
	for _, tc := range []struct {
		id   raft.ServerID
		want int
	}{{"nonvoter", 4}, {"voter", 7}} {
		f := &fakePipeline{}
		p := &pacedPipeline{AppendPipeline: f, id: tc.id, t: tr, closed: make(chan struct{})}
		empty := func(commit uint64) *raft.AppendEntriesRequest {
			return &raft.AppendEntriesRequest{Term: 2, PrevLogEntry: 10, PrevLogTerm: 2, LeaderCommitIndex: commit}
		}
		for _, req := range []*raft.AppendEntriesRequest{
			empty(9), empty(9), // the second tells nothing new
			empty(10), empty(10), // a new commit index, then nothing new
			{Term: 2, PrevLogEntry: 10, PrevLogTerm: 2, LeaderCommitIndex: 10, Entries: []*raft.Log{{Index: 11, Term: 2}}},
			empty(10), // after entries: sent (its previous entry differs below)
			empty(10),
		} {
			if req.Entries != nil {
				req.PrevLogEntry = 10
			}
			if _, err := p.AppendEntries(req, &raft.AppendEntriesResponse{}); err != nil {
				t.Fatal(err)
			}
		}
		if len(f.sent) != tc.want {
			t.Errorf("%s: %d of 7 sends went out, want %d", tc.id, len(f.sent), tc.want)
		}
	}
}
