// Package node is one running artmesh node, the composition root: it opens
// the block store, the mesh host and the catalog and wires them, checks
// every caller's rights before a write is proposed, runs the background
// loops (catch-up, garbage collection, placement, allocation and the others
// that Open starts; see reconcile.go), and is the Go API that package api
// serves over HTTP. Chunking, import and export are package node/content's;
// fetching verified blocks from members is node/exchange's; upload staging
// files are node/uploads'. Nothing above node touches Raft or the block
// store directly.
package node

import (
	"golang.org/x/time/rate"

	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/blockstore"
	"github.com/artmesh/artmesh/node/content"
	"github.com/artmesh/artmesh/node/exchange"
	"github.com/artmesh/artmesh/node/membership"
	"github.com/artmesh/artmesh/node/repo"
	"github.com/artmesh/artmesh/node/uploads"
)

// Config is what Open needs to run a node.
type Config struct {
	// Repo is the node's repo folder, made by repo.Init.
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
	// Listen overrides the repo's mesh listen addresses, when set.
	Listen []string
	// DeadVoterAfter is how long a voter may be unreachable before the
	// leader demotes it to nonvoter and gives its vote to a reachable
	// nonvoter. Zero means DefaultDeadVoterAfter.
	DeadVoterAfter time.Duration
	// DeadMemberAfter is how long a member may be unreachable before the
	// leader removes it from the mesh. Zero means DefaultDeadMemberAfter.
	DeadMemberAfter time.Duration
	// BitswapRootTimeout is how long the bitswap fallback waits for the
	// root block before it gives up. Zero means 15 s.
	BitswapRootTimeout time.Duration
	// JanitorInterval is how often expired uploads and tokens are swept.
	// Zero means DefaultJanitorInterval.
	JanitorInterval time.Duration
	// DeadHolderAfter is how long a member may be unreachable before the
	// leader allocates its copies elsewhere. Zero means
	// DefaultDeadHolderAfter.
	DeadHolderAfter time.Duration
	// CacheSize is how many bytes of content that this node neither holds
	// nor has pinned (read here, fetched from others) it keeps, least
	// recently used first out. Zero means DefaultCacheSize; negative
	// keeps none.
	CacheSize int64
	// ReplicateTimeout bounds how long a write with replicas=N waits for
	// the other members to hold its blocks. Zero means
	// DefaultReplicateTimeout.
	ReplicateTimeout time.Duration
	// ScrubRate is how many bytes a second the background scrubber reads
	// and hashes. Zero means DefaultScrubRate; negative turns the
	// background scrubber off (repo verify still runs a pass).
	ScrubRate int64
	// ScrubEvery is how long after a scrub pass started the next one
	// starts. Zero means DefaultScrubEvery.
	ScrubEvery time.Duration
	// ReadOpenTimeout is how long a read waits for the first block of
	// content that is not here before it fails with 503. Zero means
	// DefaultReadOpenTimeout.
	ReadOpenTimeout time.Duration
	// ReadStallTimeout is how long a read waits for a block whose fetch
	// makes no progress before it fails (after the headers: the body is
	// cut short). Zero means exchange.DefaultStall.
	ReadStallTimeout time.Duration
	// DiskReserve is how many bytes of the block store's filesystem
	// writes leave free; a write that would leave less fails with
	// artmesh.InsufficientStorage (507). Zero means the smaller of 2 % of
	// the filesystem and 1 GiB (blockstore.DefaultReserve); negative keeps
	// none.
	DiskReserve int64
	// EagerCopyMax is the largest write, in bytes, that is also pushed to
	// the members its factor asks for beyond the write's own replicas, as
	// extra copies that cost the write little (see pushFan). Zero means
	// DefaultEagerCopyMax; negative turns extra copies off.
	EagerCopyMax int64
}

// DefaultEagerCopyMax is the default of Config.EagerCopyMax: what one
// member's push queue holds, so that an extra copy never makes a write
// wait.
const DefaultEagerCopyMax = pushQueue * 256 << 10

