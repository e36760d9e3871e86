package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
)

// Writes proposed on a follower are forwarded to the leader, which applies
// them and answers with the log index and the result; the follower then
// waits until its own state machine has applied that index, so that the
// writer reads its own write on the node it wrote to.

// ForwardFunc sends an encoded write, with the credential of the agent it
// acts for, to the leader at addr and returns the leader's answer. The mesh provides it; Config.Forward holds it.
type ForwardFunc func(ctx context.Context, leader raft.ServerAddress, req ForwardRequest) (ForwardResult, error)

// ForwardResult is the leader's answer to a forwarded write.
type ForwardResult struct {
	// Index is the log index the write was applied at (0 when it never
	// reached the log).
	Index uint64 `json:"index"`
	// Value is the write's result as JSON, when it succeeded.
	Value json.RawMessage `json:"value,omitempty"`
	// Code and Message describe the rule the write broke, when it failed.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Replayed is set when Value is the result of an earlier write with
	// the same idempotency key (see idempotency.go).
	Replayed bool `json:"replayed,omitempty"`
}

// ApplyForwarded applies a write that the member from forwarded. Only the
// leader takes them. The entry is checked to decode before it reaches the
// log, so that no peer can make the replicas stop, and against the
// authority of the agent whose credential came with it (see
// authority.go): a write beyond it is refused with nothing proposed.
func (c *Catalog) ApplyForwarded(ctx context.Context, from string, req ForwardRequest) (ForwardResult, error) {
	const op = artmesh.Op("catalog.ApplyForwarded")
	if c.isClosed() {
		return ForwardResult{}, unavailable(op, raft.ErrRaftShutdown)
	}
	if c.raft.State() != raft.Leader {
		return ForwardResult{}, artmesh.E(op, artmesh.Unavailable, "this node is not the catalog leader", raft.ErrNotLeader)
	}
	// Rights are checked against every write committed so far: the
	// follower may have applied one (a key, a share) that this leader's
	// state machine has not reached yet.
	if err := c.awaitRaftApplied(ctx, op, c.raft.CommitIndex()); err != nil {
		return ForwardResult{}, err
	}
	if err := c.waitApplied(ctx, op, c.fsm.heldIndex()); err != nil { // committed, not only applied
		return ForwardResult{}, err
	}
	if req.Applied > c.raft.LastIndex() {
		// A leader's log holds every committed entry: no member has
		// applied past it.
		return ForwardResult{}, artmesh.E(op, artmesh.Invalid, "the forwarded write says its member applied entries this leader does not have")
	}
	if req.Applied > c.fsm.applied.Load() {
		// A leader elected a moment ago may not have applied what the
		// follower has (until an entry of its own term commits): wait a
		// little, then let the follower try again rather than refuse a
		// key or a right that the follower already knows.
		wctx, cancel := context.WithTimeout(ctx, leaderCatchUp)
		err := c.waitApplied(wctx, op, req.Applied)
		cancel()
		if err != nil {
			return ForwardResult{}, artmesh.E(op, artmesh.Unavailable, "the new leader has not yet applied what this member has", err)
		}
	}
	if err := c.checkShape(op, req.Entry); err != nil {
		return ForwardResult{}, err
	}
	var p *Principal
	if !req.Credential.empty() {
		if c.cfg.Authenticate == nil {
			return ForwardResult{}, artmesh.E(op, artmesh.Unauthenticated, "this leader cannot check credentials")
		}
		pr, err := c.cfg.Authenticate(ctx, req.Credential)
		if err != nil {
			if k := artmesh.KindOf(err); k == artmesh.Unavailable || k == artmesh.Other {
				return ForwardResult{}, err
			}
			return ForwardResult{}, artmesh.E(op, artmesh.Unauthenticated, "the credential that came with the forwarded write is not valid", err)
		}
		p = &pr
	}
	if err := c.fsm.state().authorizeForwarded(req.Entry, from, p, time.Now()); err != nil {
		if c.refusedLog.Allow() {
			c.cfg.Logger.Warn("refused a forwarded catalog write", "member", from, "err", err)
		}
		if c.cfg.ObserveRefused != nil {
			c.cfg.ObserveRefused()
		}
		return ForwardResult{}, err
	}
	res, err := c.propose1(ctx, op, req.Entry)
	if err == nil && res.Index > 0 {
		// The member waits until it has applied the write.
		if c.cfg.Expedite != nil {
			c.cfg.Expedite(from, res.Index)
		}
		c.noticeCommit()
	}
	return res, err
}

// checkShape checks that an entry decodes and applies (in a transaction
// thrown away), keeps its command's input rules and fits in the log.
func (c *Catalog) checkShape(op artmesh.Op, entry []byte) error {
	if err := c.fsm.state().validateEntry(entry); err != nil {
		return artmesh.E(op, artmesh.Invalid, err)
	}
	if err := checkForwarded(entry); err != nil {
		return err
	}
	if len(entry) > raft.SuggestedMaxDataSize {
		return artmesh.E(op, artmesh.TooLarge, "the forwarded write is too large")
	}
	return nil
}

