package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/content"
)

// The files and folders of a node's repo.
const (
	ConfigFile   = "config.json"  // the node's configuration
	IdentityFile = "identity.key" // the node's Ed25519 libp2p private key
	APIKeyFile   = "api.key"      // the admin agent's API key, mode 0600
	BlocksDir    = "blocks"       // the block store
	RaftDir      = "raft"         // the catalog's Raft log and snapshots
	APIAddrFile  = "api.addr"     // where the running daemon's API listens; removed when it stops
	MeshKeyFile  = "mesh.key"     // the mesh's private network key, hex, mode 0600
	PeersFile    = "peers.json"   // the members' addresses, for reaching the mesh at start
	LockFile     = "repo.lock"    // held (flock) by the running daemon
)

// AdminAgent is the id of the admin agent that init creates.
const AdminAgent artmesh.AgentID = "admin"

// DefaultAPIAddr is where the HTTP API listens unless configured otherwise.
const DefaultAPIAddr = "127.0.0.1:7480"

// DefaultRepo returns the repo folder: $ARTMESH_PATH, else ~/.artmesh.
func DefaultRepo() string {
	if p := os.Getenv("ARTMESH_PATH"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".artmesh"
	}
	return filepath.Join(home, ".artmesh")
}

// RepoConfig is the on-disk configuration of a node, in <repo>/config.json.
type RepoConfig struct {
	// PeerID is the node's identity, derived from identity.key.
	PeerID string `json:"peer_id"`
	// APIAddr is the host:port the HTTP API listens on.
	APIAddr string `json:"api_addr"`
	// Chunking is how content is cut into blocks ("buzhash" or "size-N").
	Chunking content.Chunking `json:"chunking"`
	// MaxArtifactBytes caps one artifact's content; 0 means no cap.
	MaxArtifactBytes int64 `json:"max_artifact_bytes"`
	// Listen are the libp2p multiaddrs the node listens on for the mesh.
	Listen []string `json:"listen"`
	// Voters is how many members vote in the catalog (3 or 5); later
	// members are nonvoters.
	Voters int `json:"voters"`
	// Join, while set, is the ticket this node joins the mesh with on its
	// first start; it is cleared once the node is a member.
	Join *Ticket `json:"join,omitempty"`
	// Member records that this node is, or was, one of several members of
	// a mesh: it then never bootstraps a catalog of its own, even if its
	// Raft state is lost (see `artmesh repo recover-catalog`).
	Member bool `json:"member,omitempty"`
}

// ReadRepoConfig reads <repo>/config.json.
func ReadRepoConfig(repo string) (RepoConfig, error) {
	var rc RepoConfig
	data, err := os.ReadFile(filepath.Join(repo, ConfigFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return rc, artmesh.E(artmesh.NotFound, fmt.Sprintf("%s is not an artmesh repo: run `artmesh init` first", repo))
		}
		return rc, fmt.Errorf("node: read config: %w", err)
	}
	if err := json.Unmarshal(data, &rc); err != nil {
		return rc, fmt.Errorf("node: %s: %w", filepath.Join(repo, ConfigFile), err)
	}
	if rc.APIAddr == "" {
		rc.APIAddr = DefaultAPIAddr
	}
	if len(rc.Listen) == 0 {
		rc.Listen = []string{DefaultListen}
	}
	if rc.Voters <= 0 {
		rc.Voters = DefaultVoters
	}
	return rc, rc.Chunking.Validate()
}

// IsRepo reports whether dir holds an initialised repo.
func IsRepo(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ConfigFile))
	return err == nil
}

// DefaultListen is where the mesh listens unless configured otherwise:
// loopback, so that a node is private until its operator opens it (for a
// mesh across hosts, listen on /ip4/0.0.0.0/tcp/7481).
const DefaultListen = "/ip4/127.0.0.1/tcp/7481"

// DefaultVoters is how many members vote in the catalog.
const DefaultVoters = 3

// InitOptions tune Init.
type InitOptions struct {
	APIAddr  string           // default DefaultAPIAddr
	Chunking content.Chunking // default content.DefaultChunking
	Listen   []string         // default DefaultListen
	Voters   int              // voters of a new mesh: 3 (default) or 5
	// Join makes the repo a member-to-be of an existing mesh: the node
	// joins with this ticket on its first start, and the mesh's catalog,
	// agents and key come from the mesh.
	Join *Ticket
}

