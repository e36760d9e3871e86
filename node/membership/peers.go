package membership

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node/repo"
)

// LoadSaved puts the members' last known addresses, saved in peers.json,
// into the peerstore, so that Raft can reach them at start, and admits
// them until the node has caught up (a member whose catalog state is
// being rebuilt does not list its members yet).
func (m *Manager) LoadSaved() {
	members, err := readPeers(m.cfg.Repo)
	if err != nil {
		return
	}
	m.addMembers(members)
	m.cfg.Roster.Seed(memberIDs(members))
}

// readPeers reads the members saved in dir's peers.json.
func readPeers(dir string) ([]catalog.Member, error) {
	data, err := os.ReadFile(filepath.Join(dir, repo.PeersFile))
	if err != nil {
		return nil, err
	}
	var members []catalog.Member
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, err
	}
	return members, nil
}

// savePeers writes the members' addresses to peers.json, for the next
// start, when they changed since the last write.
func (m *Manager) savePeers(members []catalog.Member) {
	if len(members) == 0 {
		return
	}
	data, err := json.Marshal(members)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if bytes.Equal(data, m.savedPeers) {
		return
	}
	if err := repo.WriteFileSync(filepath.Join(m.cfg.Repo, repo.PeersFile), data, 0o600); err != nil {
		m.log.Warn("saving the members' addresses", "err", err)
		return
	}
	m.savedPeers = data
}

// recordMember records in the repo config that this node is a member of
// a mesh, with no ticket left to join with, leaving the rest of the file
// as it was.
func (m *Manager) recordMember() error {
	m.member.Store(true)
	m.mu.Lock()
	defer m.mu.Unlock()
	return repo.UpdateConfig(m.cfg.Repo, func(rc *repo.Config) { rc.Join, rc.Member = nil, true })
}