// DefaultReplicateTimeout is the default of Config.ReplicateTimeout.
const DefaultReplicateTimeout = 5 * time.Minute

// DefaultJanitorInterval is the default of Config.JanitorInterval.
const DefaultJanitorInterval = time.Minute

// DefaultGCDelay is the default of Config.GCDelay.
const DefaultGCDelay = 2 * time.Second

// Node is a running node. Its methods are safe for concurrent use.
type Node struct {
	// afterMarkChanges, when a test sets it, runs in a collection's mark
	// once the catalog's changes since its first read are taken: a write
	// there is one that no read of the mark saw.
	afterMarkChanges func()
	// staleCache holds the reads of the broken read path of test builds
	// (see staleReads); real builds never use it.
	staleCache sync.Map

	cfg     Config
	rc      repo.Config
	log     *slog.Logger
	peerID  peer.ID
	lock    *os.File
	bs      *blockstore.Store
	content *content.Store
	cat     *catalog.Catalog
	host    host.Host
	meshKey mesh.Key
	roster  *membership.Roster // who may use the mesh: the members
	// missLimit bounds the leader round trips that lookups which miss
	// (unknown keys, tokens, ids) may cost.
	missLimit *rate.Limiter
	admit     *mesh.Admission
	members   *membership.Manager // join, members, invites, voters; keeps roster current
	trans     *mesh.PacedTransport
	streams   *mesh.StreamLayer
	raftRef   atomic.Pointer[raft.Raft] // the catalog's Raft, once it runs, for raftRole
	fetcher   *exchange.Exchange
	metrics   *Metrics // the node's own Prometheus registry

	runCtx  context.Context // ends when the node closes
	started time.Time
	key     ed25519.PrivateKey // the node's identity key, which signs tokens
	skew    time.Duration

	staging *uploads.Area // staging files of open uploads
	apiURL  atomic.Value  // string

	caughtUp    atomic.Bool   // the catalog applied the leader's commit index since start
	caughtUpCh  chan struct{} // closed when caughtUp is set
	collectKick chan struct{}
	placeKick   chan struct{}
	fetchKick   chan struct{}     // the exchange's serving set may have changed
	gcMu        sync.Mutex        // one collection at a time
	verified    cidMap[struct{}]  // DAGs checked complete here
	cache       cidMap[time.Time] // when content kept only as a cache was last read
	pending     pendingSet        // content pushed here by writes with replicas=N
	reading     refCounts         // content being read, by root
	feeds       streamCounts      // open event streams, by agent
	placing     fetchStates
	placeSem    chan struct{}     // bounds placement fetches of large content
	smallSem    chan struct{}     // bounds placement fetches of small content
	held        heldCache         // bytes held by each member, for picking copies
	connecting  atomic.Bool       // connectSoon is under way
	copyFailed  cidMap[time.Time] // members kept out of extra copies, until
	seen        lastSeen          // the allocator's view of reachability
	fullLogged  atomic.Int64      // when a fetch refused for lack of disk space was last logged, in Unix ns
	placeView   view              // the placement reconciler's, its loop's only
	placeAll    atomic.Bool       // the next placement run looks at every version
	scrub       scrubber
	allocView   allocView // the allocator's, its loop's only
	stop        context.CancelFunc
	wg          sync.WaitGroup

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
	if cfg.BitswapRootTimeout <= 0 {
		cfg.BitswapRootTimeout = 15 * time.Second
	}
	if cfg.DeadVoterAfter <= 0 {
		cfg.DeadVoterAfter = DefaultDeadVoterAfter
	}
	if cfg.DeadMemberAfter <= 0 {
		cfg.DeadMemberAfter = DefaultDeadMemberAfter
	}
	if cfg.DeadHolderAfter <= 0 {
		cfg.DeadHolderAfter = DefaultDeadHolderAfter
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	} else if cfg.CacheSize < 0 {
		cfg.CacheSize = 0
	}
	if cfg.ReplicateTimeout <= 0 {
		cfg.ReplicateTimeout = DefaultReplicateTimeout
	}
	if cfg.ScrubRate == 0 {
		cfg.ScrubRate = DefaultScrubRate
	}
	if cfg.ScrubEvery <= 0 {
		cfg.ScrubEvery = DefaultScrubEvery
	}
	if cfg.ReadOpenTimeout <= 0 {
		cfg.ReadOpenTimeout = DefaultReadOpenTimeout
	}
	if cfg.ReadStallTimeout <= 0 {
		cfg.ReadStallTimeout = exchange.DefaultStall
	}
	if cfg.EagerCopyMax == 0 {
		cfg.EagerCopyMax = DefaultEagerCopyMax
	}
	rc, err := repo.ReadConfig(cfg.Repo)
	if err != nil {
		return nil, err
	}
	if cfg.APIAddr != "" {
		rc.APIAddr = cfg.APIAddr
	}
	lock, err := repo.Lock(cfg.Repo)
	if err != nil {
		return nil, err
	}
	priv, id, err := repo.ReadIdentity(cfg.Repo)
	if err != nil {
		lock.Close()
		return nil, err
	}
	rawKey, err := priv.Raw()
	if err != nil || len(rawKey) != ed25519.PrivateKeySize {
		lock.Close()
		return nil, fmt.Errorf("node: the identity key is not an Ed25519 key")
	}
	if len(cfg.Listen) > 0 {
		rc.Listen = cfg.Listen
	}
	if _, err := repo.ParseRaftTimeout(rc.RaftTimeout); err != nil {
		lock.Close()
		return nil, fmt.Errorf("node: %s: %w", filepath.Join(cfg.Repo, repo.ConfigFile), err)
	}
	meshKey, err := repo.ReadMeshKey(cfg.Repo)
	if err != nil {
		lock.Close()
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	n := &Node{
		missLimit: rate.NewLimiter(missRate, missBurst),
		cfg:       cfg,
		rc:        rc,
		log:       cfg.Logger,
		peerID:    id,
		lock:      lock,
		meshKey:   meshKey,
		started:   time.Now(),
		key:       ed25519.PrivateKey(rawKey),
		skew:      cfg.TokenSkew,
		stop:      stop,
		runCtx:    runCtx,

		verified:    cidMap[struct{}]{limit: maxVerified},
		caughtUpCh:  make(chan struct{}),
		collectKick: make(chan struct{}, 1),
		placeKick:   make(chan struct{}, 1),
		fetchKick:   make(chan struct{}, 1),
		placeSem:    make(chan struct{}, maxPlacementFetches),
		smallSem:    make(chan struct{}, maxSmallPlacementFetches),
	}
	n.metrics = newMetrics(n)
	n.apiURL.Store("http://" + rc.APIAddr)
	n.staging = n.newStaging()
	if err := n.open(ctx, priv); err != nil {
		n.closeParts()
		stop()
		return nil, err
	}
	n.wg.Add(9)
	go n.residencyLoop(runCtx)
	go n.catchUpLoop(runCtx)
	go n.scrubLoop(runCtx)
	go n.janitorLoop(runCtx)
	go func() {
		defer n.wg.Done()
		n.members.Run(runCtx) // the membership reconciler
	}()
	// The first collection runs once the catalog has caught up: it frees
	// what an earlier run left half-written (an import killed mid-way
	// leaves unreferenced bytes in a pack).
	gcDelay := max(n.cfg.GCDelay, 0)
	go n.reconcileLoop(runCtx, "garbage collection", catalog.TopicDeletes|catalog.TopicReleases,
		n.collectKick, collectInterval, gcDelay, func(ctx context.Context) error {
			if n.cfg.GCDelay < 0 {
				return nil
			}
			_, err := n.collect(ctx)
			return err
		})
	go n.reconcileLoop(runCtx, "placement", catalog.TopicContent|catalog.TopicPlacement|catalog.TopicPins|catalog.TopicPolicy|catalog.TopicMembers,
		n.placeKick, 15*time.Second, time.Second, n.place)
	go n.reconcileLoop(runCtx, "allocation", catalog.TopicContent|catalog.TopicPlacement|catalog.TopicPolicy|catalog.TopicMembers,
		nil, 2*time.Second, time.Second, n.allocate)
	go n.reconcileLoop(runCtx, "fetching rows", catalog.TopicFetching|catalog.TopicMembers,
		n.fetchKick, 5*time.Second, 0, n.reportFetching)
	return n, nil
}

// open starts the parts of the node in order: the block store, the mesh
// host, the catalog over it; then joins or waits for the catalog.
func (n *Node) open(ctx context.Context, priv crypto.PrivKey) error {
	var err error
	if n.bs, err = blockstore.Open(filepath.Join(n.cfg.Repo, repo.BlocksDir), blockstore.Options{
		NoSync: n.cfg.NoSync, Reserve: n.cfg.DiskReserve, OnCorrupt: n.onCorrupt, SkipReadChecks: skipReadChecks(),
	}); err != nil {
		return err
	}
	mcfg := mesh.DefaultConfig()
	mcfg.Identity, mcfg.Key, mcfg.Listen = priv, n.meshKey, n.rc.Listen
	n.roster = membership.NewRoster(n.peerID)
	n.admit = mesh.NewAdmission(membership.JoinProtocol, membership.StatusProtocol)
	n.admit.SetMember(n.roster.Has)
	mcfg.Admission = n.admit
	if n.host, err = mesh.NewHost(mcfg); err != nil {
		return err
	}
	n.streams = mesh.NewStreamLayer(n.host, n.raftRole, n.log.With("component", "raft-gate"))
	n.trans = &mesh.PacedTransport{NetworkTransport: raft.NewNetworkTransport(n.streams, 3, 10*time.Second, io.Discard),
		Every: nonvoterPace, BeatEvery: nonvoterBeat, Paced: n.nonvoter}
	ccfg := catalog.DefaultConfig()
	ccfg.Dir = filepath.Join(n.cfg.Repo, repo.RaftDir)
	ccfg.ServerID = n.peerID.String()
	ccfg.Address = n.peerID.String()
	ccfg.Transport = n.trans
	ccfg.Forward = n.forward
	ccfg.Logger = n.log.With("component", "catalog")
	ccfg.ObserveApply = n.metrics.observeApply
	ccfg.Authenticate = n.authenticateForwarded
	ccfg.Expedite = func(member string, index uint64) bool { return n.trans.Expedite(raft.ServerID(member), index) }
	if t, _ := repo.ParseRaftTimeout(n.rc.RaftTimeout); t > 0 {
		// Slower Raft for a small or busy machine (checked in Open).
		ccfg.HeartbeatTimeout, ccfg.ElectionTimeout, ccfg.LeaderLeaseTimeout = t, t, t/2
	}
	if n.cat, err = catalog.Open(ctx, ccfg); err != nil {
		return err
	}
	n.members = membership.New(membership.Config{
		Authenticate: n.authenticateForwarded,
		Self:         n.peerID, Host: n.host, Catalog: n.cat, Roster: n.roster, Admission: n.admit,
		Repo: n.cfg.Repo, Member: n.rc.Member, Voters: n.rc.Voters, MeshKey: n.meshKey,
		APIURL:          func() string { return n.apiURL.Load().(string) },
		CaughtUp:        n.CaughtUp,
		CallLeader:      n.callLeader,
		Placement:       n.memberPlacement,
		DeadVoterAfter:  n.cfg.DeadVoterAfter,
		DeadMemberAfter: n.cfg.DeadMemberAfter,
		Removed:         n.rc.Removed,
		Log:             n.log,
	})
	n.members.AdmitListed()
	// The Raft gate hears no one before this (raftRole): raft retries.
	n.raftRef.Store(n.cat.Raft())
	n.fetcher = exchange.New(exchange.Config{
		Self: n.peerID, Host: n.host, Store: n.bs, Log: n.log,
		Holders:            n.cat.Holders,
		Fetchers:           n.cat.Fetchers,
		OnFetched:          func() { kick(n.collectKick) },
		OnServing:          func() { kick(n.fetchKick) },
		BitswapRootTimeout: n.cfg.BitswapRootTimeout,
		OnFetchEnd:         n.metrics.observeFetch,
	})
	n.content = content.New(n.bs, n.rc.Chunking, n.fetcher)
	mesh.Serve(n.host, mesh.ApplyProtocol, n.serveApply)
	mesh.ServeGuest(n.host, membership.JoinProtocol, n.members.ServeJoin)
	mesh.Serve(n.host, membership.RemoveProtocol, n.members.ServeRemove)
	mesh.ServeGuest(n.host, membership.StatusProtocol, n.members.ServeStatus)
	mesh.Serve(n.host, ReadIndexProtocol, n.serveReadIndex)
	mesh.ServeTimeout(n.host, ReplicateProtocol, n.cfg.ReplicateTimeout, n.serveReplicate)
	mesh.ServePush(n.host, n.cfg.ReplicateTimeout, n.openPushSink)
	mesh.ServeStreamBench(n.host)
	mesh.ServeDAG(n.host, func(ctx context.Context, c cid.Cid) ([]byte, error) {
		blk, err := n.bs.Get(ctx, c)
		if err != nil {
			return nil, err
		}
		return blk.RawData(), nil
	}, tamper())
	n.members.LoadSaved()
	if r := n.rc.Removed; r != nil {
		// Removed from its mesh at an earlier run: never campaign again.
		if err := n.cat.StopRaft(); err != nil {
			return err
		}
		n.log.Error("this node was removed from its mesh: it serves nothing and takes no part in the catalog any more",
			"peer_id", n.peerID.String(), "found_out_at", r.At, "reason", r.Reason, "rejoin", membership.RejoinHint)
		return nil
	}
	if n.rc.Join != nil {
		return n.members.Join(ctx, n.rc.Join)
	}
	servers, err := n.cat.Servers()
	if err != nil {
		return err
	}
	if n.rc.Member && len(servers) == 0 {
		// This node joined a mesh, but its catalog state is gone (an
		// emptied or moved-aside Raft folder). It must never bootstrap a
		// catalog of its own: the leader still lists it and sends it the
		// log or a snapshot. Its blocks stay: nothing is collected until
		// the catalog has caught up with the leader.
		n.log.Warn("this node is a mesh member without catalog state: waiting for the leader to send it (nothing is collected until then)")
		return nil
	}
	if len(servers) <= 1 && !n.rc.Member {
		// A single node (or a repo from before the mesh): bootstrap keeps
		// an existing catalog's members, waits for a leader and for the
		// local state to have applied the whole log.
		if err := n.cat.Bootstrap(ctx); err != nil {
			return fmt.Errorf("node: catalog has no leader: %w", err)
		}
		if n.cat.IsLeader() {
			// Bootstrap has applied the whole log of its own term.
			n.markCaughtUp("bootstrap")
		}
		return nil
	}
	// A member of a larger mesh serves reads from its local copy whether
	// or not a quorum is up; give the mesh a moment to elect.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := n.cat.WaitLeader(wctx); err != nil {
		n.log.Warn("no catalog leader yet: reads are served from the local copy, writes wait for a quorum")
	}
	return nil
}

