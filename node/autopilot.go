package node

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
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

// upkeep tracks when each voter was last reachable.
type upkeep struct {
	lastSeen map[string]time.Time
}

// tendVoters replaces voters that have been gone too long. Called now and
// then from meshLoop.
func (n *Node) tendVoters(ctx context.Context, u *upkeep) {
	if !n.cat.IsLeader() {
		u.lastSeen = nil
		return
	}
	if u.lastSeen == nil {
		u.lastSeen = make(map[string]time.Time)
	}
	servers, err := n.cat.Servers()
	if err != nil {
		return
	}
	now := time.Now()
	self := n.peerID.String()
	reachable := func(id string) bool {
		if id == self {
			return true
		}
		p, err := peer.Decode(id)
		return err == nil && n.host.Network().Connectedness(p) == network.Connected
	}
	var dead []string
	var spare []string
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
		if s.Voter && now.Sub(seen) > n.cfg.DeadVoterAfter {
			dead = append(dead, s.ID)
		}
	}
	for _, d := range dead {
		if len(spare) == 0 {
			n.log.Warn("a voter is unreachable and no nonvoter can take its place", "peer", d)
			return
		}
		promote := spare[0]
		spare = spare[1:]
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := n.cat.AddServer(cctx, promote, true); err != nil {
			cancel()
			n.log.Warn("promoting a nonvoter", "peer", promote, "err", err)
			return
		}
		if err := n.cat.RemoveServer(cctx, d); err != nil {
			n.log.Warn("removing a dead voter", "peer", d, "err", err)
		}
		cancel()
		delete(u.lastSeen, d)
		n.log.Info("replaced an unreachable voter", "dead", d, "promoted", promote)
	}
}
