// Package catalog is artmesh's Raft-replicated catalog: the single source
// of truth for everything that is not content (artifacts and their version
// chains, metadata, grants, agents and groups).
//
// Writes are typed commands (commands.go) proposed through hashicorp/raft
// and applied by a deterministic state machine (fsm.go) to the state
// (state.go, schema.go), whose tables live in a bbolt file on disk
// (db.go), each applied batch one transaction committed with its index:
// ids and times travel inside the commands, and Apply reads no clock,
// randomness or disk outside the state. A write returns once the local
// state machine has applied it. Reads are served from the local state,
// without a Raft round trip.
//
// The Raft log and stable store are a raft-wal write-ahead log in
// <Dir>/wal, the state is <Dir>/catalog.db, and snapshots are files in
// <Dir>/snapshots: Raft's own snapshots refer to the state file, and a
// member far behind is sent the file itself (fsm.go, snapstore.go).
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"golang.org/x/time/rate"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// WALSegmentSize is the size of a segment of the catalog's Raft log.
// raft-wal preallocates each segment whole (64 MiB by default), which a
// repo on a small filesystem cannot even start with, and which a full disk
// could not give when the log rotates. Segments of 1 MiB still hold about
// a thousand batches of commands each, and one fits in the free space the
// block store leaves (its reserve is at least blockstore.MinReserve), so
// the catalog keeps working (deletes included) when content filled the
// disk.
const WALSegmentSize = 1 << 20

// Config configures a Catalog. Start from DefaultConfig.
type Config struct {
	// Dir holds the Raft log ("wal/"), the state ("catalog.db") and
	// snapshots ("snapshots/").
	Dir string
	// ServerID is this node's Raft server id (the libp2p peer id, once
	// the mesh carries Raft).
	ServerID string
	// Address is this node's Raft address. With no Transport it is the
	// address of the in-memory transport made for a single node; empty
	// picks a random one.
	Address string
	// Transport carries Raft between the members. Nil makes an in-memory
	// transport for a single node without peers.
	Transport raft.Transport
	// Forward sends a write proposed on a follower to the leader. Nil
	// makes such writes fail with Unavailable (a single node never needs
	// it).
	Forward ForwardFunc
	// Logger receives raft's and the log store's messages (raft's Info
	// as Debug). Nil discards them.
	Logger *slog.Logger
	// ApplyTimeout bounds how long a write waits to be taken up by Raft.
	ApplyTimeout time.Duration
	// SnapshotThreshold is how many log entries since the last snapshot
	// make Raft take a new one.
	SnapshotThreshold uint64
	// SnapshotInterval is how often Raft checks whether to take a
	// snapshot (SnapshotThreshold entries since the last). A snapshot
	// refers to the state file and costs next to nothing (fsm.go), so it
	// can be often: it keeps the log short, and a new member gets the
	// state file rather than the whole log to replay.
	SnapshotInterval time.Duration
	// SnapshotRetain is how many snapshots are kept on disk.
	SnapshotRetain int
	// TrailingLogs is how many log entries are kept after a snapshot, so
	// that a slow follower can catch up without a snapshot install.
	TrailingLogs uint64
	// CommitWindow is how long the state machine keeps a write
	// transaction of the state file open for more batches before it
	// commits it (group commit: one commit and its fsyncs for all). A
	// write answers once committed, so it is also the most a write waits
	// for others. 0 commits each batch at once.
	CommitWindow time.Duration
	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout are raft's
	// timing; short values make a single node lead soon after start.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// ObserveApply, when set, is told of every write proposed here once
	// it ends: whether it went to the leader over the mesh (forwarded),
	// how long it took from proposal to result, and its error (a rule it
	// broke, or Unavailable). It is for metrics and must not block.
	ObserveApply func(forwarded bool, d time.Duration, err error)
	// Authenticate finds the agent a credential that came with a
	// forwarded write belongs to, by this node's committed state (the
	// node knows API keys and capability tokens). Nil refuses every
	// forwarded write that carries a credential.
	Authenticate func(ctx context.Context, c Credential) (Principal, error)
	// ObserveRefused, when set, is told of every forwarded write the
	// leader refused for want of authority. It must not block.
	ObserveRefused func()
	// Expedite, when set, is called on the leader with a member that
	// waits to apply an index: a forwarded write's, once committed, or a
	// read index it asked for. The transport should tell it that commit
	// without delay (mesh.PacedTransport.Expedite), and report whether
	// the member has yet to hear of it. It must not block.
	Expedite func(member string, index uint64) bool
}

