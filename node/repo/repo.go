// Package repo is a node's folder on disk: its files and their names, the
// on-disk configuration, init (identity, mesh key, a bootstrapped
// single-voter catalog with its admin agent, or a ticket to join with), the
// lock a running daemon holds, and the invite ticket's text form. Writes
// are atomic and durable.
package repo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sys/unix"

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
	MeshKeyFile  = "mesh.key"     // a private mesh's network key, hex, mode 0600 (absent without one)
	PeersFile    = "peers.json"   // the members' addresses, for reaching the mesh at start
	LockFile     = "repo.lock"    // held (flock) by the running daemon
)

// AdminAgent is the id of the admin agent that init creates.
const AdminAgent artmesh.AgentID = "admin"

// DefaultAPIAddr is where the HTTP API listens unless configured otherwise.
const DefaultAPIAddr = "127.0.0.1:7480"

// DefaultPath returns the repo folder: $ARTMESH_PATH, else ~/.artmesh.
func DefaultPath() string {
	if p := os.Getenv("ARTMESH_PATH"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".artmesh"
	}
	return filepath.Join(home, ".artmesh")
}

// Config is the on-disk configuration of a node, in <repo>/config.json.
type Config struct {
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
	// RaftTimeout, when set, is the catalog's Raft heartbeat and election
	// timeout (a Go duration such as "3s"; the leader lease is half of
	// it); empty means 1s. A small or busy machine whose leader steps
	// down now and then (its log says so) wants 2-5s: elections take
	// longer to notice a dead leader, and a slow moment no longer starts
	// one.
	RaftTimeout string `json:"raft_timeout,omitempty"`
	// Removed, once set, records that this node found out it was removed
	// from its mesh: the daemon then serves nothing and never takes part
	// in the catalog's Raft again. The node joins again with a new repo.
	Removed *Removal `json:"removed,omitempty"`
}

