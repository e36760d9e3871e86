package membership

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/repo"
)

// How a removed node finds out. A member taken out of the mesh (by
// `artmesh mesh remove`, `mesh leave`, the leader's reaping after
// DeadMemberAfter, or an outage recovery on another node) is cut off by
// every other member at once, so it cannot read the catalog's later
// entries. It learns it two ways:
//
//   - Its own Raft configuration no longer lists it, where an earlier
//     one (a lower log index) seen in this run did: the leader sends the
//     removal to the server it removes when it can. (A configuration
//     without it alone proves nothing: a node that catches up from the
//     start of the log goes through the configurations from before it
//     joined.)
//   - While it has not caught up or has no leader, it asks the members it
//     knows over StatusProtocol, which a peer that is not a member may
//     open, whether they list it: every voter of the latest configuration
//     that listed it (seen in this run), and a few others. It believes it
//     was removed only when a majority of those voters each answer that a
//     committed configuration newer than that one (a higher log index, at
//     most their commit index) no longer lists it: configurations of one
//     mesh are ordered by index, so a newer one without this node means
//     it was taken out since. One answer is never enough, the leader's
//     included: any member's key can claim to lead or to know a newer
//     configuration, and a removal is for good. Faking the majority takes
//     the keys of a majority of those voters, which own the mesh's log
//     anyway. The answers of peers that were not voters there do not
//     count. One voter of that configuration that now leads as the only
//     voter of its own, without this node, is believed alone: that is an
//     outage recovery (whose configuration Raft numbers 1, so no index
//     says "newer") or the one left of two voters, and its key could
//     lead this node and write anything anyway.
//
// A removed node records it in its repo config, logs it at error, stops
// its Raft (it no longer campaigns) and says so on every API call. It
// joins again only with a new repo and an invite.

// StatusProtocol asks a member whether it lists the asker in its catalog.
// Peers that are not members may open it: a removed node is one.
const StatusProtocol protocol.ID = "/artmesh/member-status/1.0.0"

// statusAnswer is a member's view of the peer that asked.
type statusAnswer struct {
	// Listed reports whether the asker is in the answerer's latest Raft
	// configuration.
	Listed bool `json:"listed"`
	// Member reports whether the answerer's catalog lists the asker as a
	// member.
	Member bool `json:"member"`
	// ConfigIndex is the log index of the answerer's latest Raft
	// configuration (0: none).
	ConfigIndex uint64 `json:"config_index"`
	// CommitIndex is the highest index the answerer knows committed: a
	// configuration above it may still be dropped by a new leader, and
	// says nothing yet.
	CommitIndex uint64 `json:"commit_index"`
	// Leader reports whether the answerer leads the catalog.
	Leader bool `json:"leader"`
	// SoleVoter reports that the answerer leads as the only voter of its
	// configuration: after an outage recovery (recover-catalog
	// --sole-voter, whose configuration index Raft sets to 1), or in a
	// mesh that had two voters.
	SoleVoter bool `json:"sole_voter,omitempty"`
	// LeaderID is the leader the answerer follows or is ("" when it
	// knows none), and Term its current Raft term: what a node catching
	// up asks a majority of its voters before it follows a leader that
	// it knows only as a nonvoter (VouchedLeader).
	LeaderID string `json:"leader_id,omitempty"`
	Term     uint64 `json:"term,omitempty"`
}

// ServeStatus answers StatusProtocol: what this node's catalog says of
// the peer that asks (never of anyone else), and whom it follows. Neither
// the leader's ID nor the term is a secret from a peer that is not a
// member: every joiner is told all the members' IDs, and the term only
// counts elections.
func (m *Manager) ServeStatus(_ context.Context, from peer.ID, _ []byte) ([]byte, error) {
	servers, idx, err := m.cfg.Catalog.Configuration()
	if err != nil {
		return nil, err
	}
	a := statusAnswer{ConfigIndex: idx, CommitIndex: m.cfg.Catalog.CommitIndex(), Leader: m.cfg.Catalog.IsLeader()}
	voters := 0
	for _, s := range servers {
		if s.Voter {
			voters++
		}
	}
	a.SoleVoter = a.Leader && voters == 1 && slices.ContainsFunc(servers, func(s catalog.Server) bool { return s.Voter && s.ID == m.cfg.Self.String() })
	a.LeaderID, a.Term = m.cfg.Catalog.LeaderTerm()
	a.Listed = slices.ContainsFunc(servers, func(s catalog.Server) bool { return s.ID == from.String() })
	_, err = m.cfg.Catalog.Member(from.String())
	a.Member = err == nil
	return json.Marshal(a)
}

