package membership

import (
	"context"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// How a node that is catching up follows a leader it knows only as a
// nonvoter. A voter that was down while the voters' upkeep demoted it and
// promoted a nonvoter comes back with a configuration that shows the
// promoted node, which may lead now, as a nonvoter; the entry that says
// otherwise is exactly what it cannot get from anyone but the leader. Yet
// any nonvoter's key must not be able to lead it: a node that accepted a
// nonvoter's AppendEntries with a higher term would take its forged
// entries, make the real leader step down with that term, win the next
// election with the highest last log term, and replicate the forgery to
// everyone.
//
// So the node asks the voters of its own configuration whom they follow
// (StatusProtocol's leader_id and term), and lets the nonvoter lead it
// only when a majority of those voters name it as the leader, and only up
// to the lowest term that majority reports. That majority is what elected
// the leader in the first place, as far as this node knows: whoever can
// fake it holds a majority of the voters' keys and owns the log anyway.
// A nonvoter that claims a higher term than the one vouched for is
// refused, as is one that makes the leader step down (a mesh without a
// leader vouches for nobody).
//
// The gate never waits for the question: it refuses the leader's RPC at
// once and asks runVouches for a vouch; raft retries a follower that
// fails (after a few milliseconds, backing off), and its retry passes once
// a majority has vouched. At most one round of questions runs every
// vouchEvery, so a nonvoter that floods leader RPCs costs each voter at
// most one status question a second.

// vouchedLeader is a leader that a majority of the voters of this node's
// configuration named, and the highest term it may lead this node in.
type vouchedLeader struct {
	peer peer.ID
	term uint64
}

// vouchEvery spaces the rounds of questions about a leader.
const vouchEvery = time.Second

// VouchedLeader reports whether p, which this node's configuration does
// not show as a voter, may lead it: for an RPC that claims to lead at term,
// whether a majority of the voters of this node's configuration named p
// as their leader at term or later; for term 0 (opening a Raft stream, or
// an RPC without a term), whether they named p at all. When not, it asks
// runVouches to find out whom they follow, and returns false at once: it
// is called from the Raft gate, which must not wait. The caller lets only
// a node that is catching up use it.
//
// The question is about whom the voters follow, not about p: a peer that
// keeps sending leader RPCs only triggers rounds that vouch for the real
// leader.
func (m *Manager) VouchedLeader(p peer.ID, term uint64) bool {
	if v := m.vouched.Load(); v != nil && v.peer == p && term <= v.term {
		return true
	}
	select {
	case m.vouchAsk <- struct{}{}:
	default: // a question is waiting already
	}
	return false
}

// runVouches answers VouchedLeader's requests until ctx ends: one round
// of questions at a time, at most one every vouchEvery. Run owns it.
func (m *Manager) runVouches(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.vouchAsk:
		}
		start := time.Now()
		if v, ok := m.askVouch(ctx); ok {
			if old := m.vouched.Swap(&v); old == nil || *old != v {
				m.log.Warn("following a leader this node's configuration does not show as a voter: a majority of its voters name it",
					"leader", v.peer.String(), "up_to_term", v.term)
			}
		}
		t := time.NewTimer(time.Until(start.Add(vouchEvery)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// askVouch asks the voters of this node's configuration whom they follow,
// at once, and returns the leader a majority of them name and the term it
// may lead in (vouchFrom).
func (m *Manager) askVouch(ctx context.Context) (vouchedLeader, bool) {
	servers, _, err := m.cfg.Catalog.Configuration()
	if err != nil {
		return vouchedLeader{}, false
	}
	var voters []string
	for _, s := range servers {
		if s.Voter {
			voters = append(voters, s.ID)
		}
	}
	if len(voters) == 0 {
		// A joiner without a configuration yet: the voters of its
		// ticket and join answer stand for it (a voter promoted since
		// the ticket was made may lead, if they say so).
		if v := m.joinVoters.Load(); v != nil {
			for p := range *v {
				voters = append(voters, p.String())
			}
			slices.Sort(voters)
		}
	}
	var ask []peer.ID
	for _, id := range voters {
		if v, err := peer.Decode(id); err == nil && id != m.cfg.Self.String() {
			ask = append(ask, v)
		}
	}
	answers := m.askStatus(ctx, ask)
	return vouchFrom(voters, answers)
}

// vouchFrom returns the leader that more than half of voters (this node
// counted, though it cannot vouch) name in their answers by peer ID, and
// the lowest term among those answers. A voter's answer naming itself
// counts: a leader that is a voter of this node's configuration needs no
// vouch, but the same majority rule holds. Answers of peers that are not
// among voters do not count.
func vouchFrom(voters []string, answers map[string]statusAnswer) (vouchedLeader, bool) {
	named := map[string][]uint64{}
	for _, v := range voters {
		if a, ok := answers[v]; ok && a.LeaderID != "" && a.Term > 0 {
			named[a.LeaderID] = append(named[a.LeaderID], a.Term)
		}
	}
	for leader, terms := range named {
		if len(terms) <= len(voters)/2 {
			continue
		}
		p, err := peer.Decode(leader)
		if err != nil {
			return vouchedLeader{}, false
		}
		return vouchedLeader{peer: p, term: slices.Min(terms)}, true
	}
	return vouchedLeader{}, false
}
