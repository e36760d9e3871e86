// Package node is one running artmesh node: it owns the content store
// (chunking, import, export, garbage collection), wires the catalog to it,
// checks every caller's rights, and is the Go API that package api serves
// over HTTP. Nothing above it touches Raft or the block store directly.
package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sys/unix"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node/blockstore"
)

// Config is what Open needs to run a node.
type Config struct {
	// Repo is the node's repo folder, made by Init.
	Repo string
	// APIAddr overrides the repo's configured API address, when set.
	APIAddr string
	// Logger receives the node's logs; slog.Default() when nil.
	Logger *slog.Logger
	// GCDelay is how long after a delete the collector runs, so that a burst
	// of deletes shares one collection. Zero means DefaultGCDelay; negative
	// turns collection after deletes off.
	GCDelay time.Duration
	// NoSync makes the block store skip fsync: for tests of code paths only.
	NoSync bool
	// TokenSkew is the clock difference allowed when verifying capability
	// tokens. Zero means DefaultTokenSkew; negative means none.
	TokenSkew time.Duration
	// JanitorInterval is how often expired uploads and tokens are swept.
	// Zero means DefaultJanitorInterval.
	JanitorInterval time.Duration
}

// DefaultJanitorInterval is the default of Config.JanitorInterval.
const DefaultJanitorInterval = time.Minute

// DefaultGCDelay is the default of Config.GCDelay.
const DefaultGCDelay = 2 * time.Second

// Node is a running node. Its methods are safe for concurrent use.
type Node struct {
	cfg     Config
	rc      RepoConfig
	log     *slog.Logger
	peerID  peer.ID
	lock    *os.File
	bs      *blockstore.Store
	content *contentStore
	cat     *catalog.Catalog
	started time.Time
	key     ed25519.PrivateKey // the node's identity key, which signs tokens
	skew    time.Duration

	uploadLocks uploadLocks
	apiURL      atomic.Value // string

	gcKick chan struct{}
	gcMu   sync.Mutex // one collection at a time
	stop   context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Open starts the node of an initialised repo: it locks the repo, opens the
// block store and the catalog, and waits until the catalog has a leader.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.GCDelay == 0 {
		cfg.GCDelay = DefaultGCDelay
	}
	if cfg.TokenSkew == 0 {
		cfg.TokenSkew = DefaultTokenSkew
	} else if cfg.TokenSkew < 0 {
		cfg.TokenSkew = 0
	}
	if cfg.JanitorInterval <= 0 {
		cfg.JanitorInterval = DefaultJanitorInterval
	}
	rc, err := ReadRepoConfig(cfg.Repo)
	if err != nil {
		return nil, err
	}
	if cfg.APIAddr != "" {
		rc.APIAddr = cfg.APIAddr
	}
	lock, err := lockRepo(cfg.Repo)
	if err != nil {
		return nil, err
	}
	priv, id, err := readIdentity(cfg.Repo)
	if err != nil {
		lock.Close()
		return nil, err
	}
	rawKey, err := priv.Raw()
	if err != nil || len(rawKey) != ed25519.PrivateKeySize {
		lock.Close()
		return nil, fmt.Errorf("node: the identity key is not an Ed25519 key")
	}
	bs, err := blockstore.Open(filepath.Join(cfg.Repo, BlocksDir), blockstore.Options{NoSync: cfg.NoSync})
	if err != nil {
		lock.Close()
		return nil, err
	}
	ccfg := catalog.DefaultConfig()
	ccfg.Dir = filepath.Join(cfg.Repo, RaftDir)
	ccfg.ServerID = id.String()
	ccfg.Address = id.String()
	ccfg.Logger = cfg.Logger.With("component", "catalog")
	cat, err := catalog.Open(ctx, ccfg)
	if err != nil {
		bs.Close()
		lock.Close()
		return nil, err
	}
	// Bootstrap keeps an existing catalog's members, waits for a leader and
	// for the local state to have applied the whole log.
	if err := cat.Bootstrap(ctx); err != nil {
		cat.Close()
		bs.Close()
		lock.Close()
		return nil, fmt.Errorf("node: catalog has no leader: %w", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	n := &Node{
		cfg:     cfg,
		rc:      rc,
		log:     cfg.Logger,
		peerID:  id,
		lock:    lock,
		bs:      bs,
		content: newContentStore(bs, rc.Chunking),
		cat:     cat,
		started: time.Now(),
		key:     ed25519.PrivateKey(rawKey),
		skew:    cfg.TokenSkew,
		gcKick:  make(chan struct{}, 1),
		stop:    stop,
	}
	n.apiURL.Store("http://" + rc.APIAddr)
	n.wg.Add(2)
	go n.gcLoop(runCtx)
	go n.janitorLoop(runCtx)
	// Collect what an earlier run left half-written (an import killed
	// mid-way leaves unreferenced bytes in a pack).
	n.kickGC()
	return n, nil
}

// lockRepo takes an exclusive lock on the repo, so that two daemons never
// share one.
func lockRepo(repo string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(repo, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("node: lock repo: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, artmesh.E(artmesh.Conflict, fmt.Sprintf("repo %s is in use by another artmesh daemon", repo), err)
	}
	return f, nil
}

// Close stops the node. It is safe to call twice.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.stop()
		n.wg.Wait()
		n.closeErr = errors.Join(n.cat.Close(), n.bs.Close())
		n.lock.Close()
	})
	return n.closeErr
}

