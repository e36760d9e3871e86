package mesh

import (
	"io"
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
		p := newPacedPipeline(f, id, tr)
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
	p := newPacedPipeline(f, "nonvoter", &PacedTransport{Every: time.Hour, Paced: tr.Paced})
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
		p := newPacedPipeline(f, tc.id, tr)
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

// TestExpedite checks that after Expedite(commit) a nonvoter's sends go
// at once, the one waiting for its turn included, until one has carried
// that commit index; that the sends after it wait for their turn again;
// and that it lifts the pacing of no other server.
func TestExpedite(t *testing.T) {
	tr := &PacedTransport{Every: time.Hour, Paced: func(raft.ServerID) bool { return true }}
	f := &fakePipeline{}
	p := newPacedPipeline(f, "writer", tr)
	tr.track("writer", p, nil)
	entry := func(commit uint64) *raft.AppendEntriesRequest {
		return &raft.AppendEntriesRequest{Term: 1, LeaderCommitIndex: commit, Entries: []*raft.Log{{Index: commit + 1, Term: 1}}}
	}
	p.AppendEntries(entry(1), &raft.AppendEntriesResponse{})
	p.AppendEntries(entry(2), &raft.AppendEntriesResponse{}) // the burst is spent
	send := func(commit uint64) chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.AppendEntries(entry(commit), &raft.AppendEntriesResponse{})
		}()
		return done
	}
	goes := func(done chan struct{}, want bool, what string) {
		t.Helper()
		wait := 50 * time.Millisecond
		if want {
			wait = 5 * time.Second
		}
		select {
		case <-done:
			if !want {
				t.Fatal(what + ": the send went")
			}
		case <-time.After(wait):
			if want {
				t.Fatal(what + ": the send still waits for its turn")
			}
		}
	}
	done := send(3)
	if !tr.Expedite("other", 10) {
		t.Error("Expedite of a server without a pipeline says it was told")
	}
	goes(done, false, "another server expedited")
	if !tr.Expedite("writer", 10) {
		t.Error("Expedite says the server was told commit 10 before any send carried it")
	}
	goes(done, true, "expedited while waiting (commit 3 of 10)")
	goes(send(8), true, "commit 8 of 10")
	goes(send(10), true, "commit 10 of 10")
	done = send(11)
	goes(done, false, "after the commit went")
	if tr.Expedite("writer", 9) {
		t.Error("Expedite says the server has yet to hear of commit 9, after a send carried 10")
	}
	goes(done, false, "expedited for a commit already sent")
	p.Close()
	goes(done, true, "the pipeline closed")
	if len(f.sent) != 6 {
		t.Errorf("%d sends went, want 6", len(f.sent))
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if _, ok := tr.pipes["writer"]; ok {
		t.Error("a closed pipeline is still tracked")
	}
}

// TestHeartbeatsToNonvoterSpaced checks, over a real raft TCP transport,
// that heartbeats to a nonvoter go at most one per BeatEvery, that a
// voter's and a nonvoter's AppendEntries with entries are not held, and
// that closing the transport lets a waiting heartbeat go.
func TestHeartbeatsToNonvoterSpaced(t *testing.T) {
	const every = 300 * time.Millisecond
	recv, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case rpc := <-recv.Consumer():
				rpc.Respond(&raft.AppendEntriesResponse{Term: 1, Success: true}, nil)
			case <-done:
				return
			}
		}
	}()
	send, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	tr := &PacedTransport{NetworkTransport: send, BeatEvery: every, Paced: func(id raft.ServerID) bool { return id != "voter" }}
	to := recv.LocalAddr()
	beat := func() *raft.AppendEntriesRequest { return &raft.AppendEntriesRequest{Term: 1} }
	sendN := func(id raft.ServerID, n int, req func() *raft.AppendEntriesRequest) time.Duration {
		t.Helper()
		t0 := time.Now()
		for range n {
			if err := tr.AppendEntries(id, to, req(), &raft.AppendEntriesResponse{}); err != nil {
				t.Fatal(err)
			}
		}
		return time.Since(t0)
	}
	if d := sendN("nonvoter", 4, beat); d < 3*every {
		t.Errorf("4 heartbeats to a nonvoter took %s, want at least %s", d, 3*every)
	}
	if d := sendN("voter", 10, beat); d >= 3*every {
		t.Errorf("10 heartbeats to a voter took %s: they were held", d)
	}
	entries := func() *raft.AppendEntriesRequest {
		return &raft.AppendEntriesRequest{Term: 1, PrevLogEntry: 1, PrevLogTerm: 1, LeaderCommitIndex: 1, Entries: []*raft.Log{{Index: 2, Term: 1}}}
	}
	if d := sendN("nonvoter", 5, entries); d >= 3*every {
		t.Errorf("5 AppendEntries with entries to a nonvoter took %s: they were held", d)
	}

	tr.BeatEvery = time.Hour
	sendN("another nonvoter", 1, beat) // its first goes at once
	waiting := make(chan error, 1)
	go func() { waiting <- tr.AppendEntries("another nonvoter", to, beat(), &raft.AppendEntriesResponse{}) }()
	tr.Close()
	select {
	case <-waiting:
	case <-time.After(5 * time.Second):
		t.Fatal("a heartbeat waiting for its turn did not end when the transport closed")
	}
}