// Init creates a repo in dir: the node's identity, its configuration, a
// single-voter catalog with the admin agent, and <repo>/api.key with that
// agent's key. It refuses a folder that already holds a repo. On failure it
// leaves no repo behind.
func Init(ctx context.Context, dir string, opts InitOptions) (err error) {
	if IsRepo(dir) {
		return artmesh.E(artmesh.Conflict, fmt.Sprintf("%s is already an artmesh repo", dir))
	}
	if opts.APIAddr == "" {
		opts.APIAddr = DefaultAPIAddr
	}
	if opts.Chunking == "" {
		opts.Chunking = content.DefaultChunking
	}
	if err := opts.Chunking.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("node: init: %w", err)
	}
	created := []string{}
	defer func() {
		if err != nil {
			for _, p := range created {
				os.RemoveAll(p)
			}
		}
	}()

	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return fmt.Errorf("node: init: %w", err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return fmt.Errorf("node: init: %w", err)
	}
	keyBytes, err := crypto.MarshalPrivateKey(priv)
	if err != nil {
		return fmt.Errorf("node: init: %w", err)
	}
	created = append(created, filepath.Join(dir, IdentityFile))
	if err := writeFileSync(filepath.Join(dir, IdentityFile), keyBytes, 0o600); err != nil {
		return err
	}

	key := mesh.NewKey()
	if opts.Join != nil {
		if key, err = mesh.ParseKey(opts.Join.Key); err != nil {
			return err
		}
	}
	created = append(created, filepath.Join(dir, MeshKeyFile))
	if err := writeFileSync(filepath.Join(dir, MeshKeyFile), []byte(key.String()+"\n"), 0o600); err != nil {
		return err
	}
	if len(opts.Listen) == 0 {
		opts.Listen = []string{DefaultListen}
	}
	if opts.Join != nil && opts.Join.Voters > 0 {
		opts.Voters = opts.Join.Voters
	}
	if opts.Voters <= 0 {
		opts.Voters = DefaultVoters
	}
	rc := RepoConfig{PeerID: id.String(), APIAddr: opts.APIAddr, Chunking: opts.Chunking, Listen: opts.Listen, Voters: opts.Voters, Join: opts.Join}
	if opts.Join != nil {
		// A joining node gets its catalog and its admin key from the mesh
		// on its first start.
		data, _ := json.MarshalIndent(rc, "", "  ")
		created = append(created, filepath.Join(dir, ConfigFile))
		return writeFileSync(filepath.Join(dir, ConfigFile), append(data, '\n'), 0o600)
	}

	created = append(created, filepath.Join(dir, RaftDir))
	cfg := catalog.DefaultConfig()
	cfg.Dir = filepath.Join(dir, RaftDir)
	cfg.ServerID = id.String()
	cfg.Address = id.String()
	cat, err := catalog.Open(ctx, cfg)
	if err != nil {
		return fmt.Errorf("node: init catalog: %w", err)
	}
	defer func() {
		if cerr := cat.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if err := cat.Bootstrap(ctx); err != nil {
		return fmt.Errorf("node: init catalog: %w", err)
	}
	apiKey := acl.NewAPIKey()
	if _, err := cat.CreateAgent(ctx, catalog.CreateAgent{
		Agent:   artmesh.Agent{ID: AdminAgent, Admin: true, CreatedAt: time.Now().UTC()},
		KeyHash: acl.HashKey(apiKey),
	}); err != nil {
		return fmt.Errorf("node: init admin agent: %w", err)
	}
	created = append(created, filepath.Join(dir, APIKeyFile))
	if err := writeFileSync(filepath.Join(dir, APIKeyFile), []byte(apiKey+"\n"), 0o600); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(rc, "", "  ")
	created = append(created, filepath.Join(dir, ConfigFile))
	// The config is written last: its presence marks a complete repo.
	return writeFileSync(filepath.Join(dir, ConfigFile), append(data, '\n'), 0o600)
}

// writeFileSync writes a file atomically and durably: a temporary file,
// fsync, rename, fsync of the folder.
func writeFileSync(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return fmt.Errorf("node: write %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("node: write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("node: write %s: %w", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("node: write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("node: write %s: %w", filepath.Base(path), err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("node: write %s: %w", filepath.Base(path), err)
	}
	defer d.Close()
	return d.Sync()
}

// readIdentity loads the node's private key.
func readIdentity(repo string) (crypto.PrivKey, peer.ID, error) {
	data, err := os.ReadFile(filepath.Join(repo, IdentityFile))
	if err != nil {
		return nil, "", fmt.Errorf("node: read identity: %w", err)
	}
	priv, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, "", fmt.Errorf("node: read identity: %w", err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, "", fmt.Errorf("node: read identity: %w", err)
	}
	return priv, id, nil
}