// Info describes the node.
type Info struct {
	PeerID    string    `json:"peer_id"`
	Addresses []string  `json:"addresses"`
	Version   string    `json:"version"`
	APIURL    string    `json:"api_url"`
	StartedAt time.Time `json:"started_at"`
}

// Version is the software version a node reports.
const Version = "0.1.0"

// Info returns the node's description.
func (n *Node) Info() Info {
	return Info{
		PeerID:    n.peerID.String(),
		Addresses: []string{},
		Version:   Version,
		APIURL:    n.apiURL.Load().(string),
		StartedAt: n.started.UTC(),
	}
}

// APIAddr is the address the HTTP API should listen on.
func (n *Node) APIAddr() string { return n.rc.APIAddr }

// SetAPIListenAddr records where the HTTP API actually listens (the
// configured address may have had port 0), for Info.
func (n *Node) SetAPIListenAddr(addr string) { n.apiURL.Store("http://" + addr) }

// Ready reports whether the node can take writes: its catalog has a leader.
func (n *Node) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := n.cat.WaitLeader(ctx); err != nil {
		return artmesh.E(artmesh.Unavailable, "the catalog has no leader", err)
	}
	return nil
}

// Authenticate returns the agent whose API key this is. Unknown and
// malformed keys are Unauthenticated.
func (n *Node) Authenticate(_ context.Context, key string) (artmesh.Agent, error) {
	if !acl.WellFormedKey(key) {
		return artmesh.Agent{}, artmesh.E(artmesh.Unauthenticated, "the API key is not valid")
	}
	a, err := n.cat.AgentByKeyHash(acl.HashKey(key))
	if err != nil {
		if errors.Is(err, artmesh.NotFound) {
			return artmesh.Agent{}, artmesh.E(artmesh.Unauthenticated, "the API key is not valid")
		}
		return artmesh.Agent{}, err
	}
	return a, nil
}

// gcLoop runs a collection when kicked, after a delay that lets a burst of
// deletes share it.
func (n *Node) gcLoop(ctx context.Context) {
	defer n.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.gcKick:
		}
		if n.cfg.GCDelay > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(n.cfg.GCDelay):
			}
		}
		if st, err := n.collect(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("garbage collection failed", "err", err)
		} else if err == nil {
			n.log.Debug("garbage collection", "blocks_removed", st.BlocksRemoved, "bytes_removed", st.BytesRemoved, "duration", st.Duration)
		}
	}
}

// janitorLoop runs the janitor now and then until ctx ends.
func (n *Node) janitorLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.JanitorInterval)
	defer t.Stop()
	for {
		n.janitor(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// kickGC asks for a collection soon.
func (n *Node) kickGC() {
	if n.cfg.GCDelay < 0 {
		return
	}
	select {
	case n.gcKick <- struct{}{}:
	default:
	}
}

// GC removes every block that no live version references, now, and
// reports what it removed. Only admins may run it.
func (n *Node) GC(ctx context.Context, caller artmesh.Agent) (blockstore.CollectStats, error) {
	if !caller.Admin {
		return blockstore.CollectStats{}, artmesh.E(artmesh.PermissionDenied, "only an admin agent may run garbage collection")
	}
	return n.collect(ctx)
}

func (n *Node) collect(ctx context.Context) (blockstore.CollectStats, error) {
	n.gcMu.Lock()
	defer n.gcMu.Unlock()
	return n.bs.Collect(ctx, func(ctx context.Context, keep func(cid.Cid)) error {
		roots, err := n.cat.LiveCIDs()
		if err != nil {
			return err
		}
		for _, r := range roots {
			c, err := cid.Decode(r)
			if err != nil {
				return fmt.Errorf("node: catalog holds a bad cid %q: %w", r, err)
			}
			if err := n.content.walk(ctx, c, keep); err != nil {
				return err
			}
		}
		return nil
	})
}

// RepoStat describes the node's block store.
func (n *Node) RepoStat(_ context.Context, caller artmesh.Agent) (blockstore.Stat, error) {
	if !caller.Admin {
		return blockstore.Stat{}, artmesh.E(artmesh.PermissionDenied, "only an admin agent may see the repo's statistics")
	}
	return n.bs.Stat()
}