// closeParts closes what open started, in reverse order.
func (n *Node) closeParts() error {
	var errs []error
	if n.fetcher != nil {
		errs = append(errs, n.fetcher.Shutdown())
	}
	// The stream layer closes before Raft: its Dials wait for members that
	// are down, and Raft's shutdown waits for the calls in flight.
	if n.streams != nil {
		errs = append(errs, n.streams.Close())
	}
	if n.cat != nil {
		errs = append(errs, n.cat.Close())
	}
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	if n.host != nil {
		errs = append(errs, n.host.Close())
	}
	if n.bs != nil {
		errs = append(errs, n.bs.Close())
	}
	n.lock.Close()
	return errors.Join(errs...)
}

// Close stops the node. It is safe to call twice.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.stop()
		n.wg.Wait()
		n.closeErr = n.closeParts()
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
	// Agent is the agent that asked, filled in by the API (GET /v1/node),
	// so that a client learns whom its key signs in as.
	Agent artmesh.AgentID `json:"agent,omitempty"`
}

// Version is the software version a node reports.
const Version = "0.1.0"

// Info returns the node's description.
func (n *Node) Info() Info {
	return Info{
		PeerID:    n.peerID.String(),
		Addresses: n.p2pAddrs(),
		Version:   Version,
		APIURL:    n.apiURL.Load().(string),
		StartedAt: n.started.UTC(),
	}
}

