package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh"
	nrepo "github.com/artmesh/artmesh/node/repo"
)

// errRepoInUse is the error of a repo whose daemon is running.
var errRepoInUse = errors.New("repo in use")

// lockRepoFile takes the repo's lock, as the daemon does, so that no
// daemon starts while the repo is changed. It fails with errRepoInUse when
// a daemon holds it. Closing the file releases the lock.
func lockRepoFile(repo string) (*os.File, error) {
	f, err := nrepo.Lock(repo)
	if artmesh.KindOf(err) == artmesh.Conflict {
		return nil, fmt.Errorf("%w: repo %s is in use by a running artmesh daemon: stop it first", errRepoInUse, repo)
	}
	return f, err
}

// catalogRecovery is what recoverCatalog did.
type catalogRecovery struct {
	Repo      string `json:"repo"`
	MovedFrom string `json:"moved_from,omitempty"` // the Raft folder, as it was
	MovedTo   string `json:"moved_to,omitempty"`   // where it is now; empty when there was none
	BlocksDir string `json:"blocks_dir"`           // kept as it is
}

// recoverCatalog moves a stopped member's Raft state (<repo>/raft) aside
// to <repo>/raft.broken-<UTC time>, so that the daemon's next start takes
// the catalog from the mesh's leader; the block store and everything else
// stay. It refuses a repo whose daemon runs and a repo that was never a
// member of a mesh, which has no leader to recover from.
func recoverCatalog(repo string, now time.Time) (catalogRecovery, error) {
	out := catalogRecovery{Repo: repo, BlocksDir: filepath.Join(repo, nrepo.BlocksDir)}
	if !nrepo.Exists(repo) {
		return out, fmt.Errorf("%s is not an artmesh repo (no %s): set %s to the node's repo", repo, nrepo.ConfigFile, envRepo)
	}
	rc, err := nrepo.ReadConfig(repo)
	if err != nil {
		return out, err
	}
	if !rc.Member {
		return out, fmt.Errorf("repo %s is a single node that was never part of a mesh: there is no leader to recover its catalog from, so its Raft state is left as it is (moving it aside would lose the catalog)", repo)
	}
	lock, err := lockRepoFile(repo)
	if err != nil {
		return out, err
	}
	defer lock.Close()
	from := filepath.Join(repo, nrepo.RaftDir)
	if _, err := os.Lstat(from); errors.Is(err, fs.ErrNotExist) {
		return out, nil // nothing to move: the next start fetches the catalog anyway
	} else if err != nil {
		return out, err
	}
	base := from + ".broken-" + now.UTC().Format("20060102T150405Z")
	to := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		} else if err != nil {
			return out, err
		}
		to = base + "-" + strconv.Itoa(i)
	}
	if err := os.Rename(from, to); err != nil {
		return out, fmt.Errorf("move the catalog's Raft state aside: %w", err)
	}
	out.MovedFrom, out.MovedTo = from, to
	return out, nil
}

// recoverCatalogCmd is `artmesh repo recover-catalog`.
func (c *cli) recoverCatalogCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "recover-catalog",
		Short: "With the daemon stopped, move a member's broken catalog aside so that it is fetched again from the leader",
		Long: `Move this member's catalog state (<repo>/raft) aside to
<repo>/raft.broken-<UTC time>, for a node whose catalog is damaged or lost.
Every block of the block store is kept. The next ` + "`artmesh daemon`" + ` start
fetches the catalog from the mesh's leader (a snapshot or the log) and
collects nothing until it has caught up.

Run it with the daemon stopped. It refuses a repo that was never a member
of a mesh: a single node has no leader to recover its catalog from. The
leader must still list this node as a member; a node that was removed from
the mesh joins again with a new repo and a fresh invite instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := recoverCatalog(repoDir(c.getenv), time.Now())
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, r)
			}
			if r.MovedTo == "" {
				fmt.Fprintf(c.stdout, "%s has no catalog state (%s) to move aside.\n", r.Repo, filepath.Join(r.Repo, nrepo.RaftDir))
			} else {
				fmt.Fprintf(c.stdout, "moved the catalog's Raft state aside:\n  %s -> %s\n", r.MovedFrom, r.MovedTo)
			}
			fmt.Fprintf(c.stdout, "Every block in %s is kept: the next `artmesh daemon` start fetches the catalog from the mesh's leader and collects nothing until it has caught up.\n", r.BlocksDir)
			if r.MovedTo != "" {
				fmt.Fprintf(c.stdout, "Once the node serves again, %s may be deleted.\n", r.MovedTo)
			}
			return nil
		},
	}
}