// logCacheSize is how many of the newest log entries raft keeps in memory
// besides the WAL (raft.LogCache, as Consul does with 512): catalog
// entries are small, mostly below a KiB.
const logCacheSize = 64

// maxAppendEntries is how many log entries Raft sends or writes at once.
const maxAppendEntries = 256

// DefaultConfig returns the configuration of a single node, to which the
// caller adds Dir and ServerID.
func DefaultConfig() Config {
	return Config{
		ApplyTimeout:       10 * time.Second,
		SnapshotThreshold:  8192,
		SnapshotInterval:   10 * time.Second,
		SnapshotRetain:     2,
		TrailingLogs:       10240,
		CommitWindow:       2 * time.Millisecond,
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
	}
}

// Validate reports the first problem of c as an Invalid error.
func (c Config) Validate() error {
	const op = artmesh.Op("catalog.Config")
	switch {
	case c.Dir == "":
		return artmesh.E(op, artmesh.Invalid, "Dir is required")
	case c.ServerID == "":
		return artmesh.E(op, artmesh.Invalid, "ServerID is required")
	case c.ApplyTimeout <= 0:
		return artmesh.E(op, artmesh.Invalid, "ApplyTimeout must be positive")
	case c.SnapshotThreshold == 0:
		return artmesh.E(op, artmesh.Invalid, "SnapshotThreshold must be positive")
	case c.SnapshotRetain < 1:
		return artmesh.E(op, artmesh.Invalid, "SnapshotRetain must be at least 1")
	}
	if err := raft.ValidateConfig(c.raftConfig(nil)); err != nil {
		return artmesh.E(op, artmesh.Invalid, err)
	}
	return nil
}

// raftConfig returns raft's configuration for c.
func (c Config) raftConfig(logger *slog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.ServerID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = commitTimeout
	rc.MaxAppendEntries = maxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = c.SnapshotThreshold
	if c.SnapshotInterval > 0 {
		rc.SnapshotInterval = c.SnapshotInterval
	}
	rc.TrailingLogs = c.TrailingLogs
	if logger != nil {
		rc.Logger = newHCLog(logger, "raft")
	}
	return rc
}

// Catalog is one node's replica of the catalog. Its methods are safe for
// concurrent use.
type Catalog struct {
	cfg   Config
	fsm   *fsm
	raft  *raft.Raft
	trans raft.Transport
	wal   *wal.WAL
	logs  *confLog // the WAL as raft's log store, with the latest configuration's index
	meta  *metadb.BoltMetaDB
	snaps *snapStore

	mu         sync.RWMutex // guards closed and adding to waiters
	closed     bool
	shutdownCh chan struct{} // closed by Close

	// termCommitted is the last term in which this node, as leader,
	// committed an entry of its own (see ReadIndex).
	termCommitted atomic.Uint64
	waiters       sync.WaitGroup // goroutines waiting on raft futures

	closeOnce sync.Once
	closeErr  error

	// notices tells the members of forwarded writes' commits (notice.go).
	notices notices

	// refusedLog limits the warnings about refused forwarded writes: a
	// member may send them in a loop (ObserveRefused counts every one).
	refusedLog *rate.Limiter
}

