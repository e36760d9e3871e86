package mesh

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// The Raft gate: Admission lets every member open RaftProtocol, but only
// the servers of this node's Raft configuration may speak Raft to it, and
// each only as itself. The gate sits between a libp2p stream and
// raft.NetworkTransport: a stream of a peer that is not a server is reset
// at once, and every RPC on an accepted stream is read whole and checked
// before raft reads a byte of it (gateConn).
//
// What it does not stop: Raft is not Byzantine-tolerant, and the gate
// trusts the servers' keys. A voter's key can still vote and claim to
// lead, a leader can append anything to the log, and any server can make
// a leader step down by answering its calls with a higher term (answers
// are not checked: raft steps down on purpose when a follower has a newer
// term). RequestVote and RequestPreVote are let through from nonvoters
// (raft grants no vote to one, and bumps its term for one only when it
// knows no leader, so that a voter that missed its own demotion does not
// stall the mesh, hashicorp/raft#526), unless they claim a leadership
// transfer, which would make a leader step down at once. The gate stops peers that are not servers
// and servers that speak for others or claim to lead without a vote.

// RaftRole is what a peer may do in this node's Raft.
type RaftRole uint8

const (
	// RaftNone is a peer that is not a server of this node's Raft
	// configuration: its Raft streams are reset.
	RaftNone RaftRole = iota
	// RaftServer is a server without a vote: it may ask for votes and
	// pre-votes (raft itself refuses to grant them to a nonvoter), but
	// not claim to lead, nor to be the target of a leadership transfer.
	RaftServer
	// RaftVoter is a server whose RPCs may claim to lead
	// (AppendEntries, InstallSnapshot, TimeoutNow).
	RaftVoter
	// RaftNotReady means this node's Raft is not running yet, so nobody
	// is heard: the stream is reset quietly (neither logged as a warning
	// nor counted), and the peer, which retries, is heard once it runs.
	RaftNotReady
)

// RaftRoles returns what p is in this node's latest Raft configuration
// (uncommitted entries included). term is the term of the RPC being
// checked when it claims to lead (AppendEntries, InstallSnapshot,
// TimeoutNow, a RequestVote for a leadership transfer), and 0 for a
// stream being opened or any other RPC: a node may let a peer lead only
// up to a term it knows of (package node, during catch-up). The gate
// calls it for every stream and every RPC, so it must be fast, must not
// block, and must be safe for concurrent use. Package node implements it
// over the catalog's Raft.
type RaftRoles func(p peer.ID, term uint64) RaftRole

// RefusalReason is why the gate refused a Raft stream.
type RefusalReason uint8

// The reasons, the label of the node's refusal counter.
const (
	// RefusedNotServer: the peer is not a server of this node's Raft
	// configuration.
	RefusedNotServer RefusalReason = iota
	// RefusedNotVoter: an RPC that claims to lead (AppendEntries,
	// InstallSnapshot, TimeoutNow), or a RequestVote for a leadership
	// transfer, from a server without a vote.
	RefusedNotVoter
	// RefusedImpersonation: the RPC names a sender (its header's ID or
	// Addr, or the deprecated Leader or Candidate field) other than the
	// peer the stream's handshake authenticated.
	RefusedImpersonation
	// RefusedUnknownType: an RPC type byte that raft does not know.
	RefusedUnknownType
	// RefusedMalformed: the RPC does not decode, is larger than any this
	// catalog's leader sends, or is an InstallSnapshot whose
	// configuration does not decode (raft would panic on it).
	RefusedMalformed
	numRefusalReasons
)

// String is the reason's metric label.
func (r RefusalReason) String() string {
	switch r {
	case RefusedNotServer:
		return "not_server"
	case RefusedNotVoter:
		return "not_voter"
	case RefusedImpersonation:
		return "impersonation"
	case RefusedUnknownType:
		return "unknown_type"
	case RefusedMalformed:
		return "malformed"
	}
	return "unknown"
}

// RefusalReasons lists every reason, for metrics.
func RefusalReasons() []RefusalReason {
	out := make([]RefusalReason, 0, numRefusalReasons)
	for r := RefusalReason(0); r < numRefusalReasons; r++ {
		out = append(out, r)
	}
	return out
}

// ErrRaftRefused is the error raft's transport reads from a Raft stream
// that the gate refused.
var ErrRaftRefused = errors.New("mesh: raft stream refused")

