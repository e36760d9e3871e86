package mesh

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// PacedTransport is the catalog's Raft transport with the leader's log
// replication to servers without a vote paced: each gets one pipelined
// AppendEntries per Every on average (two at once after a quiet spell),
// carrying whatever entries came meanwhile, and a heartbeat at most every
// BeatEvery. A voter's sends are never held back (the commit and the
// leader's elections wait on them), nor are snapshots or votes.
//
// hashicorp/raft sends every new entry to every server as soon as it is
// appended, and a nonvoter costs the leader as much per entry as a voter
// (an encoding, a write, a response to decode) and costs itself a log
// append and a state commit per batch received. In a mesh of a few voters
// and many nonvoters under a steady write load, nonvoters are most of
// that work but none of the commit. Paced, a nonvoter takes the entries of
// a busy Every in one batch, and learns of a commit at most Every later
// than a voter does. A member that forwarded a write waits until it has
// applied it, so the leader expedites that member (Expedite) until a send
// has told it the write's commit.
type PacedTransport struct {
	*raft.NetworkTransport
	// Every is the shortest time between two pipelined sends to one
	// nonvoter; zero or less paces nothing.
	Every time.Duration
	// Paced reports whether the server id is to be paced: a server of
	// this node's Raft configuration without a vote.
	Paced func(id raft.ServerID) bool

	// BeatEvery is the shortest time between two heartbeats to one
	// nonvoter; zero or less leaves raft's (one every 100 to 200 ms).
	BeatEvery time.Duration

	mu        sync.Mutex
	pipes     map[raft.ServerID]*pacedPipeline // the open paced pipelines
	beats     map[raft.ServerID]time.Time      // when a nonvoter's last heartbeat went
	closeOnce sync.Once
	closed    chan struct{} // made by Close, or at first use
}

// AppendEntries sends args to the server id; a heartbeat to a nonvoter
// first waits until BeatEvery has passed since the one before.
//
// raft heartbeats every server every 100 to 200 ms (HeartbeatTimeout/10)
// from a goroutine of its own. A voter needs that: it starts an election
// when it hears nothing for a HeartbeatTimeout. A nonvoter never does; it
// only forgets its leader after a HeartbeatTimeout of silence, and a few
// heartbeats in that time keep it. On a 30-node mesh with 3 voters those
// heartbeats are most of what the idle mesh does. A held heartbeat is
// delayed, never answered for the server: every response the leader sees
// is real. (raft v1.8.0 counts a nonvoter's answer in VerifyLeader like a
// voter's; holding nonvoters' heartbeats back only makes their answers
// come later, it adds none.)
func (t *PacedTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if t.BeatEvery > 0 && isHeartbeat(args) && t.Paced != nil && t.Paced(id) {
		if wait := t.beatWait(id, time.Now()); wait > 0 {
			tm := time.NewTimer(wait)
			select {
			case <-tm.C:
			case <-t.closing():
				tm.Stop()
			}
		}
		t.mu.Lock()
		if t.beats == nil {
			t.beats = make(map[raft.ServerID]time.Time)
		}
		t.beats[id] = time.Now()
		t.mu.Unlock()
	}
	return t.NetworkTransport.AppendEntries(id, target, args, resp)
}

// isHeartbeat reports whether args is one of raft's heartbeats: it
// carries no entries and neither a previous entry nor a commit index.
func isHeartbeat(args *raft.AppendEntriesRequest) bool {
	return len(args.Entries) == 0 && args.PrevLogEntry == 0 && args.LeaderCommitIndex == 0
}

// beatWait is how long a heartbeat to id waits for its turn.
func (t *PacedTransport) beatWait(id raft.ServerID, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	last, ok := t.beats[id]
	if !ok {
		return 0
	}
	return last.Add(t.BeatEvery).Sub(now)
}

// closing is closed when the transport closes.
func (t *PacedTransport) closing() chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed == nil {
		t.closed = make(chan struct{})
	}
	return t.closed
}

// Close closes the transport; a heartbeat waiting for its turn goes at
// once (and fails).
func (t *PacedTransport) Close() error {
	c := t.closing()
	t.closeOnce.Do(func() { close(c) })
	return t.NetworkTransport.Close()
}