// Open opens the catalog's log and snapshots in cfg.Dir and starts Raft
// with the state they hold (the latest snapshot is restored at once; later
// entries are applied as a leader commits them, see Bootstrap). A new
// catalog has no members until Bootstrap, or until a leader adds it. ctx
// is checked before starting; restoring a snapshot is not interrupted.
func Open(ctx context.Context, cfg Config) (*Catalog, error) {
	const op = artmesh.Op("catalog.Open")
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, artmesh.E(op, artmesh.Unavailable, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
		cfg.Logger = logger
	}
	walDir := filepath.Join(cfg.Dir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, artmesh.E(op, fmt.Errorf("create raft log folder: %w", err))
	}
	c := &Catalog{cfg: cfg, meta: &metadb.BoltMetaDB{}, shutdownCh: make(chan struct{}), refusedLog: rate.NewLimiter(2, 10)}
	ok := false
	defer func() {
		if !ok {
			c.closeStores()
		}
	}()
	var err error
	c.wal, err = wal.Open(walDir, wal.WithMetaStore(c.meta), wal.WithLogger(newHCLog(logger, "wal")), wal.WithSegmentSize(WALSegmentSize))
	if err != nil {
		return nil, artmesh.E(op, fmt.Errorf("open raft log %s: %w", walDir, err))
	}
	files, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, cfg.SnapshotRetain, newHCLog(logger, "snapshot"))
	if err != nil {
		return nil, artmesh.E(op, fmt.Errorf("open snapshots in %s: %w", cfg.Dir, err))
	}
	c.trans = cfg.Transport
	if c.trans == nil {
		_, c.trans = raft.NewInmemTransport(raft.ServerAddress(cfg.Address))
	}
	if c.fsm, err = newFSM(cfg.Dir); err != nil {
		return nil, artmesh.E(op, err)
	}
	c.fsm.log = logger
	c.fsm.startFlusher(cfg.CommitWindow)
	c.snaps = &snapStore{FileSnapshotStore: files, fsm: c.fsm}
	if c.logs, err = newConfLog(c.wal, c.snaps); err != nil {
		return nil, artmesh.E(op, err)
	}
	// The newest entries stay in memory too: the leader reads each new
	// entry once per member it sends it to, and the entry before the ones
	// it sends (or the last one, idle) at every send.
	cached, err := raft.NewLogCache(logCacheSize, c.logs)
	if err != nil {
		return nil, artmesh.E(op, err)
	}
	c.raft, err = raft.NewRaft(cfg.raftConfig(logger), c.fsm, cached, c.wal, c.snaps, c.trans)
	if err != nil {
		if cfg.Transport == nil {
			_ = c.trans.(raft.WithClose).Close()
		}
		return nil, artmesh.E(op, fmt.Errorf("start raft: %w", err))
	}
	c.snaps.started.Store(true)
	ok = true
	return c, nil
}

// closeStores closes the log store; after a failed Open or after Raft has
// shut down.
func (c *Catalog) closeStores() error {
	var errs []error
	if c.wal != nil {
		errs = append(errs, c.wal.Close())
	}
	// The WAL does not close the meta store it was given.
	errs = append(errs, c.meta.Close())
	if c.fsm != nil {
		errs = append(errs, c.fsm.close())
	}
	return errors.Join(errs...)
}

// Bootstrap makes a new catalog a single-voter cluster of this server, if
// there is no existing state (an existing catalog keeps its members), then
// waits until there is a leader and, when it is this node, until the local
// state has applied the whole log. ctx bounds the wait.
func (c *Catalog) Bootstrap(ctx context.Context) error {
	const op = artmesh.Op("catalog.Bootstrap")
	has, err := raft.HasExistingState(c.wal, c.wal, c.snaps)
	if err != nil {
		return artmesh.E(op, fmt.Errorf("read raft state: %w", err))
	}
	if !has {
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(c.cfg.ServerID),
			Address:  c.trans.LocalAddr(),
		}}}
		if err := c.await(ctx, op, c.raft.BootstrapCluster(conf)); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return err
		}
	}
	if err := c.WaitLeader(ctx); err != nil {
		return err
	}
	if c.raft.State() == raft.Leader {
		if err := c.commitOwnTerm(ctx, op); err != nil {
			return err
		}
		c.termCommitted.Store(c.raft.CurrentTerm())
	}
	return nil
}

