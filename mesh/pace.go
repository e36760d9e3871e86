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
// carrying whatever entries came meanwhile. A voter's are never paced (the commit waits on them), nor
// heartbeats, snapshots or votes.
//
// hashicorp/raft sends every new entry to every server as soon as it is
// appended, and a nonvoter costs the leader as much per entry as a voter
// (an encoding, a write, a response to decode) and costs itself a log
// append and a state commit per batch received. In a mesh of a few voters
// and many nonvoters under a steady write load, nonvoters are most of
// that work but none of the commit. Paced, a nonvoter takes the entries of
// a busy Every in one batch, and learns of a commit at most Every later
// than a voter does (read-your-writes on a nonvoter waits for it; the
// leader's commit notice, see package catalog, goes out at the next
// paced send). Heartbeats to a nonvoter are spaced too (BeatEvery).
// A member that forwarded a write waits for it, so the
// leader expedites it (Expedite): its entry and commit go unpaced.
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
// is real (raft counts a nonvoter's in VerifyLeader, which the voters'
// answers decide anyway).
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

// maxBonus is how many sends Expedite can let go at once ahead of their
// turn: a forwarded write's entry, and the commit that follows it.
const maxBonus = 2

// Expedite lets the next send to the server id go at once, ahead of its
// pacing (a send waiting for its turn goes now). The leader calls it
// twice for a write the server forwarded and waits on (read-your-writes):
// before proposing it, so that its entry goes out, and once it is
// committed, so that the send that carries the commit does. A writer's
// client then waits about as long as a voter's, while the server's other
// sends stay paced: unpacing it for a while instead made every member
// with a client a member without pacing under a steady load.
func (t *PacedTransport) Expedite(id raft.ServerID) {
	t.mu.Lock()
	p := t.pipes[id]
	t.mu.Unlock()
	if p == nil {
		return
	}
	for {
		b := p.bonus.Load()
		if b >= maxBonus || p.bonus.CompareAndSwap(b, b+1) {
			break
		}
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// takeBonus uses one of the sends Expedite allowed, if there is one.
func (p *pacedPipeline) takeBonus() bool {
	for {
		b := p.bonus.Load()
		if b <= 0 {
			return false
		}
		if p.bonus.CompareAndSwap(b, b-1) {
			return true
		}
	}
}

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
// paced when it has no vote.
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
	bonus  atomic.Int32  // sends Expedite lets go ahead of their turn
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
	if p.tokens < 1 && !p.takeBonus() && p.t.Paced(p.id) {
		wait := time.Duration((1 - p.tokens) * float64(p.t.Every))
		tm := time.NewTimer(wait)
	waiting:
		for {
			select {
			case <-tm.C:
				break waiting
			case <-p.kick:
				if p.takeBonus() {
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
