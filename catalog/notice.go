package catalog

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// A follower learns that an entry is committed from the next
// AppendEntries the leader sends it: the one that carries a later entry,
// or the one raft sends when no entry has come for CommitTimeout. Each
// such send costs the leader and the follower a round trip, and an idle
// leader makes it to every member, voter or not, every CommitTimeout
// (hashicorp/raft's replication loop): at 5 ms that was about 130 round
// trips a second per member, over a third of a core on the leader of a
// 30-node mesh doing nothing. At raft's and Consul's default, 50 ms, the
// leader's replication loops still woke 20 times a second for each
// member (580 wake-ups a second on 30 nodes, most of the leader's idle
// CPU with the scheduling they cost); CommitTimeout is now 250 ms (raft
// waits between it and twice it). It only bounds how late a member
// learns the commit of the last write of a burst that it did not forward
// (nor took a read index after, see ReadIndexFor): a reader on another
// node sees that write up to 250-500 ms after the leader, where it saw it
// 50-100 ms after.
//
// A member that forwarded a write waits until it has applied the entry
// (read-your-writes), and so does a member that asked the leader for a
// read index (a consistent read): each would wait up to twice
// CommitTimeout for it.
// So the leader sends it at once: once a forwarded write is committed and
// no later entry follows within noticeGrace (a later entry carries the
// commit index, as under a steady load), it appends a no-op command,
// whose AppendEntries tells every member. At most one notice is pending at
// a time, and it covers every forwarded write committed before it.

// commitTimeout is raft's CommitTimeout for the catalog.
const commitTimeout = 250 * time.Millisecond

// noticeGrace is how long the leader waits for a later entry to carry the
// commit index of a forwarded write before it appends a no-op to carry it.
const noticeGrace = 2 * time.Millisecond

// notices is the leader's pending commit notice.
type notices struct {
	mu      sync.Mutex
	pending bool   // a notice waits out its grace
	mark    uint64 // the log's last index when the newest write it covers was committed
	sent    atomic.Uint64
}

// noticeCommit makes sure that the members learn soon that the entries up
// to the forwarded write that this leader has just committed are
// committed: an entry appended from now on is sent with that commit
// index, so a notice is needed only if none comes within noticeGrace.
func (c *Catalog) noticeCommit() {
	n := &c.notices
	mark := c.raft.LastIndex()
	n.mu.Lock()
	n.mark = max(n.mark, mark)
	if n.pending {
		n.mu.Unlock()
		return
	}
	n.pending = true
	n.mu.Unlock()
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return
	}
	c.waiters.Add(1)
	c.mu.RUnlock()
	go func() {
		defer c.waiters.Done()
		t := time.NewTimer(noticeGrace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.shutdownCh:
			return
		}
		// The writes committed from here on wait for the next notice.
		n.mu.Lock()
		mark := n.mark
		n.pending = false
		n.mu.Unlock()
		if c.raft.LastIndex() > mark || !c.IsLeader() {
			return // a later entry carried the commit index
		}
		data, err := encodeCommand(noopCmd{})
		if err != nil {
			return
		}
		n.sent.Add(1)
		_ = c.raft.Apply(data, c.cfg.ApplyTimeout).Error()
	}()
}

// ReadIndexFor is ReadIndex for a member that will wait until it has
// applied the index (a consistent read there): the member hears of the
// commit at once, as for a forwarded write, unless it has already.
func (c *Catalog) ReadIndexFor(ctx context.Context, member string) (uint64, error) {
	idx, err := c.ReadIndex(ctx)
	if err != nil {
		return 0, err
	}
	if c.cfg.Expedite == nil || c.cfg.Expedite(member, idx) {
		c.noticeCommit()
	}
	return idx, nil
}

// CommitNotices returns how many no-op entries this node appended, as
// leader, to tell the members of commits sooner (see noticeCommit).
func (c *Catalog) CommitNotices() uint64 { return c.notices.sent.Load() }