// WaitLeader waits until the cluster has a leader that this node knows
// of. ctx bounds the wait; when it ends first the error is Unavailable.
func (c *Catalog) WaitLeader(ctx context.Context) error {
	const op = artmesh.Op("catalog.WaitLeader")
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if c.isClosed() {
			return artmesh.E(op, artmesh.Unavailable, "the catalog is closed", raft.ErrRaftShutdown)
		}
		if addr, _ := c.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return artmesh.E(op, artmesh.Unavailable, "no catalog leader", ctx.Err())
		case <-tick.C:
		}
	}
}

// Close shuts Raft down and closes the log. Writes in flight are waited
// for first; later calls fail with Unavailable. Close is safe to call more
// than once.
func (c *Catalog) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		close(c.shutdownCh)
		c.mu.Unlock()
		// A commit that keeps failing (a full disk) would hold up Raft's
		// shutdown, which waits for the state machine: it gives up now.
		c.fsm.stopRetrying()
		c.waiters.Wait()
		var errs []error
		if err := c.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("shut raft down: %w", err))
		}
		errs = append(errs, c.closeStores())
		if err := errors.Join(errs...); err != nil {
			c.closeErr = artmesh.E(artmesh.Op("catalog.Close"), err)
		}
	})
	return c.closeErr
}

func (c *Catalog) isClosed() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.closed
}

// IsLeader reports whether this node leads the catalog now.
func (c *Catalog) IsLeader() bool { return c.raft.State() == raft.Leader }

// Raft returns the Raft node, for membership changes and observation.
func (c *Catalog) Raft() *raft.Raft { return c.raft }

// TrimResidency drops the state file's pages from the process's resident
// memory (see package residency); the node calls it when its file pages
// pass a budget.
func (c *Catalog) TrimResidency() error { return c.fsm.state().db.trimResidency() }

// AppliedIndex returns the index of the last log entry the local state
// machine has applied (or of the snapshot it was restored from). A node
// that has applied index i reflects every write committed up to i.
func (c *Catalog) AppliedIndex() uint64 { return c.fsm.applied.Load() }

// RejectedEntries returns how many malformed log entries this node's state
// machine has applied as no-ops (and logged) since the process started:
// entries that do not decode, of an unknown type, or envelopes wrapping
// such. Every replica rejects the same entries; it is for metrics.
func (c *Catalog) RejectedEntries() uint64 { return c.fsm.rejected.Load() }

// LastIndex returns the index of the last entry in the local Raft log,
// applied or not.
func (c *Catalog) LastIndex() uint64 { return c.raft.LastIndex() }

// timeout returns how long Raft may take to accept a proposal: the
// ApplyTimeout, or less if ctx ends sooner.
func (c *Catalog) timeout(ctx context.Context) time.Duration {
	t := c.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		t = min(t, max(time.Until(d), time.Millisecond))
	}
	return t
}