// Removal is how and when a node found out it was removed from its mesh.
type Removal struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// ReadConfig reads <repo>/config.json.
func ReadConfig(repo string) (Config, error) {
	var rc Config
	data, err := os.ReadFile(filepath.Join(repo, ConfigFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return rc, artmesh.E(artmesh.NotFound, fmt.Sprintf("%s is not an artmesh repo: run `artmesh init` first", repo))
		}
		return rc, fmt.Errorf("repo: read config: %w", err)
	}
	if err := json.Unmarshal(data, &rc); err != nil {
		return rc, fmt.Errorf("repo: %s: %w", filepath.Join(repo, ConfigFile), err)
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

// UpdateConfig changes <repo>/config.json with change, durably, leaving
// the fields change does not touch as they were.
func UpdateConfig(repo string, change func(*Config)) error {
	rc, err := ReadConfig(repo)
	if err != nil {
		return err
	}
	change(&rc)
	data, _ := json.MarshalIndent(rc, "", "  ")
	return WriteFileSync(filepath.Join(repo, ConfigFile), append(data, '\n'), 0o600)
}

// MinRaftTimeout and MaxRaftTimeout bound Config.RaftTimeout: below a
// second, the heartbeats that members that do not vote get every 350 ms
// (mesh.PacedTransport) would let them forget their leader.
const (
	MinRaftTimeout = time.Second
	MaxRaftTimeout = time.Minute
)

// ParseRaftTimeout parses a RaftTimeout ("" is 0: the default) and checks
// its bounds.
func ParseRaftTimeout(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinRaftTimeout || d > MaxRaftTimeout {
		return 0, artmesh.E(artmesh.Invalid, fmt.Sprintf("raft timeout %q: give a duration from %s to %s, such as 3s", s, MinRaftTimeout, MaxRaftTimeout))
	}
	return d, nil
}

// FreeAddrs returns the first API address and mesh listen address, from
// DefaultAPIAddr and DefaultListen on (7480 and 7481, then 7482 and 7483,
// ...), that no process listens on now, so that several nodes on one
// machine need no flags: api and listen given (non-empty) are kept as
// they are and only the others are chosen. A port free now may be taken
// before the node starts; the daemon then says so.
func FreeAddrs(api string, listen []string) (string, []string) {
	free := func(port int) bool {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	for k := 0; k < 50; k++ {
		a, m := 7480+2*k, 7481+2*k
		if (api != "" || free(a)) && (len(listen) > 0 || free(m)) {
			if api == "" {
				api = fmt.Sprintf("127.0.0.1:%d", a)
			}
			if len(listen) == 0 {
				listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", m)}
			}
			return api, listen
		}
	}
	if api == "" {
		api = DefaultAPIAddr
	}
	if len(listen) == 0 {
		listen = []string{DefaultListen}
	}
	return api, listen
}

// Exists reports whether dir holds an initialised repo.
func Exists(dir string) bool {
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
	// RaftTimeout is Config.RaftTimeout (empty: the default).
	RaftTimeout string
	// PrivateNetwork gives a new mesh a private network key (a libp2p
	// PSK) as a second layer under TLS: a peer without the key cannot
	// finish a handshake. It costs about two thirds of the wire's
	// throughput. A joining node takes the key from its ticket instead.
	PrivateNetwork bool
}

// Init creates a repo in dir: the node's identity, its configuration, a
// single-voter catalog with the admin agent, and <repo>/api.key with that
// agent's key. It refuses a folder that already holds a repo. On failure it
// leaves no repo behind.
func Init(ctx context.Context, dir string, opts InitOptions) (err error) {
	if Exists(dir) {
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
		return fmt.Errorf("repo: init: %w", err)
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
		return fmt.Errorf("repo: init: %w", err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return fmt.Errorf("repo: init: %w", err)
	}
	keyBytes, err := crypto.MarshalPrivateKey(priv)
	if err != nil {
		return fmt.Errorf("repo: init: %w", err)
	}
	created = append(created, filepath.Join(dir, IdentityFile))
	if err := WriteFileSync(filepath.Join(dir, IdentityFile), keyBytes, 0o600); err != nil {
		return err
	}

	var key mesh.Key
	switch {
	case opts.Join != nil && opts.Join.Key != "":
		if key, err = mesh.ParseKey(opts.Join.Key); err != nil {
			return err
		}
	case opts.Join == nil && opts.PrivateNetwork:
		key = mesh.NewKey()
	}
	if key != (mesh.Key{}) {
		created = append(created, filepath.Join(dir, MeshKeyFile))
		if err := WriteFileSync(filepath.Join(dir, MeshKeyFile), []byte(key.String()+"\n"), 0o600); err != nil {
			return err
		}
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
	rc := Config{PeerID: id.String(), APIAddr: opts.APIAddr, Chunking: opts.Chunking, Listen: opts.Listen, Voters: opts.Voters, Join: opts.Join, RaftTimeout: opts.RaftTimeout}
	if opts.Join != nil {
		// A joining node gets its catalog and its admin key from the mesh
		// on its first start.
		data, _ := json.MarshalIndent(rc, "", "  ")
		created = append(created, filepath.Join(dir, ConfigFile))
		return WriteFileSync(filepath.Join(dir, ConfigFile), append(data, '\n'), 0o600)
	}

	created = append(created, filepath.Join(dir, RaftDir))
	cfg := catalog.DefaultConfig()
	cfg.Dir = filepath.Join(dir, RaftDir)
	cfg.ServerID = id.String()
	cfg.Address = id.String()
	cat, err := catalog.Open(ctx, cfg)
	if err != nil {
		return fmt.Errorf("repo: init catalog: %w", err)
	}
	defer func() {
		if cerr := cat.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if err := cat.Bootstrap(ctx); err != nil {
		return fmt.Errorf("repo: init catalog: %w", err)
	}
	apiKey := acl.NewAPIKey()
	if _, err := cat.CreateAgent(ctx, catalog.CreateAgent{
		Agent:   artmesh.Agent{ID: AdminAgent, Admin: true, CreatedAt: time.Now().UTC()},
		KeyHash: acl.HashKey(apiKey),
	}); err != nil {
		return fmt.Errorf("repo: init admin agent: %w", err)
	}
	// A new mesh limits what one ordinary agent can reserve and hold open
	// (DefaultQuota); bytes stored are left to the disk and to the admin.
	if _, err := cat.SetQuotaDefaults(ctx, DefaultQuota()); err != nil {
		return fmt.Errorf("repo: init quota defaults: %w", err)
	}
	created = append(created, filepath.Join(dir, APIKeyFile))
	if err := WriteFileSync(filepath.Join(dir, APIKeyFile), []byte(apiKey+"\n"), 0o600); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(rc, "", "  ")
	created = append(created, filepath.Join(dir, ConfigFile))
	// The config is written last: its presence marks a complete repo.
	return WriteFileSync(filepath.Join(dir, ConfigFile), append(data, '\n'), 0o600)
}

// DefaultQuota returns the quota a new mesh gives agents that are not mesh
// admins: 64 GiB staged in at most 32 open uploads, and 16 event streams
// per node. Stored bytes are not limited by default: that depends on the
// disks, which the admin knows (artmesh mesh quota --bytes).
func DefaultQuota() artmesh.Quota {
	return artmesh.Quota{Staged: 64 << 30, Uploads: 32, Streams: 16}
}

// WriteFileSync writes a file atomically and durably: a temporary file,
// fsync, rename, fsync of the folder.
func WriteFileSync(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return fmt.Errorf("repo: write %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("repo: write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("repo: write %s: %w", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("repo: write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("repo: write %s: %w", filepath.Base(path), err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("repo: write %s: %w", filepath.Base(path), err)
	}
	defer d.Close()
	return d.Sync()
}

// ReadIdentity loads the node's private key.
func ReadIdentity(repo string) (crypto.PrivKey, peer.ID, error) {
	data, err := os.ReadFile(filepath.Join(repo, IdentityFile))
	if err != nil {
		return nil, "", fmt.Errorf("repo: read identity: %w", err)
	}
	priv, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, "", fmt.Errorf("repo: read identity: %w", err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, "", fmt.Errorf("repo: read identity: %w", err)
	}
	return priv, id, nil
}

// Ticket is an invitation to a mesh: where to reach it, a one-time join
// secret, and the private network key of a private mesh. Its text form is
// what `artmesh mesh invite` prints and `artmesh init --join` takes.
type Ticket struct {
	Key    string   `json:"k,omitempty"` // a private mesh's key, hex; none for a mesh without one
	Addrs  []string `json:"a"`           // members' multiaddrs, each ending in /p2p/<peer id>
	Secret string   `json:"s"`           // the join secret, hex
	Voters int      `json:"v,omitempty"` // how many members vote in this mesh
	// Leaders are the peer IDs of the mesh's voters when the invite was
	// made: before the joiner has a Raft configuration, only those of
	// them that the join answer names too may lead it (a ticket without
	// them, from an older node: the peers of Addrs).
	Leaders []string `json:"l,omitempty"`
}

const ticketPrefix = "artmesh1"

// String returns the ticket's text form.
func (t Ticket) String() string {
	data, _ := json.Marshal(t)
	return ticketPrefix + base64.RawURLEncoding.EncodeToString(data)
}

// ParseTicket reads a ticket's text form.
func ParseTicket(s string) (*Ticket, error) {
	bad := artmesh.E(artmesh.Invalid, "that is not an artmesh invite ticket: get one with `artmesh mesh invite` on a member")
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), ticketPrefix)
	if !ok {
		return nil, bad
	}
	data, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return nil, bad
	}
	var t Ticket
	if json.Unmarshal(data, &t) != nil || len(t.Addrs) == 0 || len(t.Secret) != 64 {
		return nil, bad
	}
	if _, err := mesh.ParseKey(t.Key); t.Key != "" && err != nil {
		return nil, bad
	}
	for _, a := range t.Addrs {
		if _, err := peer.AddrInfoFromString(a); err != nil {
			return nil, bad
		}
	}
	return &t, nil
}

// ReadMeshKey reads the repo's private network key: the zero key when the
// repo has none (a mesh admitted by peer id over TLS alone).
func ReadMeshKey(repo string) (mesh.Key, error) {
	data, err := os.ReadFile(filepath.Join(repo, MeshKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return mesh.Key{}, nil
	}
	if err != nil {
		return mesh.Key{}, fmt.Errorf("repo: read mesh key: %w", err)
	}
	return mesh.ParseKey(string(data))
}

// Lock takes the exclusive lock a running daemon holds on its repo, so
// that two daemons never share one and a repo is not changed under a
// running daemon; Conflict when another holds it. Closing the file
// releases the lock.
func Lock(repo string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(repo, LockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("repo: lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, artmesh.E(artmesh.Conflict, fmt.Sprintf("repo %s is in use by another artmesh daemon", repo), err)
	}
	return f, nil
}
