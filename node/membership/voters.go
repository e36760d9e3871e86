package membership

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh/catalog"
)

// Voter upkeep, on the leader, every round of Run:
//
//   - A voter unreachable for longer than Config.DeadVoterAfter is
//     demoted to nonvoter, and a nonvoter that has been reachable for a
//     while (promoteStable) is promoted in its place first, so the number
//     of voters never drops. Without such a nonvoter the voter keeps its
//     vote (and a warning repeats every strandedWarnEvery).
//   - While the mesh has fewer voters than Config.Voters (after a removal,
//     an outage recovery, or a swap that found no nonvoter), a nonvoter
//     that has been reachable for a while is promoted. A demoted member
//     that comes back is such a nonvoter: it gets a vote back only when
//     one is missing, otherwise it stays the spare for the next swap.
//   - A member unreachable for longer than Config.DeadMemberAfter (72 h by
//     default, as Consul reaps failed servers) is removed from Raft and
//     from the members, as `artmesh mesh remove` does. Nothing shorter
//     ever removes a member.
//
// The clocks are this leader's: a server first seen unreachable counts as
// seen at that moment, so a new leader starts every count anew (it errs
// on the side of keeping members). It is a small, local take on what
// hashicorp/raft-autopilot does, enough for meshes of a few hundred nodes
// with 3 or 5 voters.

// DefaultDeadVoterAfter is how long a voter may be unreachable before it
// is demoted and a nonvoter takes its vote.
const DefaultDeadVoterAfter = 30 * time.Second

// DefaultDeadMemberAfter is how long a member may be unreachable before
// the leader removes it from the mesh.
const DefaultDeadMemberAfter = 72 * time.Hour

// promoteStable is how long a nonvoter must have been reachable without a
// break before it is given a vote (at most DeadVoterAfter): a node that
// has just come back is still catching up.
const promoteStable = 10 * time.Second

// upkeep tracks when each server was last reachable, and since when it is
// reachable, as seen by this node while it leads.
type upkeep struct {
	lastSeen map[string]time.Time
	upSince  map[string]time.Time
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

// swap demotes the voter dead and promotes the nonvoter promote first.
type swap struct {
	dead, promote string
}

// timing is what the upkeep's plan depends on besides the servers.
type timing struct {
	deadVoter  time.Duration // a voter unreachable longer is demoted
	deadMember time.Duration // a member unreachable longer is removed
	stable     time.Duration // a nonvoter reachable this long may be promoted
	voters     int           // how many voters the mesh should have
}

// upkeepPlan is what one round of the upkeep does, in this order.
type upkeepPlan struct {
	swaps []swap
	// promote are nonvoters to give a vote, the mesh having too few.
	promote []string
	// remove are servers unreachable for longer than deadMember.
	remove []string
	// stranded is the first voter to demote left without a nonvoter
	// ("" if none); it and any after it wait for a later round.
	stranded string
}

// plan records who is reachable at now and returns what to do: the swaps
// of voters unreachable for longer than deadVoter (in the order of
// servers) with reachable, stable nonvoters, the promotions that bring
// the voters up to their number, and the removals of servers unreachable
// for longer than deadMember. A server first seen unreachable counts as
// seen now: its time starts when this node starts leading.
func (u *upkeep) plan(servers []catalog.Server, reachable func(id string) bool, now time.Time, t timing) upkeepPlan {
	if u.lastSeen == nil {
		u.lastSeen = make(map[string]time.Time)
		u.upSince = make(map[string]time.Time)
	}
	var p upkeepPlan
	var dead, spare []string
	voters := 0
	for _, s := range servers {
		if s.Voter {
			voters++
		}
		if reachable(s.ID) {
			u.lastSeen[s.ID] = now
			since, ok := u.upSince[s.ID]
			if !ok {
				u.upSince[s.ID], since = now, now
			}
			if !s.Voter && now.Sub(since) >= t.stable {
				spare = append(spare, s.ID)
			}
			continue
		}
		delete(u.upSince, s.ID)
		seen, ok := u.lastSeen[s.ID]
		if !ok {
			u.lastSeen[s.ID] = now // first look since this node leads
			continue
		}
		if now.Sub(seen) > t.deadMember {
			p.remove = append(p.remove, s.ID)
		}
		if s.Voter && now.Sub(seen) > t.deadVoter {
			dead = append(dead, s.ID)
		}
	}
	for i, d := range dead {
		if i == len(spare) {
			p.stranded = d
			break
		}
		p.swaps = append(p.swaps, swap{dead: d, promote: spare[i]})
	}
	spare = spare[len(p.swaps):]
	for ; voters < t.voters && len(spare) > 0; voters++ {
		p.promote = append(p.promote, spare[0])
		spare = spare[1:]
	}
	return p
}

// timing returns the upkeep's timing from the configuration.
func (m *Manager) timing() timing {
	return timing{
		deadVoter:  m.cfg.DeadVoterAfter,
		deadMember: m.cfg.DeadMemberAfter,
		stable:     min(promoteStable, m.cfg.DeadVoterAfter),
		voters:     m.cfg.Voters,
	}
}

// tendVoters demotes voters that have been gone too long, promotes
// nonvoters where votes are missing and removes members gone for longer
// than DeadMemberAfter. Called now and then from Run.
func (m *Manager) tendVoters(ctx context.Context, u *upkeep) {
	cat := m.cfg.Catalog
	if !cat.IsLeader() {
		u.lastSeen, u.upSince, u.warned = nil, nil, nil
		return
	}
	servers, err := cat.Servers()
	if err != nil {
		return
	}
	now := time.Now()
	p := u.plan(servers, m.reachable, now, m.timing())
	for _, s := range p.swaps {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := cat.AddServer(cctx, s.promote, true); err != nil {
			cancel()
			m.log.Warn("promoting a nonvoter in place of an unreachable voter", "peer", s.promote, "err", err)
			return
		}
		err := cat.DemoteServer(cctx, s.dead)
		cancel()
		if err != nil {
			m.log.Warn("demoting an unreachable voter", "peer", s.dead, "err", err)
			continue
		}
		m.log.Warn("demoted an unreachable voter to nonvoter; a reachable nonvoter took its vote (the demoted member stays a member, and catches up when it is back)",
			"demoted", s.dead, "promoted", s.promote, "unreachable_for", now.Sub(u.lastSeen[s.dead]).Round(time.Second).String())
	}
	for _, id := range p.promote {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := cat.AddServer(cctx, id, true)
		cancel()
		if err != nil {
			m.log.Warn("promoting a nonvoter", "peer", id, "err", err)
			return
		}
		m.log.Info("promoted a nonvoter: the mesh had fewer voters than it should", "peer", id, "voters", m.cfg.Voters)
	}
	for _, id := range p.remove {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := m.removeHere(cctx, id)
		cancel()
		if err != nil {
			m.log.Warn("removing a member unreachable for longer than --dead-member-after", "peer", id, "err", err)
			continue
		}
		m.log.Warn("removed a member unreachable for longer than --dead-member-after", "peer", id,
			"unreachable_for", now.Sub(u.lastSeen[id]).Round(time.Second).String(), "dead_member_after", m.cfg.DeadMemberAfter.String())
		delete(u.lastSeen, id)
	}
	if p.stranded != "" && u.warnStranded(p.stranded, now) {
		m.log.Warn("a voter is unreachable and no nonvoter can take its vote (repeated every 10 minutes while it lasts)", "peer", p.stranded)
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