// unavailable maps a Raft failure to an Unavailable error.
func unavailable(op artmesh.Op, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return artmesh.E(op, artmesh.Unavailable, "this node is not the catalog leader", err)
	case errors.Is(err, raft.ErrLeadershipLost):
		return artmesh.E(op, artmesh.Unavailable, "the catalog leader lost its leadership", err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return artmesh.E(op, artmesh.Unavailable, "the catalog is shut down", err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return artmesh.E(op, artmesh.Unavailable, "the catalog is too busy to take the write", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return artmesh.E(op, artmesh.Unavailable, "gave up waiting for the catalog", err)
	}
	return artmesh.E(op, artmesh.Unavailable, err)
}

// outcomeUnknown turns the failure of a write that Raft may have taken
// (appended to the leader's log, where it may still commit: a lost
// leadership, a shutdown, a caller that stopped waiting, a commit this
// node did not apply in time) into an OutcomeUnknown error. A write that
// Raft certainly did not take (this node was not the leader, its queue
// was full) stays Unavailable, and a refusal keeps its kind.
func outcomeUnknown(op artmesh.Op, err error) error {
	if artmesh.KindOf(err) != artmesh.Unavailable || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrEnqueueTimeout) {
		return err
	}
	return artmesh.E(op, artmesh.OutcomeUnknown, artmesh.Message(err)+"; the write may or may not have taken effect: send it again with the same Idempotency-Key (or read before you retry it)", err)
}

// awaitWrite waits for the result of a write that f proposed (see
// awaitResponse); a failure after Raft may have taken it is
// OutcomeUnknown.
func (c *Catalog) awaitWrite(ctx context.Context, op artmesh.Op, f raft.ApplyFuture) (any, error) {
	resp, err := c.awaitResponse(ctx, op, f, true)
	if err != nil {
		return nil, outcomeUnknown(op, err)
	}
	return resp, nil
}

// await waits until f is done or ctx ends. The wait happens in a goroutine
// that Close waits for, so that a caller can give up without leaving it
// behind.
func (c *Catalog) await(ctx context.Context, op artmesh.Op, f raft.Future) error {
	_, err := c.awaitResponse(ctx, op, f, false)
	return err
}

func (c *Catalog) awaitResponse(ctx context.Context, op artmesh.Op, f raft.Future, response bool) (any, error) {
	type outcome struct {
		resp any
		err  error
	}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return nil, unavailable(op, raft.ErrRaftShutdown)
	}
	c.waiters.Add(1)
	c.mu.RUnlock()
	done := make(chan outcome, 1)
	go func() {
		defer c.waiters.Done()
		var o outcome
		if o.err = f.Error(); o.err == nil && response {
			o.resp = f.(raft.ApplyFuture).Response()
		}
		done <- o
	}()
	select {
	case o := <-done:
		if o.err != nil {
			return nil, unavailable(op, o.err)
		}
		// The result is known once the entry is applied; its effect can
		// be read once the batch is committed (see fsm.go).
		if af, ok := f.(raft.IndexFuture); ok && response {
			if err := c.waitApplied(ctx, op, af.Index()); err != nil {
				return nil, err
			}
		}
		return o.resp, nil
	case <-ctx.Done():
		return nil, unavailable(op, ctx.Err())
	}
}

// propose is the one way a write reaches the log: it encodes cmd, applies
// it through Raft when this node is the leader and returns the state
// machine's result once the local state has applied it. A rule the write
// broke comes back as the state machine's error. On a follower it forwards
// the write to the leader through Config.Forward (see forward.go), or, with
// no Forward, fails with Unavailable wrapping raft.ErrNotLeader.
func (c *Catalog) propose(ctx context.Context, cmd command) (_ any, err error) {
	var forwarded bool
	op := artmesh.Op("catalog." + cmd.commandType().String())
	if err := ctx.Err(); err != nil {
		return nil, unavailable(op, err)
	}
	data, err := encodeCommand(cmd)
	if err != nil {
		return nil, artmesh.E(op, artmesh.Invalid, err)
	}
	key := IdempotencyOf(ctx)
	if data, err = conditionEntry(ctx, op, data); err != nil {
		return nil, err
	}
	conditional := commandType(data[0]) == conditionalType
	if data, err = keyEntry(ctx, op, data); err != nil {
		return nil, err
	}
	// Every member must know the envelopes before any goes to the log,
	// forwarded or not: a member that does not would skip the write.
	for t, used := range map[commandType]bool{keyedType: commandType(data[0]) == keyedType, conditionalType: conditional} {
		if used {
			if err := c.fsm.state().checkKnown(op, t); err != nil {
				return nil, err
			}
		}
	}
	if len(data) > raft.SuggestedMaxDataSize {
		return nil, artmesh.E(op, artmesh.TooLarge,
			fmt.Sprintf("the write is %d bytes encoded; at most %d fit in one catalog entry", len(data), raft.SuggestedMaxDataSize))
	}
	if c.isClosed() {
		return nil, unavailable(op, raft.ErrRaftShutdown)
	}
	if obs := c.cfg.ObserveApply; obs != nil {
		start := time.Now()
		defer func() { obs(forwarded, time.Since(start), err) }()
	}
	if c.raft.State() != raft.Leader && c.cfg.Forward != nil {
		forwarded = true
		return c.forward(ctx, op, data)
	}
	if c.raft.State() != raft.Leader {
		msg := "this node is not the catalog leader"
		if addr, id := c.raft.LeaderWithID(); addr != "" {
			msg += fmt.Sprintf(" (the leader is %s at %s)", id, addr)
		}
		return nil, artmesh.E(op, artmesh.Unavailable, msg, raft.ErrNotLeader)
	}
	if err := c.fsm.state().checkKnown(op, cmd.commandType()); err != nil {
		return nil, err
	}
	resp, err := c.awaitWrite(ctx, op, c.raft.Apply(data, c.timeout(ctx)))
	if err != nil {
		return nil, err
	}
	if err, ok := resp.(error); ok {
		return nil, err
	}
	if r, ok := resp.(keyReplay); ok {
		if key != nil {
			key.replayed.Store(true)
		}
		if len(r.value) == 0 {
			return nil, nil
		}
		return r.value, nil
	}
	return resp, nil
}

