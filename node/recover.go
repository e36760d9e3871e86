package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node/repo"
)

// SoleVoterRecovery is what RecoverSoleVoter did.
type SoleVoterRecovery struct {
	PeerID string `json:"peer_id"`
	catalog.Recovery
}

// RecoverSoleVoter is the outage recovery of a mesh that lost a majority
// of its voters for good, run on one survivor's repo with its daemon
// stopped (the caller holds the repo's lock): it makes this node the only
// voter of its mesh's catalog, keeping every entry its log holds and
// every block, and takes the other members out (see
// catalog.RecoverSoleVoter). It also forgets the members' saved addresses
// (peers.json), so that the next start admits nobody but the catalog's
// members. The next `artmesh daemon` leads alone; other nodes join again
// by invite.
func RecoverSoleVoter(ctx context.Context, dir string) (SoleVoterRecovery, error) {
	const op = artmesh.Op("node.RecoverSoleVoter")
	var out SoleVoterRecovery
	rc, err := repo.ReadConfig(dir)
	if err != nil {
		return out, err
	}
	_, id, err := repo.ReadIdentity(dir)
	if err != nil {
		return out, err
	}
	out.PeerID = id.String()
	if rc.Removed != nil {
		return out, artmesh.E(op, artmesh.Conflict, fmt.Sprintf("this node was removed from its mesh (%s): it has no mesh to recover", rc.Removed.Reason))
	}
	ccfg := catalog.DefaultConfig()
	ccfg.Dir = filepath.Join(dir, repo.RaftDir)
	ccfg.ServerID = out.PeerID
	ccfg.Address = out.PeerID
	if out.Recovery, err = catalog.RecoverSoleVoter(ctx, ccfg); err != nil {
		return out, err
	}
	if err := os.Remove(filepath.Join(dir, repo.PeersFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return out, artmesh.E(op, fmt.Errorf("forget the members' saved addresses: %w", err))
	}
	return out, nil
}