// statusEvery is how often a node that is behind or has no leader asks
// the members about itself.
const statusEvery = 5 * time.Second

// statusPeers and statusTimeout bound one round of questions: how many
// peers besides the voters that count, and how long for each.
const (
	statusPeers   = 8
	statusTimeout = 2 * time.Second
)

// removedBy reports whether the answer a says that this node, last seen
// listed in a configuration at index listedAt, was removed since: it is
// not listed in a committed configuration newer than that one. Without a
// configuration that listed it (listedAt 0) nothing says so.
func removedBy(a statusAnswer, listedAt uint64) bool {
	return listedAt > 0 && !a.Listed && a.ConfigIndex > listedAt && a.ConfigIndex <= a.CommitIndex
}

// removedByMajority returns why the answers (by peer ID) say that this
// node was removed, or "" when they do not: a majority of the voters of
// the configuration that last listed it must each say so (removedBy), or
// one of them leads alone without it (SoleVoter). Answers from peers that
// were not voters there do not count.
func removedByMajority(answers map[string]statusAnswer, rc *removalCheck) string {
	for _, v := range rc.voters {
		// A voter of that configuration that now leads alone without this
		// node: the others were removed with it (an outage recovery, or
		// one of two voters). A voter's key can lead and write anything
		// already (Raft is not Byzantine-tolerant); a member that is no
		// voter there cannot say this.
		if a, ok := answers[v]; ok && rc.listedAt > 0 && a.SoleVoter && a.Leader && !a.Listed {
			return fmt.Sprintf("%s, a voter of the catalog's Raft configuration that last listed this node (index %d), now leads as its only voter without it", v, rc.listedAt)
		}
	}
	var says []string
	for _, v := range rc.voters {
		if a, ok := answers[v]; ok && removedBy(a, rc.listedAt) {
			says = append(says, v)
		}
	}
	if len(says) <= len(rc.voters)/2 {
		return ""
	}
	return fmt.Sprintf("%d of the %d voters of the catalog's Raft configuration that last listed this node (index %d) have a newer committed configuration without it (%s)",
		len(says), len(rc.voters), rc.listedAt, strings.Join(says, ", "))
}

// removalCheck is what checkRemoved remembers between rounds.
type removalCheck struct {
	// listedAt is the highest index of a configuration seen in this run
	// that listed this node (0: none yet).
	listedAt uint64
	// voters are the voters of that configuration: only a majority of
	// them may tell this node that it was removed.
	voters []string
	// lastAsk is when the voters were last asked.
	lastAsk time.Time
}