// proposeAs proposes cmd and returns its result as a T.
func proposeAs[T any](ctx context.Context, c *Catalog, cmd command) (T, error) {
	var zero T
	resp, err := c.propose(ctx, cmd)
	if err != nil {
		return zero, err
	}
	if raw, ok := resp.(json.RawMessage); ok {
		// A forwarded write's result, as the leader encoded it.
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return zero, artmesh.E(artmesh.Op("catalog."+cmd.commandType().String()), fmt.Errorf("decode the leader's result: %w", err))
		}
		return v, nil
	}
	v, ok := resp.(T)
	if !ok {
		return zero, artmesh.E(artmesh.Op("catalog."+cmd.commandType().String()),
			fmt.Errorf("catalog: state machine answered %T, want %T", resp, zero))
	}
	return v, nil
}

// ----- writes -----

func invalid(op artmesh.Op, format string, args ...any) error {
	return errorf(op, artmesh.Invalid, format, args...)
}

// checkTime checks that a command's time is set and returns it in UTC.
func checkTime(op artmesh.Op, t time.Time) (time.Time, error) {
	if t.IsZero() {
		return t, invalid(op, "the time of the write is required")
	}
	return t.UTC(), nil
}

// CreateArtifact creates an artifact with its first version (number 1,
// made by the owner). Its id, name, owner, CID and time are required; the
// owner must be an agent (else Invalid); an existing id is a Conflict.
func (c *Catalog) CreateArtifact(ctx context.Context, cmd CreateArtifact) (artmesh.Artifact, error) {
	const op = artmesh.Op("catalog.CreateArtifact")
	var err error
	if err := cmd.check(); err != nil {
		return artmesh.Artifact{}, err
	}
	if cmd.At, err = checkTime(op, cmd.At); err != nil {
		return artmesh.Artifact{}, err
	}
	return proposeAs[artmesh.Artifact](ctx, c, cmd)
}

// AddVersion appends a version to an artifact and returns the artifact
// as of it: its number is one more than any number the artifact ever had,
// its parent is the current version, its content type the given one or
// else the current one, and its metadata the current metadata with the
// given keys merged over it (null removes a key). NotFound if the
// artifact is gone.
func (c *Catalog) AddVersion(ctx context.Context, cmd AddVersion) (artmesh.Artifact, error) {
	const op = artmesh.Op("catalog.AddVersion")
	var err error
	if err := cmd.check(); err != nil {
		return artmesh.Artifact{}, err
	}
	if cmd.At, err = checkTime(op, cmd.At); err != nil {
		return artmesh.Artifact{}, err
	}
	return proposeAs[artmesh.Artifact](ctx, c, cmd)
}

// DeleteVersion removes one version of an artifact and returns the
// artifact, whose current state is then that of its highest remaining
// version. NotFound if there is no such version; Conflict if it is the
// only one left (delete the artifact instead).
func (c *Catalog) DeleteVersion(ctx context.Context, cmd DeleteVersion) (artmesh.Artifact, error) {
	const op = artmesh.Op("catalog.DeleteVersion")
	if !artmesh.ValidArtifactID(string(cmd.ArtifactID)) || cmd.Version < 1 {
		return artmesh.Artifact{}, errorf(op, artmesh.NotFound, "artifact %s has no version %d", cmd.ArtifactID, cmd.Version)
	}
	var err error
	if cmd.At, err = checkTime(op, cmd.At); err != nil {
		return artmesh.Artifact{}, err
	}
	return proposeAs[artmesh.Artifact](ctx, c, cmd)
}