// p2pAddrs returns the node's mesh addresses, each ending in its peer id.
func (n *Node) p2pAddrs() []string {
	out := []string{}
	if n.host == nil {
		return out
	}
	for _, a := range n.host.Addrs() {
		out = append(out, a.String()+"/p2p/"+n.peerID.String())
	}
	return out
}

// Metrics returns the node's metrics: its registry, served at GET
// /metrics, and the counters the HTTP API moves.
func (n *Node) Metrics() *Metrics { return n.metrics }

// APIAddr is the address the HTTP API should listen on.
func (n *Node) APIAddr() string { return n.rc.APIAddr }

// SetAPIListenAddr records where the HTTP API actually listens (the
// configured address may have had port 0), for Info.
func (n *Node) SetAPIListenAddr(addr string) { n.apiURL.Store("http://" + addr) }

// Ready reports whether the node can serve: its catalog has a leader and
// has caught up with it since the node started.
func (n *Node) Ready(ctx context.Context) error {
	if err := n.behind(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := n.cat.WaitLeader(ctx); err != nil {
		return artmesh.E(artmesh.Unavailable, "the catalog has no leader", err)
	}
	return nil
}

// Authenticate returns the agent whose API key this is. Unknown and
// malformed keys are Unauthenticated.
func (n *Node) Authenticate(ctx context.Context, key string) (artmesh.Agent, error) {
	if !acl.WellFormedKey(key) {
		return artmesh.Agent{}, errBadKey
	}
	if err := n.behind(); err != nil {
		// A key made a moment ago may not be known here yet: never say
		// 401 to a valid key while catching up.
		return artmesh.Agent{}, err
	}
	a, err := n.agentByKey(key)
	if errors.Is(err, errBadKey) && n.catchUp(ctx) {
		a, err = n.agentByKey(key)
	}
	return a, err
}

// errBadKey answers an API key that is not any agent's.
var errBadKey = artmesh.E(artmesh.Unauthenticated, "the API key is not valid")

// agentByKey returns the agent whose API key key is, by this node's
// catalog as it is: errBadKey when none is.
func (n *Node) agentByKey(key string) (artmesh.Agent, error) {
	if !acl.WellFormedKey(key) {
		return artmesh.Agent{}, errBadKey
	}
	a, err := n.cat.AgentByKeyHash(acl.HashKey(key))
	if errors.Is(err, artmesh.NotFound) {
		return artmesh.Agent{}, errBadKey
	}
	return a, err
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

// GC runs a collection now (see collect) and reports what it removed.
// Only admins may run it.
func (n *Node) GC(ctx context.Context, caller artmesh.Agent) (blockstore.CollectStats, error) {
	if !caller.ManagesNode(n.peerID.String()) {
		return blockstore.CollectStats{}, artmesh.E(artmesh.PermissionDenied, "only a mesh admin or this node's agent may run garbage collection")
	}
	return n.collect(ctx)
}

// RepoStat describes the node's block store.
func (n *Node) RepoStat(_ context.Context, caller artmesh.Agent) (blockstore.Stat, error) {
	if !caller.ManagesNode(n.peerID.String()) {
		return blockstore.Stat{}, artmesh.E(artmesh.PermissionDenied, "only a mesh admin or this node's agent may see the repo's statistics")
	}
	return n.bs.Stat()
}