// Expedite makes the sends to the server id go at once, ahead of their
// pacing, until one has told it that the log is committed up to commit (a
// send waiting for its turn goes now: raft builds the next only after
// it). The leader calls it once a write that the server forwarded, and
// waits on until it has applied it (read-your-writes), is committed: the
// send that tells the commit also carries the entry if it has not gone
// yet. The server's other sends stay paced. It reports whether the
// server has yet to hear of that commit (true when it cannot tell): then
// a send must still be made, which raft makes for a new entry or after
// its CommitTimeout.
func (t *PacedTransport) Expedite(id raft.ServerID, commit uint64) bool {
	t.mu.Lock()
	p := t.pipes[id]
	t.mu.Unlock()
	if p == nil {
		return true
	}
	if p.sentCommit.Load() >= commit {
		return false
	}
	for {
		w := p.wantCommit.Load()
		if w >= commit || p.wantCommit.CompareAndSwap(w, commit) {
			break
		}
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return true
}

// urgent reports whether the server waits for a commit that no send has
// told it yet (see Expedite).
func (p *pacedPipeline) urgent() bool { return p.sentCommit.Load() < p.wantCommit.Load() }

// track records p as the open pipeline to its server (nil: forget it).
func (t *PacedTransport) track(id raft.ServerID, p, old *pacedPipeline) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p == nil {
		if t.pipes[id] == old {
			delete(t.pipes, id)
		}
		return
	}
	if t.pipes == nil {
		t.pipes = make(map[raft.ServerID]*pacedPipeline)
	}
	t.pipes[id] = p
}

var (
	_ raft.Transport   = (*PacedTransport)(nil)
	_ raft.WithClose   = (*PacedTransport)(nil)
	_ raft.WithPreVote = (*PacedTransport)(nil)
)

// AppendEntriesPipeline returns the transport's pipeline to the server id,
// paced when it has no vote (every pipeline is wrapped, so that Expedite
// knows what each server was told).
func (t *PacedTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil || t.Every <= 0 || t.Paced == nil {
		return p, err
	}
	pp := newPacedPipeline(p, id, t)
	t.track(id, pp, nil)
	return pp, nil
}

// newPacedPipeline paces the sends of p to the server id.
func newPacedPipeline(p raft.AppendPipeline, id raft.ServerID, t *PacedTransport) *pacedPipeline {
	return &pacedPipeline{AppendPipeline: p, id: id, t: t, closed: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// pacedPipeline paces AppendEntries on one pipeline; raft sends on a
// pipeline from one goroutine.
type pacedPipeline struct {
	raft.AppendPipeline
	id     raft.ServerID
	t      *PacedTransport
	tokens float64   // sends allowed now, up to paceBurst
	last   time.Time // when tokens was last counted
	sent   sentState // what the last send told the server
	once   sync.Once
	closed chan struct{}
	kick   chan struct{} // Expedite: a waiting send goes at once

	wantCommit atomic.Uint64 // the commit index the server waits to hear of (Expedite)
	sentCommit atomic.Uint64 // the highest commit index sent (written by raft's sending goroutine)
}

// paceBurst is how many sends may follow each other at once after a
// quiet spell: a lone write's entry and the commit notice that follows it
// (see package catalog) both go out without waiting.
const paceBurst = 2

// sentState is what an AppendEntries without entries tells its server:
// the leader's term, its last entry, and its commit index.
type sentState struct {
	term, prevIndex, prevTerm, commit uint64
	ok                                bool // a send without entries went out
}

// AppendEntries sends args as soon as the server's share allows: one send
// per Every on average, paceBurst at once after a quiet spell. To a paced
// server, a send without entries that would tell it nothing the last
// send did not (raft sends one every CommitTimeout while the log is
// quiet) is not sent at all: raft's heartbeats, which go their own way,
// keep the server following, and a nonvoter's replies count for nothing
// raft waits on (the commit and the leader's lease count voters).
func (p *pacedPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	st := sentState{args.Term, args.PrevLogEntry, args.PrevLogTerm, args.LeaderCommitIndex, true}
	if len(args.Entries) == 0 && st == p.sent && p.t.Paced(p.id) {
		return nil, nil // raft does not look at a pipelined send's future
	}
	now := time.Now()
	if p.last.IsZero() {
		p.tokens = paceBurst
	} else {
		p.tokens = min(paceBurst, p.tokens+float64(now.Sub(p.last))/float64(p.t.Every))
	}
	p.last = now
	if p.tokens < 1 && !p.urgent() && p.t.Paced(p.id) {
		wait := time.Duration((1 - p.tokens) * float64(p.t.Every))
		tm := time.NewTimer(wait)
	waiting:
		for {
			select {
			case <-tm.C:
				break waiting
			case <-p.kick:
				if p.urgent() {
					tm.Stop()
					break waiting
				}
			case <-p.closed:
				tm.Stop()
				break waiting
			}
		}
		p.last = time.Now()
		p.tokens = 1
	}
	p.tokens = max(0, p.tokens-1)
	f, err := p.AppendPipeline.AppendEntries(args, resp)
	if err == nil && args.LeaderCommitIndex > p.sentCommit.Load() {
		p.sentCommit.Store(args.LeaderCommitIndex)
	}
	if err == nil && len(args.Entries) == 0 {
		p.sent = st
	} else {
		p.sent = sentState{} // the next send without entries goes
	}
	return f, err
}

// Close closes the pipeline; a send waiting for its turn goes at once.
func (p *pacedPipeline) Close() error {
	p.once.Do(func() {
		close(p.closed)
		p.t.track(p.id, nil, p)
	})
	return p.AppendPipeline.Close()
}