// DeleteArtifact removes an artifact with all its versions and grants.
// NotFound if it does not exist.
func (c *Catalog) DeleteArtifact(ctx context.Context, id artmesh.ArtifactID) error {
	if !artmesh.ValidArtifactID(string(id)) {
		return errorf("catalog.DeleteArtifact", artmesh.NotFound, "artifact %s not found", id)
	}
	_, err := c.propose(ctx, deleteArtifactCmd{ID: id})
	return err
}

// Share lets the agents and the members of the groups read the artifact
// and returns its grants (sorted sets). Invalid if any agent or group does
// not exist; NotFound if the artifact does not.
func (c *Catalog) Share(ctx context.Context, id artmesh.ArtifactID, agents []artmesh.AgentID, groups []string) (artmesh.Access, error) {
	if !artmesh.ValidArtifactID(string(id)) {
		return artmesh.Access{}, errorf("catalog.Share", artmesh.NotFound, "artifact %s not found", id)
	}
	return proposeAs[artmesh.Access](ctx, c, shareCmd{ID: id, Agents: agents, Groups: groups})
}

// Unshare removes grants from the artifact and returns the remaining ones.
// Agents and groups it was not shared with are ignored. NotFound if the
// artifact does not exist.
func (c *Catalog) Unshare(ctx context.Context, id artmesh.ArtifactID, agents []artmesh.AgentID, groups []string) (artmesh.Access, error) {
	if !artmesh.ValidArtifactID(string(id)) {
		return artmesh.Access{}, errorf("catalog.Unshare", artmesh.NotFound, "artifact %s not found", id)
	}
	return proposeAs[artmesh.Access](ctx, c, unshareCmd{ID: id, Agents: agents, Groups: groups})
}

// CreateAgent creates an agent with an API key hash (empty: no key yet)
// and makes it a member of cmd.Agent.Groups, creating the groups that do
// not exist. Conflict if the id exists or another agent has the hash.
func (c *Catalog) CreateAgent(ctx context.Context, cmd CreateAgent) (artmesh.Agent, error) {
	const op = artmesh.Op("catalog.CreateAgent")
	if err := cmd.check(); err != nil {
		return artmesh.Agent{}, err
	}
	var err error
	if cmd.Agent.CreatedAt, err = checkTime(op, cmd.Agent.CreatedAt); err != nil {
		return artmesh.Agent{}, err
	}
	return proposeAs[artmesh.Agent](ctx, c, cmd)
}

// DeleteAgent removes an agent, its memberships and the grants to it.
// NotFound if absent; Conflict while it still owns artifacts.
func (c *Catalog) DeleteAgent(ctx context.Context, id artmesh.AgentID) error {
	_, err := c.propose(ctx, deleteAgentCmd{ID: id})
	return err
}

// SetAgentKey replaces all of the agent's API key hashes with keyHash
// (key rotation). NotFound if the agent does not exist; Conflict if
// another agent has the hash.
func (c *Catalog) SetAgentKey(ctx context.Context, id artmesh.AgentID, keyHash string) error {
	if keyHash == "" {
		return invalid("catalog.SetAgentKey", "the API key hash is required")
	}
	_, err := c.propose(ctx, setAgentKeyCmd{ID: id, KeyHash: keyHash})
	return err
}

// PutGroup creates a group or replaces its members. Invalid if a member
// is not an agent.
func (c *Catalog) PutGroup(ctx context.Context, name string, members []artmesh.AgentID) (artmesh.Group, error) {
	return c.putGroup(ctx, putGroupCmd{Name: name, Members: members})
}