// The RPC type bytes of raft.NetworkTransport (net_transport.go of
// hashicorp/raft v1.8.0; they are not exported).
const (
	rpcAppendEntries uint8 = iota
	rpcRequestVote
	rpcInstallSnapshot
	rpcTimeoutNow
	rpcRequestPreVote
)

// maxAppendEntriesRPC bounds one AppendEntries as the gate buffers it. A
// leader of the catalog sends at most catalog's MaxAppendEntries (256)
// entries in one, and the catalog refuses any entry larger than
// raft.SuggestedMaxDataSize (512 KiB), so the largest legitimate one is
// 128 MiB of data plus a few dozen bytes of framing an entry; 1 MiB of
// slack covers that and Raft's own configuration entries. Only a server
// gets this far (the stream check comes first), and raft itself would
// hold the same request in memory once more.
const maxAppendEntriesRPC = 256*raft.SuggestedMaxDataSize + 1<<20

// maxOtherRPC bounds every other RPC (votes, TimeoutNow, and an
// InstallSnapshot's request, whose Configuration lists the servers; the
// snapshot's bytes that follow it are not buffered).
const maxOtherRPC = 1 << 20

// gateBuffer is the read buffer of a gated stream.
const gateBuffer = 64 << 10

// errRPCTooLarge is why the recorder stopped a decode.
var errRPCTooLarge = errors.New("raft RPC over the size limit")

// refusal is a refused RPC or stream: why, for the counter, and what, for
// the log.
type refusal struct {
	reason RefusalReason
	detail string
}

func (r *refusal) Error() string { return r.reason.String() + ": " + r.detail }

// gate checks the streams and RPCs of one StreamLayer.
type gate struct {
	roles   RaftRoles
	log     *slog.Logger
	logs    *rate.Limiter // bounds the warnings, not the counting
	refused [numRefusalReasons]atomic.Uint64
}

// newGate returns a gate that asks roles and warns on log.
func newGate(roles RaftRoles, log *slog.Logger) *gate {
	// A peer that keeps retrying (a leader this node refuses sends a
	// heartbeat every few dozen milliseconds) would otherwise fill the
	// log: a few warnings a second tell as much, and the counter counts
	// every refusal.
	return &gate{roles: roles, log: log, logs: rate.NewLimiter(2, 10)}
}

// refuse resets st, logs why and counts it; a refusal while this node's
// Raft is not running (r is nil) is only reset.
func (g *gate) refuse(st network.Stream, r *refusal) {
	if r == nil {
		_ = st.Reset()
		return
	}
	// Counted before the reset: a peer that sees its stream reset may
	// read the counter at once (the e2e tests do).
	total := g.refused[r.reason].Add(1)
	_ = st.Reset()
	if g.logs.Allow() {
		g.log.Warn("refused a Raft stream", "peer", st.Conn().RemotePeer().String(), "reason", r.reason.String(), "detail", r.detail, "refused_so_far", total)
	}
}

// admitStream checks that p may open a Raft stream at all: ok, or the
// refusal (nil while this node's Raft is not running).
func (g *gate) admitStream(p peer.ID) (ok bool, r *refusal) {
	switch g.roles(p, 0) {
	case RaftNone:
		return false, &refusal{RefusedNotServer, "the peer is not a server of this node's Raft configuration"}
	case RaftNotReady:
		return false, nil
	}
	return true, nil
}

// checkRPC checks one decoded RPC of type t and term from the
// authenticated peer p: every sender it names must be p, and an RPC that
// claims to lead (voterOnly) must come from a voter (for its term). The role is looked up again for
// every RPC: a server removed (or demoted) since its stream opened is
// refused from its next RPC on.
func (g *gate) checkRPC(p peer.ID, t uint8, term uint64, hdr raft.RPCHeader, also []byte, voterOnly bool) *refusal {
	self := p.String()
	if string(hdr.ID) != self || string(hdr.Addr) != self {
		return &refusal{RefusedImpersonation, fmt.Sprintf("RPC type %d names sender id %q, address %q", t, hdr.ID, hdr.Addr)}
	}
	if len(also) > 0 && string(also) != self {
		return &refusal{RefusedImpersonation, fmt.Sprintf("RPC type %d names leader or candidate %q", t, also)}
	}
	if !voterOnly {
		term = 0
	}
	role := g.roles(p, term)
	switch {
	case role == RaftNone || role == RaftNotReady:
		return &refusal{RefusedNotServer, "the peer is no longer a server of this node's Raft configuration"}
	case role != RaftVoter && voterOnly:
		return &refusal{RefusedNotVoter, fmt.Sprintf("RPC type %d, which only a leader or the target of its leadership transfer sends, from a server without a vote in this node's configuration", t)}
	}
	return nil
}