// awaitRaftApplied waits until raft has applied the log up to index
// (raft's own entries included, which the state machine never sees).
// That is at once but for the moment between a commit and its apply.
func (c *Catalog) awaitRaftApplied(ctx context.Context, op artmesh.Op, index uint64) error {
	for wait := 100 * time.Microsecond; c.raft.AppliedIndex() < index; wait = min(2*wait, 10*time.Millisecond) {
		if err := sleepCtx(ctx, wait); err != nil {
			return unavailable(op, err)
		}
		if c.isClosed() {
			return unavailable(op, raft.ErrRaftShutdown)
		}
	}
	return nil
}

// applyOwn proposes a write that this leader took itself and waits for
// its result.
func (c *Catalog) applyOwn(ctx context.Context, op artmesh.Op, entry []byte) (ForwardResult, error) {
	if err := c.checkShape(op, entry); err != nil {
		return ForwardResult{}, err
	}
	return c.propose1(ctx, op, entry)
}

// propose1 proposes a checked entry and waits for its result.
func (c *Catalog) propose1(ctx context.Context, op artmesh.Op, entry []byte) (ForwardResult, error) {
	for _, t := range append(envelopeTypes(entry), innerType(entry)) {
		if err := c.fsm.state().checkKnown(op, t); err != nil {
			// The write's answer, not a failure to reach the leader: the
			// follower does not send it again.
			return ForwardResult{Code: artmesh.KindOf(err).String(), Message: artmesh.Message(err)}, nil
		}
	}
	f := c.raft.Apply(entry, c.timeout(ctx))
	resp, err := c.awaitWrite(ctx, op, f)
	if err != nil {
		return ForwardResult{}, err
	}
	res := ForwardResult{Index: f.Index()}
	if rerr, ok := resp.(error); ok {
		res.Code, res.Message = artmesh.KindOf(rerr).String(), artmesh.Message(rerr)
		return res, nil
	}
	if r, ok := resp.(keyReplay); ok {
		res.Replayed = true
		if len(r.value) > 0 {
			res.Value = r.value
		}
		return res, nil
	}
	if resp != nil {
		if res.Value, err = json.Marshal(resp); err != nil {
			return ForwardResult{}, artmesh.E(op, fmt.Errorf("encode result: %w", err))
		}
	}
	return res, nil
}

// validateEntry checks that a log entry decodes and applies, in a
// transaction that is thrown away. A rule the entry breaks is not an
// error here: it will be the write's result.
func (s *store) validateEntry(entry []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed catalog entry: %v", r)
		}
	}()
	if len(entry) == 0 || !commandType(entry[0]).known() || !innerType(entry).known() {
		return fmt.Errorf("unknown catalog entry type")
	}
	tx := s.db.Txn(true)
	defer tx.Abort()
	if res := applyCommand(tx, entry); isMalformed(res) {
		return res.(error)
	}
	return nil
}

// leaderCatchUp bounds how long a leader waits to apply what a follower
// that forwards a write has applied.
const leaderCatchUp = 2 * time.Second

// forwardRetry bounds how long a forwarded write is retried after the
// leader changed or could not be reached (a pause, an election).
const forwardRetry = 15 * time.Second

// noLeaderFor is how long a forwarded write waits for a leader to be
// elected before it fails.
const noLeaderFor = 3 * time.Second