// CreateGroup creates a group, and refuses (PermissionDenied) if it
// exists by the time the write applies: what a node agent may do.
func (c *Catalog) CreateGroup(ctx context.Context, name string, members []artmesh.AgentID) (artmesh.Group, error) {
	return c.putGroup(ctx, putGroupCmd{Name: name, Members: members, CreateOnly: true})
}

func (c *Catalog) putGroup(ctx context.Context, cmd putGroupCmd) (artmesh.Group, error) {
	if err := cmd.check(); err != nil {
		return artmesh.Group{}, err
	}
	return proposeAs[artmesh.Group](ctx, c, cmd)
}

// DeleteGroup removes a group and the grants to it. NotFound if absent.
func (c *Catalog) DeleteGroup(ctx context.Context, name string) error {
	_, err := c.propose(ctx, deleteGroupCmd{Name: name})
	return err
}

// ----- reads -----

// Artifact returns an artifact as of its current version. NotFound if it
// does not exist.
func (c *Catalog) Artifact(id artmesh.ArtifactID) (artmesh.Artifact, error) {
	return c.fsm.state().artifact(id)
}

// Versions returns an artifact's versions, oldest first. NotFound if the
// artifact does not exist.
func (c *Catalog) Versions(id artmesh.ArtifactID) ([]artmesh.Version, error) {
	return c.fsm.state().versions(id)
}

// Version returns version n of an artifact, or its current version when
// n is 0. NotFound if there is no such artifact or version.
func (c *Catalog) Version(id artmesh.ArtifactID, n int) (artmesh.Version, error) {
	return c.fsm.state().version(id, n)
}

// Access returns an artifact's owner and grants. NotFound if it does not
// exist.
func (c *Catalog) Access(id artmesh.ArtifactID) (artmesh.Access, error) {
	return c.fsm.state().access(id)
}

// List returns a page of owner's artifacts that pass f, newest first.
// Name and content type match exactly, every metadata condition must
// hold (artmesh.MetaMatch.Matches); Limit 0 means
// artmesh.DefaultListLimit and is capped at artmesh.MaxListLimit.
// f.Cursor (a page's NextCursor) continues after that page's last
// artifact by seeking the index; NextCursor is set when a match follows
// the page. Total is set only without conditions (from the owned count):
// a page reads its own matches and one more, never all of them. An
// f.Cursor that is not a cursor is Invalid.
func (c *Catalog) List(owner artmesh.AgentID, f artmesh.Filter) (artmesh.Page[artmesh.Artifact], error) {
	return c.fsm.state().list(owner, f)
}

// ListShared returns a page of the artifacts that are shared with agent,
// directly or through a group it is a member of, and that it does not
// own; with the filters, order and paging of List.
func (c *Catalog) ListShared(agent artmesh.AgentID, f artmesh.Filter) (artmesh.Page[artmesh.Artifact], error) {
	return c.fsm.state().listShared(agent, f)
}

// CanRead reports whether agent may read an artifact: it is the owner, a
// grantee, or a member of a group the artifact is shared with.
func (c *Catalog) CanRead(agent artmesh.AgentID, id artmesh.ArtifactID) bool {
	return c.fsm.state().canRead(agent, id)
}

// AgentByKeyHash returns the agent that has an API key with this hash.
// NotFound if none does.
func (c *Catalog) AgentByKeyHash(hash string) (artmesh.Agent, error) {
	return c.fsm.state().agentByKeyHash(hash)
}

// Agent returns an agent, with its groups. NotFound if it does not exist.
func (c *Catalog) Agent(id artmesh.AgentID) (artmesh.Agent, error) {
	return c.fsm.state().agent(id)
}

// Agents returns every agent, sorted by id.
func (c *Catalog) Agents() ([]artmesh.Agent, error) {
	return c.fsm.state().agents()
}

// Group returns a group. NotFound if it does not exist.
func (c *Catalog) Group(name string) (artmesh.Group, error) {
	return c.fsm.state().group(name)
}

// Groups returns every group, sorted by name.
func (c *Catalog) Groups() ([]artmesh.Group, error) {
	return c.fsm.state().groups()
}