// recorder is the io.ByteScanner the gate decodes an RPC through: it
// records every byte the decoder consumes (a byte it unreads is taken off
// again), so that after the decode it holds exactly the RPC's encoding,
// and it stops the decode past max bytes.
type recorder struct {
	r   *bufio.Reader
	buf []byte
	max int
	err error // the first error of r: the stream ended or broke
}

func (x *recorder) Read(p []byte) (int, error) {
	room := x.max - len(x.buf)
	if room <= 0 {
		return 0, errRPCTooLarge
	}
	if len(p) > room {
		p = p[:room]
	}
	n, err := x.r.Read(p)
	x.buf = append(x.buf, p[:n]...)
	if err != nil && x.err == nil {
		x.err = err
	}
	return n, err
}

func (x *recorder) ReadByte() (byte, error) {
	if len(x.buf) >= x.max {
		return 0, errRPCTooLarge
	}
	b, err := x.r.ReadByte()
	if err == nil {
		x.buf = append(x.buf, b)
	} else if x.err == nil {
		x.err = err
	}
	return b, err
}

func (x *recorder) UnreadByte() error {
	if len(x.buf) == 0 {
		return bufio.ErrInvalidUnreadByte
	}
	if err := x.r.UnreadByte(); err != nil {
		return err
	}
	x.buf = x.buf[:len(x.buf)-1]
	return nil
}

// gateConn is an accepted Raft stream as raft's transport reads it: each
// Read serves bytes of RPCs that were read whole from the stream and
// checked, then the raw snapshot bytes that follow an InstallSnapshot
// (req.Size of them, passed through unchecked: raft counts them and the
// catalog's restore reads and checks them), then the next checked RPC. Writes (raft's
// answers) go through unchanged. A refused RPC resets the stream, and
// raft reads ErrRaftRefused.
type gateConn struct {
	*streamConn
	g      *gate
	remote peer.ID
	br     *bufio.Reader
	rec    recorder
	dec    *codec.Decoder
	out    []byte // checked bytes raft has not read yet
	raw    int64  // snapshot bytes still to pass through
	err    error  // sticky: the stream is refused or ended
}

func newGateConn(st network.Stream, g *gate) *gateConn {
	c := &gateConn{streamConn: newStreamConn(st), g: g, remote: st.Conn().RemotePeer()}
	c.br = bufio.NewReaderSize(st, gateBuffer)
	c.rec.r = c.br
	c.dec = codec.NewDecoder(&c.rec, &codec.MsgpackHandle{})
	return c
}

// Read implements net.Conn.
func (c *gateConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 && c.raw == 0 {
		if c.err != nil {
			return 0, c.err
		}
		c.err = c.next()
	}
	if len(c.out) > 0 {
		n := copy(p, c.out)
		c.out = c.out[n:]
		if len(c.out) == 0 {
			c.out = nil // let the buffer of a large RPC go
		}
		return n, nil
	}
	if int64(len(p)) > c.raw {
		p = p[:c.raw]
	}
	n, err := c.br.Read(p)
	c.raw -= int64(n)
	return n, err
}