// forward sends a write to the leader and waits until the local state has
// applied it. The write travels in an envelope with an id (see
// requests.go), so that it can be sent again: when the leader changes
// while it is in flight, the attempt is abandoned at once and the same
// envelope goes to the new leader, which applies it only if no earlier
// attempt was. When it gives up, the error is OutcomeUnknown if any
// attempt may have been taken (sent without an answer, or answered
// OutcomeUnknown), else Unavailable.
func (c *Catalog) forward(ctx context.Context, op artmesh.Op, data []byte) (any, error) {
	env := wrapForwarded(data, time.Now())
	cred := CredentialOf(ctx)
	giveUp := time.Now().Add(forwardRetry)
	var lastErr error
	var leaderless time.Time // since when no leader is known
	uncertain := false       // an attempt may have been taken
	giveUpWith := func(msg string, err error) error {
		if uncertain {
			return artmesh.E(op, artmesh.OutcomeUnknown, msg+"; the write may or may not have taken effect: send it again with the same Idempotency-Key (or read before you retry it)", err)
		}
		return artmesh.E(op, artmesh.Unavailable, msg+"; the write was not applied", err)
	}
	for {
		addr, id := c.raft.LeaderWithID()
		if addr == "" || string(id) == c.cfg.ServerID && c.raft.State() != raft.Leader {
			if leaderless.IsZero() {
				leaderless = time.Now()
			}
			// An election takes about a second; a mesh without a leader
			// for longer has no quorum, and the write fails now.
			if time.Now().After(giveUp) || time.Since(leaderless) > noLeaderFor || ctx.Err() != nil {
				if lastErr != nil {
					return nil, giveUpWith("the catalog leader did not take the write, and there is no leader now", lastErr)
				}
				return nil, artmesh.E(op, artmesh.Unavailable, "the catalog has no leader now (no quorum?)", raft.ErrNotLeader)
			}
			_ = sleepCtx(ctx, 50*time.Millisecond)
			continue
		}
		leaderless = time.Time{}
		var res ForwardResult
		var err error
		if c.raft.State() == raft.Leader {
			// This node leads now: it takes the write it checked itself.
			if c.raft.State() != raft.Leader {
				err = artmesh.E(op, artmesh.Unavailable, "this node is not the catalog leader", raft.ErrNotLeader)
			} else {
				res, err = c.applyOwn(ctx, op, env)
			}
		} else {
			res, err = c.forwardOnce(ctx, addr, ForwardRequest{Entry: env, Credential: cred, Applied: c.fsm.applied.Load()})
		}
		if err == nil {
			if err := c.waitApplied(ctx, op, res.Index); err != nil {
				return nil, outcomeUnknown(op, err) // committed, result unseen
			}
			if res.Code != "" {
				return nil, artmesh.E(op, artmesh.KindFromCode(res.Code), res.Message)
			}
			if res.Replayed {
				if k := IdempotencyOf(ctx); k != nil {
					k.replayed.Store(true)
				}
			}
			if len(res.Value) == 0 {
				return nil, nil
			}
			return res.Value, nil
		}
		switch artmesh.KindOf(err) {
		case artmesh.Unavailable:
		case artmesh.Other, artmesh.OutcomeUnknown:
			// The same envelope may go again: it is applied once.
			uncertain = true
		default:
			return nil, err // the leader refused it for what it is
		}
		lastErr = err
		if ctx.Err() != nil || time.Now().After(giveUp) {
			return nil, giveUpWith(fmt.Sprintf("forwarding the write to the leader %s failed", id), err)
		}
		c.cfg.Logger.Info("retrying a forwarded write", "leader", id, "err", err)
		_ = sleepCtx(ctx, 50*time.Millisecond)
	}
}

// forwardOnce sends env to the leader at addr, abandoning the attempt as
// soon as this node sees another leader.
func (c *Catalog) forwardOnce(ctx context.Context, addr raft.ServerAddress, req ForwardRequest) (ForwardResult, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if now, _ := c.raft.LeaderWithID(); now != "" && now != addr {
					cancel(errLeaderChanged)
					return
				}
			}
		}
	}()
	res, err := c.cfg.Forward(actx, addr, req)
	close(done)
	<-watched
	if err != nil && errors.Is(context.Cause(actx), errLeaderChanged) {
		kind := artmesh.OutcomeUnknown // it may have reached the old leader
		if artmesh.KindOf(err) == artmesh.Unavailable {
			kind = artmesh.Unavailable // it did not
		}
		err = artmesh.E(kind, "the leader changed while the write was in flight", errors.Join(errLeaderChanged, err))
	}
	return res, err
}

// errLeaderChanged ends a forward whose leader is no longer the leader.
var errLeaderChanged = errors.New("catalog: the leader changed")

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// ReadIndex returns, on the leader, an index that covers every write
// acknowledged so far: the leader's commit index, read after the leader
// has committed an entry of its own term (before that, a new leader may
// not know what its predecessor acknowledged) and has confirmed that it
// still leads. A node whose state has applied up to it reads
// linearizably. The entry of its own term is a no-op command, which the
// state machine sees, so that the commit index is always an index that
// the state machines reach (raft's own no-op and barrier entries never
// reach them).
func (c *Catalog) ReadIndex(ctx context.Context) (uint64, error) {
	const op = artmesh.Op("catalog.ReadIndex")
	if c.raft.State() != raft.Leader {
		return 0, artmesh.E(op, artmesh.Unavailable, "this node is not the catalog leader", raft.ErrNotLeader)
	}
	if term := c.raft.CurrentTerm(); c.termCommitted.Load() != term {
		if err := c.commitOwnTerm(ctx, op); err != nil {
			return 0, err
		}
		c.termCommitted.Store(term)
	}
	if err := c.await(ctx, op, c.raft.VerifyLeader()); err != nil {
		return 0, err
	}
	return c.raft.CommitIndex(), nil
}

// commitOwnTerm applies a no-op command and waits until the local state
// has applied it: once it is committed, so is everything a predecessor
// acknowledged, and the local state reflects it.
func (c *Catalog) commitOwnTerm(ctx context.Context, op artmesh.Op) error {
	data, err := encodeCommand(noopCmd{})
	if err != nil {
		return artmesh.E(op, err)
	}
	_, err = c.awaitResponse(ctx, op, c.raft.Apply(data, c.timeout(ctx)), true)
	return err
}