// checkRemoved reports whether this node was removed from its mesh, and
// why. It runs in Run's loop: the local check every time, the questions
// to the voters at most every statusEvery, and only while this node is
// behind or without a leader (a removed node is both, soon).
func (m *Manager) checkRemoved(ctx context.Context, rc *removalCheck) string {
	if !m.member.Load() {
		return "" // a single node: there is nobody to be removed by
	}
	self := m.cfg.Self.String()
	servers, own, err := m.cfg.Catalog.Configuration()
	if err != nil {
		return ""
	}
	switch {
	case slices.ContainsFunc(servers, func(s catalog.Server) bool { return s.ID == self }):
		if own >= rc.listedAt {
			rc.listedAt = own
			rc.voters = rc.voters[:0]
			for _, s := range servers {
				if s.Voter {
					rc.voters = append(rc.voters, s.ID)
				}
			}
		}
	case rc.listedAt > 0 && own > rc.listedAt && own <= m.cfg.Catalog.CommitIndex():
		// Only a committed configuration: one that is merely appended
		// here may be dropped by a new leader that never had it.
		return fmt.Sprintf("this node's copy of the catalog's Raft configuration (index %d) no longer lists it", own)
	}
	hasLeader := slices.ContainsFunc(servers, func(s catalog.Server) bool { return s.Leader })
	if (m.cfg.CaughtUp() && hasLeader) || time.Since(rc.lastAsk) < statusEvery {
		return ""
	}
	rc.lastAsk = time.Now()
	// Every voter that counts is asked, and up to statusPeers others:
	// their answers do not count, but the question connects this node to
	// them, and a leader this node does not know as a voter (a nonvoter
	// promoted while this node was down, which may not know this node's
	// new addresses) reaches it over that connection.
	ask := slices.Clone(rc.voters)
	for _, s := range servers {
		ask = append(ask, s.ID)
	}
	if members, err := m.cfg.Catalog.Members(); err == nil {
		for _, mb := range members {
			ask = append(ask, mb.PeerID)
		}
	}
	if saved, err := readPeers(m.cfg.Repo); err == nil {
		for _, mb := range saved {
			ask = append(ask, mb.PeerID)
		}
	}
	var targets []peer.ID
	others := 0
	seen := map[string]bool{self: true}
	for _, id := range ask {
		if seen[id] {
			continue
		}
		seen[id] = true
		if !slices.Contains(rc.voters, id) {
			if others == statusPeers {
				continue
			}
			others++
		}
		if p, err := peer.Decode(id); err == nil {
			targets = append(targets, p)
		}
	}
	answers := m.askStatus(ctx, targets)
	return removedByMajority(answers, rc)
}

// askStatus asks peers the status question all at once, so that peers
// that are down cost one timeout, not one each (Run's loop waits on the
// removal check), and returns the answers by peer ID.
func (m *Manager) askStatus(ctx context.Context, peers []peer.ID) map[string]statusAnswer {
	var mu sync.Mutex
	answers := map[string]statusAnswer{}
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, statusTimeout)
			resp, err := mesh.Call(cctx, m.cfg.Host, p, StatusProtocol, nil)
			cancel()
			if err != nil {
				m.log.Debug("asking a peer about this node", "peer_id", p.String(), "err", err)
				return
			}
			var a statusAnswer
			if json.Unmarshal(resp, &a) != nil {
				return
			}
			mu.Lock()
			answers[p.String()] = a
			mu.Unlock()
		})
	}
	wg.Wait()
	return answers
}

// Removed reports whether this node found out it was removed, and the
// record of it.
func (m *Manager) Removed() (repo.Removal, bool) {
	r := m.removed.Load()
	if r == nil {
		return repo.Removal{}, false
	}
	return *r, true
}

// RejoinHint tells an operator how a removed node joins again.
const RejoinHint = "To join the mesh again: stop this daemon, run `artmesh mesh invite` on a member, " +
	"then `artmesh init --join <ticket>` with a new, empty ARTMESH_PATH and start `artmesh daemon` there " +
	"(this repo keeps its blocks; delete it once the new node serves)."

// markRemoved records that this node was removed, for why: in the repo
// config (so that every later start knows at once), in the log at error,
// and by stopping the catalog's Raft so that the node no longer
// campaigns. Only the first call counts.
func (m *Manager) markRemoved(why string, at time.Time) {
	r := repo.Removal{At: at.UTC().Truncate(time.Second), Reason: why}
	if !m.removed.CompareAndSwap(nil, &r) {
		return
	}
	if err := m.recordRemoved(r); err != nil {
		m.log.Warn("recording the removal in the repo config", "err", err)
	}
	if err := m.cfg.Catalog.StopRaft(); err != nil {
		m.log.Warn("stopping the catalog's Raft", "err", err)
	}
	m.log.Error("this node was removed from its mesh: it serves nothing and takes no part in the catalog any more",
		"peer_id", m.cfg.Self.String(), "reason", why, "rejoin", RejoinHint)
}

// recordRemoved writes r to the repo config, leaving the rest as it was.
func (m *Manager) recordRemoved(r repo.Removal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return repo.UpdateConfig(m.cfg.Repo, func(rc *repo.Config) { rc.Removed = &r })
}