// next reads the next RPC whole and checks it; on success c.out holds its
// bytes (and c.raw the snapshot bytes that follow). It returns io.EOF at
// a clean end between RPCs, and ErrRaftRefused once it refused the
// stream.
func (c *gateConn) next() error {
	t, err := c.br.ReadByte()
	if err != nil {
		return err
	}
	c.rec.buf = append(make([]byte, 0, 512), t)
	c.rec.max = maxOtherRPC
	if t == rpcAppendEntries {
		c.rec.max = maxAppendEntriesRPC
	}
	c.rec.err = nil
	var r *refusal
	switch t {
	case rpcAppendEntries:
		var req raft.AppendEntriesRequest
		if r = c.decode(t, &req); r == nil {
			// raft still reads the deprecated Leader field when Addr is
			// empty, so it is checked too.
			//lint:ignore SA1019 checked on purpose, see above
			r = c.g.checkRPC(c.remote, t, req.Term, req.RPCHeader, req.Leader, true)
		}
		if r == nil {
			r = checkEntryConfigurations(req.Entries)
		}
	case rpcRequestVote:
		var req raft.RequestVoteRequest
		if r = c.decode(t, &req); r == nil {
			// A vote asked for a leadership transfer makes a leader step
			// down at once, and raft transfers leadership only to voters.
			//lint:ignore SA1019 raft still reads the deprecated Candidate field when Addr is empty
			r = c.g.checkRPC(c.remote, t, req.Term, req.RPCHeader, req.Candidate, req.LeadershipTransfer)
		}
	case rpcRequestPreVote:
		var req raft.RequestPreVoteRequest
		if r = c.decode(t, &req); r == nil {
			r = c.g.checkRPC(c.remote, t, req.Term, req.RPCHeader, nil, false)
		}
	case rpcInstallSnapshot:
		var req raft.InstallSnapshotRequest
		if r = c.decode(t, &req); r == nil {
			r = c.g.checkRPC(c.remote, t, req.Term, req.RPCHeader, req.Leader, true)
		}
		if r == nil && req.Size < 0 {
			r = &refusal{RefusedMalformed, fmt.Sprintf("InstallSnapshot of %d bytes", req.Size)}
		}
		if r == nil {
			r = checkSnapshotConfiguration(&req)
		}
		if r == nil {
			c.raw = req.Size
		}
	case rpcTimeoutNow:
		var req raft.TimeoutNowRequest
		if r = c.decode(t, &req); r == nil {
			// It carries no term: a peer let lead only up to a term
			// (RaftRoles) is refused it.
			r = c.g.checkRPC(c.remote, t, 0, req.RPCHeader, nil, true)
		}
	default:
		r = &refusal{RefusedUnknownType, fmt.Sprintf("RPC type byte %d", t)}
	}
	if r != nil && r.reason == RefusedMalformed && c.rec.err != nil {
		// The stream ended or broke mid-RPC: nothing to refuse.
		err := c.rec.err
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		c.rec.buf, c.raw = nil, 0
		return err
	}
	if r != nil {
		c.rec.buf, c.raw = nil, 0
		c.g.refuse(c.Stream, r)
		return fmt.Errorf("%w: %w", ErrRaftRefused, r)
	}
	c.out, c.rec.buf = c.rec.buf, nil
	return nil
}

// checkSnapshotConfiguration refuses an InstallSnapshot whose
// configuration does not decode: raft (v1.8.0, installSnapshot) decodes
// it with DecodeConfiguration, which panics, and the panic ends the
// whole node. Even a voter may not do that.
func checkSnapshotConfiguration(req *raft.InstallSnapshotRequest) *refusal {
	if req.SnapshotVersion <= 0 || req.SnapshotVersion > raft.SnapshotVersionMax {
		return nil // raft refuses the version, or reads the old Peers field, without panicking
	}
	if err := decodeConfiguration(req.Configuration); err != nil {
		return &refusal{RefusedMalformed, fmt.Sprintf("InstallSnapshot whose configuration does not decode: %v", err)}
	}
	return nil
}

// checkEntryConfigurations refuses AppendEntries with a configuration
// entry that does not decode: raft (processConfigurationLogEntry, and the
// FSM's configuration store) panics on one, as above.
func checkEntryConfigurations(entries []*raft.Log) *refusal {
	for _, e := range entries {
		if e == nil {
			return &refusal{RefusedMalformed, "AppendEntries with a nil entry"}
		}
		if e.Type != raft.LogConfiguration {
			continue
		}
		if err := decodeConfiguration(e.Data); err != nil {
			return &refusal{RefusedMalformed, fmt.Sprintf("configuration entry %d does not decode: %v", e.Index, err)}
		}
	}
	return nil
}

// decodeConfiguration decodes a configuration as raft.DecodeConfiguration
// does, returning the error it would panic with.
func decodeConfiguration(b []byte) error {
	var conf raft.Configuration
	return codec.NewDecoderBytes(b, &codec.MsgpackHandle{}).Decode(&conf)
}

// decode decodes the RPC that follows the type byte t into v.
func (c *gateConn) decode(t uint8, v any) *refusal {
	if err := c.dec.Decode(v); err != nil {
		return &refusal{RefusedMalformed, fmt.Sprintf("RPC type %d: %v", t, err)}
	}
	return nil
}
