package membership

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh/catalog"
)

// Voter upkeep, on the leader: a voter that has been unreachable for
// longer than Config.DeadVoterAfter is replaced by a reachable nonvoter
// (promoted first, so the number of voters never drops below what it
// was), then removed from Raft. It is a small, local take on what
// hashicorp/raft-autopilot does, enough for meshes of a few hundred
// nodes with 3 or 5 voters.

// DefaultDeadVoterAfter is how long a voter may be unreachable before it
// is replaced.
const DefaultDeadVoterAfter = 30 * time.Second

// upkeep tracks when each server was last reachable, as seen by this
// node while it leads.
type upkeep struct {
	lastSeen map[string]time.Time
	// warned is when a stranded voter was last warned about: the warning
	// repeats at most every strandedWarnEvery, not at every round.
	warned map[string]time.Time
}

// strandedWarnEvery is how often the warning about one stranded voter
// repeats.
const strandedWarnEvery = 10 * time.Minute

// warnStranded reports whether to warn, at now, about the stranded voter
// id, and records that it did.
func (u *upkeep) warnStranded(id string, now time.Time) bool {
	if u.warned == nil {
		u.warned = make(map[string]time.Time)
	}
	if last, ok := u.warned[id]; ok && now.Sub(last) < strandedWarnEvery {
		return false
	}
	u.warned[id] = now
	return true
}

// swap replaces the voter dead with the nonvoter promote.
type swap struct {
	dead, promote string
}

// plan records who is reachable at now and returns the swaps to make: the
// voters unreachable for longer than deadAfter (in the order of servers),
// each with a reachable nonvoter to promote in its place. stranded is the
// first dead voter left without a nonvoter ("" if none); it and any after
// it wait for a later round. A server first seen unreachable counts as
// seen now: its time starts when this node starts leading.
func (u *upkeep) plan(servers []catalog.Server, reachable func(id string) bool, now time.Time, deadAfter time.Duration) (swaps []swap, stranded string) {
	if u.lastSeen == nil {
		u.lastSeen = make(map[string]time.Time)
	}
	var dead, spare []string
	for _, s := range servers {
		if reachable(s.ID) {
			u.lastSeen[s.ID] = now
			if !s.Voter {
				spare = append(spare, s.ID)
			}
			continue
		}
		seen, ok := u.lastSeen[s.ID]
		if !ok {
			u.lastSeen[s.ID] = now // first look since this node leads
			continue
		}
		if s.Voter && now.Sub(seen) > deadAfter {
			dead = append(dead, s.ID)
		}
	}
	for i, d := range dead {
		if i == len(spare) {
			return swaps, d
		}
		swaps = append(swaps, swap{dead: d, promote: spare[i]})
	}
	return swaps, ""
}

// tendVoters replaces voters that have been gone too long. Called now and
// then from Run.
func (m *Manager) tendVoters(ctx context.Context, u *upkeep) {
	cat := m.cfg.Catalog
	if !cat.IsLeader() {
		u.lastSeen, u.warned = nil, nil
		return
	}
	servers, err := cat.Servers()
	if err != nil {
		return
	}
	swaps, stranded := u.plan(servers, m.reachable, time.Now(), m.cfg.DeadVoterAfter)
	for _, s := range swaps {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := cat.AddServer(cctx, s.promote, true); err != nil {
			cancel()
			m.log.Warn("promoting a nonvoter", "peer", s.promote, "err", err)
			return
		}
		if err := cat.RemoveServer(cctx, s.dead); err != nil {
			m.log.Warn("removing a dead voter", "peer", s.dead, "err", err)
		}
		cancel()
		delete(u.lastSeen, s.dead)
		m.log.Info("replaced an unreachable voter", "dead", s.dead, "promoted", s.promote)
	}
	if stranded != "" && u.warnStranded(stranded, time.Now()) {
		m.log.Warn("a voter is unreachable and no nonvoter can take its place (repeated every 10 minutes while it lasts)", "peer", stranded)
	}
}

// reachable reports whether this node is connected to the server id (or
// is it).
func (m *Manager) reachable(id string) bool {
	if id == m.cfg.Self.String() {
		return true
	}
	p, err := peer.Decode(id)
	return err == nil && m.cfg.Host.Network().Connectedness(p) == network.Connected
}
