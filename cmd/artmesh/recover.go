package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node"
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

// lockMemberRepo takes the lock of repo, a repo of a stopped member of a
// mesh, for a recovery. It refuses a folder that is no repo, a repo whose
// daemon runs, and the repo of a single node, saying why with single.
func lockMemberRepo(repo, single string) (*os.File, error) {
	if !nrepo.Exists(repo) {
		return nil, fmt.Errorf("%s is not an artmesh repo (no %s): set %s to the node's repo", repo, nrepo.ConfigFile, envRepo)
	}
	rc, err := nrepo.ReadConfig(repo)
	if err != nil {
		return nil, err
	}
	if !rc.Member {
		return nil, fmt.Errorf("repo %s is a single node that was never part of a mesh: %s", repo, single)
	}
	return lockRepoFile(repo)
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
	lock, err := lockMemberRepo(repo, "there is no leader to recover its catalog from, so its Raft state is left as it is (moving it aside would lose the catalog)")
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

// recoverSoleVoter is the outage recovery: with the daemon stopped, it
// makes this member the only voter of its mesh's catalog, keeping what it
// applied and every block (node.RecoverSoleVoter). It refuses a repo whose
// daemon runs and a repo that was never a member of a mesh.
func recoverSoleVoter(ctx context.Context, repo string) (node.SoleVoterRecovery, error) {
	var out node.SoleVoterRecovery
	lock, err := lockMemberRepo(repo, "it is its catalog's only voter already, and has nothing to recover")
	if err != nil {
		return out, err
	}
	defer lock.Close()
	out, err = node.RecoverSoleVoter(ctx, repo)
	if errors.Is(err, artmesh.NotFound) {
		if moved, _ := filepath.Glob(filepath.Join(repo, nrepo.RaftDir) + ".broken-*"); len(moved) > 0 {
			return out, fmt.Errorf("%w\n(the catalog's state was moved aside by `recover-catalog` without --sole-voter: rename the newest of %s back to %s first)",
				err, strings.Join(moved, ", "), filepath.Join(repo, nrepo.RaftDir))
		}
	}
	return out, err
}

// recoverCatalogCmd is `artmesh repo recover-catalog [--sole-voter]`.
func (c *cli) recoverCatalogCmd() *cobra.Command {
	var soleVoter bool
	cmd := &cobra.Command{
		Use:   "recover-catalog",
		Short: "With the daemon stopped, move a member's broken catalog aside so that it is fetched again from the leader; or, with --sole-voter, recover a mesh that lost most of its voters for good",
		Long: `Move this member's catalog state (<repo>/raft) aside to
<repo>/raft.broken-<UTC time>, for a node whose catalog is damaged or lost.
Every block of the block store is kept. The next ` + "`artmesh daemon`" + ` start
fetches the catalog from the mesh's leader (a snapshot or the log) and
collects nothing until it has caught up.

Run it with the daemon stopped. It refuses a repo that was never a member
of a mesh: a single node has no leader to recover its catalog from. The
leader must still list this node as a member; a node that was removed from
the mesh joins again with a new repo and a fresh invite instead.

With --sole-voter it is the outage recovery instead, for a mesh whose
voters that are left can never form a majority again (say 2 of 3 voters
destroyed for good): on one survivor, with its daemon stopped, it makes
this node the only voter of the same mesh's catalog, keeping every entry
it applied (and any it had received but not seen committed) and every
block, and takes every other member out of the mesh, as hashicorp/raft's
RecoverCluster and Consul's peers.json do. Start the daemon afterwards: it
leads alone and takes writes. Other nodes, old members included, join
again with ` + "`artmesh mesh invite`" + ` and a new, empty repo. Writes that the lost
voters committed without this node are gone. Run it on one survivor
only, and only when the others are gone for good: a lost voter that came
back with its old repo would not be let in, but two survivors recovered
apart would be two meshes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if soleVoter {
				return c.recoverSoleVoter(cmd.Context())
			}
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
	cmd.Flags().BoolVar(&soleVoter, "sole-voter", false, "outage recovery: make this node the only voter of its mesh, keeping its catalog and blocks, when most voters are gone for good")
	return cmd
}

// recoverSoleVoter runs and reports `repo recover-catalog --sole-voter`.
func (c *cli) recoverSoleVoter(ctx context.Context) error {
	repo := repoDir(c.getenv)
	r, err := recoverSoleVoter(ctx, repo)
	if err != nil {
		return fmt.Errorf("outage recovery of %s: %w", repo, err)
	}
	if c.jsonOut {
		return printJSON(c.stdout, r)
	}
	fmt.Fprintf(c.stdout, "This node (%s) is now the only voter of its mesh's catalog.\n", r.PeerID)
	fmt.Fprintf(c.stdout, "Kept: every catalog entry up to index %d, and every block in %s.\n", r.LastIndex, filepath.Join(repo, nrepo.BlocksDir))
	if len(r.Dropped) > 0 {
		fmt.Fprintf(c.stdout, "Taken out of the mesh (they join again only with a new repo and an invite):\n")
		for _, p := range r.Dropped {
			fmt.Fprintf(c.stdout, "  %s\n", p)
		}
	}
	fmt.Fprintf(c.stdout, "Next: start the daemon (`artmesh daemon`): it leads alone and takes writes. Then add nodes with `artmesh mesh invite` here and `artmesh init --join <ticket>` there.\n")
	return nil
}
