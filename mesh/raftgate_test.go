package mesh

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// gated is a host whose Raft streams pass the gate, with a transport
// whose RPCs are recorded and answered.
type gated struct {
	h     host.Host
	sl    *StreamLayer
	mu    sync.Mutex
	roles map[peer.ID]RaftRole
	terms []uint64      // the terms roles was asked with, in order
	got   chan raft.RPC // every RPC raft's transport delivered
	snaps chan []byte   // the snapshot bytes of delivered InstallSnapshots
	log   syncBuffer    // the gate's log, as text
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newGated(t *testing.T, key Key) *gated {
	t.Helper()
	g := &gated{h: newTestHost(t, key), roles: map[peer.ID]RaftRole{}, got: make(chan raft.RPC, 16), snaps: make(chan []byte, 16)}
	g.sl = NewStreamLayer(g.h, g.role, slog.New(slog.NewTextHandler(&g.log, nil)))
	trans := raft.NewNetworkTransport(g.sl, 1, 5*time.Second, io.Discard)
	t.Cleanup(func() { trans.Close() })
	go func() {
		for rpc := range trans.Consumer() {
			var resp any
			switch rpc.Command.(type) {
			case *raft.AppendEntriesRequest:
				resp = &raft.AppendEntriesResponse{Term: 7, Success: true}
			case *raft.RequestVoteRequest:
				resp = &raft.RequestVoteResponse{Term: 7}
			case *raft.RequestPreVoteRequest:
				resp = &raft.RequestPreVoteResponse{Term: 7}
			case *raft.InstallSnapshotRequest:
				data, _ := io.ReadAll(rpc.Reader)
				g.snaps <- data
				resp = &raft.InstallSnapshotResponse{Term: 7, Success: true}
			case *raft.TimeoutNowRequest:
				resp = &raft.TimeoutNowResponse{}
			}
			g.got <- rpc
			rpc.Respond(resp, nil)
		}
	}()
	return g
}

func (g *gated) role(p peer.ID, term uint64) RaftRole {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.terms = append(g.terms, term)
	return g.roles[p]
}

// askedTerms returns the terms roles was asked with since the last call.
func (g *gated) askedTerms() []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.terms
	g.terms = nil
	return out
}

func (g *gated) setRole(p peer.ID, r RaftRole) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.roles[p] = r
}

// rpcMsg is one RPC as raft's NetworkTransport frames it: a type byte,
// the msgpack request, and (for InstallSnapshot) the snapshot's bytes.
type rpcMsg struct {
	typ  uint8
	req  any
	tail []byte
}

// exchange opens a Raft stream from from to to, sends msgs one by one
// and reads each answer (the error string and the response). It returns
// how many were answered and the error that ended the stream, if any.
func exchange(t *testing.T, from host.Host, to peer.ID, msgs ...rpcMsg) (answered int, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := from.NewStream(ctx, to, RaftProtocol)
	if err != nil {
		t.Fatalf("open a raft stream: %v", err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(10 * time.Second))
	w := bufio.NewWriter(st)
	enc := codec.NewEncoder(w, &codec.MsgpackHandle{})
	dec := codec.NewDecoder(bufio.NewReader(st), &codec.MsgpackHandle{})
	for _, m := range msgs {
		if err := w.WriteByte(m.typ); err != nil {
			return answered, err
		}
		if m.req != nil {
			if err := enc.Encode(m.req); err != nil {
				return answered, err
			}
		}
		if _, err := w.Write(m.tail); err != nil {
			return answered, err
		}
		if err := w.Flush(); err != nil {
			return answered, err
		}
		var rpcErr string
		if err := dec.Decode(&rpcErr); err != nil {
			return answered, err
		}
		var resp map[string]any
		if err := dec.Decode(&resp); err != nil {
			return answered, err
		}
		if rpcErr != "" {
			return answered, errors.New(rpcErr)
		}
		answered++
	}
	return answered, nil
}

// hdr is the RPC header that p sends when it speaks as itself.
func hdr(p peer.ID) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(p.String()), Addr: []byte(p.String())}
}

// noRPC checks that raft's transport on g delivered no RPC.
func (g *gated) noRPC(t *testing.T) {
	t.Helper()
	select {
	case rpc := <-g.got:
		t.Fatalf("raft was handed %T, which the gate should have refused", rpc.Command)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestRaftGateRefusesNonServer: a member that is not a server of the
// node's Raft configuration cannot open a Raft stream: the stream is
// reset, raft never sees its forged AppendEntries, and the refusal is
// counted.
func TestRaftGateRefusesNonServer(t *testing.T) {
	key := NewKey()
	a, b := newGated(t, key), newTestHost(t, key)
	b.Peerstore().AddAddrs(a.h.ID(), a.h.Addrs(), time.Hour)
	forged := &raft.AppendEntriesRequest{RPCHeader: hdr(b.ID()), Term: 1000, LeaderCommitIndex: 5}
	// While this node's Raft is not running, every stream is reset,
	// quietly: that is no peer's fault.
	a.setRole(b.ID(), RaftNotReady)
	if n, err := exchange(t, b, a.h.ID(), rpcMsg{typ: rpcAppendEntries, req: forged}); n != 0 || err == nil {
		t.Fatalf("an AppendEntries before Raft runs: %d answered, err %v; want the stream reset", n, err)
	}
	a.noRPC(t)
	for _, r := range RefusalReasons() {
		if got := a.sl.Refused(r); got != 0 {
			t.Fatalf("a stream reset before Raft runs was counted as %s", r)
		}
	}
	if logged := a.log.String(); logged != "" {
		t.Fatalf("a stream reset before Raft runs was logged: %q", logged)
	}
	a.setRole(b.ID(), RaftNone)
	n, err := exchange(t, b, a.h.ID(), rpcMsg{typ: rpcAppendEntries, req: forged})
	if n != 0 || err == nil {
		t.Fatalf("a non-server's AppendEntries: %d answered, err %v; want it refused", n, err)
	}
	a.noRPC(t)
	if got := a.sl.Refused(RefusedNotServer); got != 1 {
		t.Fatalf("refusals counted as not_server: %d, want 1", got)
	}
	want := "level=WARN msg=\"refused a Raft stream\" peer=" + b.ID().String() + " reason=not_server "
	if logged := a.log.String(); strings.Count(logged, want) != 1 {
		t.Fatalf("the gate logged %q, want one line with %q", logged, want)
	}
	// Once it is a server, the same peer is heard.
	a.setRole(b.ID(), RaftVoter)
	if n, err := exchange(t, b, a.h.ID(), rpcMsg{typ: rpcAppendEntries, req: forged}); n != 1 || err != nil {
		t.Fatalf("a voter's AppendEntries: %d answered, err %v", n, err)
	}
	rpc := <-a.got
	if ae, ok := rpc.Command.(*raft.AppendEntriesRequest); !ok || ae.Term != 1000 || ae.LeaderCommitIndex != 5 || string(ae.ID) != b.ID().String() {
		t.Fatalf("raft got %#v", rpc.Command)
	}
}

// TestRaftGateChecksEveryRPC sends, from an authenticated server, RPCs
// that lie about their sender, claim to lead without a vote, or are not
// raft's at all, and checks that exactly the honest ones reach raft.
func TestRaftGateChecksEveryRPC(t *testing.T) {
	key := NewKey()
	a, b := newGated(t, key), newTestHost(t, key)
	other := newTestHost(t, key).ID() // the identity b pretends to be
	b.Peerstore().AddAddrs(a.h.ID(), a.h.Addrs(), time.Hour)
	spoofed := hdr(other)
	mixed := hdr(b.ID())
	mixed.Addr = []byte(other.String())
	for _, tc := range []struct {
		name   string
		role   RaftRole
		msg    rpcMsg
		reason RefusalReason // when refused
		ok     bool
	}{
		{"voter appends as itself", RaftVoter, rpcMsg{typ: rpcAppendEntries, req: &raft.AppendEntriesRequest{RPCHeader: hdr(b.ID()), Term: 3}}, 0, true},
		{"voter appends as another", RaftVoter, rpcMsg{typ: rpcAppendEntries, req: &raft.AppendEntriesRequest{RPCHeader: spoofed, Term: 3}}, RefusedImpersonation, false},
		{"voter appends with another's address", RaftVoter, rpcMsg{typ: rpcAppendEntries, req: &raft.AppendEntriesRequest{RPCHeader: mixed, Term: 3}}, RefusedImpersonation, false},
		//lint:ignore SA1019 the gate checks the deprecated sender fields that raft still reads
		{"voter appends naming another leader", RaftVoter, rpcMsg{typ: rpcAppendEntries, req: &raft.AppendEntriesRequest{RPCHeader: hdr(b.ID()), Term: 3, Leader: []byte(other.String())}}, RefusedImpersonation, false},
		//lint:ignore SA1019 the gate checks the deprecated sender fields that raft still reads
		{"voter appends with no header", RaftVoter, rpcMsg{typ: rpcAppendEntries, req: &raft.AppendEntriesRequest{Term: 3, Leader: []byte(b.ID().String())}}, RefusedImpersonation, false},
		{"nonvoter appends", RaftServer, rpcMsg{typ: rpcAppendEntries, req: &raft.AppendEntriesRequest{RPCHeader: hdr(b.ID()), Term: 3}}, RefusedNotVoter, false},
		{"nonvoter sends a snapshot", RaftServer, rpcMsg{typ: rpcInstallSnapshot, req: &raft.InstallSnapshotRequest{RPCHeader: hdr(b.ID()), Term: 3, Size: 4}, tail: []byte("snap")}, RefusedNotVoter, false},
		{"nonvoter sends TimeoutNow", RaftServer, rpcMsg{typ: rpcTimeoutNow, req: &raft.TimeoutNowRequest{RPCHeader: hdr(b.ID())}}, RefusedNotVoter, false},
		{"voter sends TimeoutNow", RaftVoter, rpcMsg{typ: rpcTimeoutNow, req: &raft.TimeoutNowRequest{RPCHeader: hdr(b.ID())}}, 0, true},
		{"nonvoter asks for a vote", RaftServer, rpcMsg{typ: rpcRequestVote, req: &raft.RequestVoteRequest{RPCHeader: hdr(b.ID()), Term: 3}}, 0, true},
		{"nonvoter asks for a vote for a leadership transfer", RaftServer, rpcMsg{typ: rpcRequestVote, req: &raft.RequestVoteRequest{RPCHeader: hdr(b.ID()), Term: 3, LeadershipTransfer: true}}, RefusedNotVoter, false},
		{"voter asks for a vote for a leadership transfer", RaftVoter, rpcMsg{typ: rpcRequestVote, req: &raft.RequestVoteRequest{RPCHeader: hdr(b.ID()), Term: 3, LeadershipTransfer: true}}, 0, true},
		{"nonvoter asks for a pre-vote", RaftServer, rpcMsg{typ: rpcRequestPreVote, req: &raft.RequestPreVoteRequest{RPCHeader: hdr(b.ID()), Term: 3}}, 0, true},
		//lint:ignore SA1019 the gate checks the deprecated sender fields that raft still reads
		{"vote for another candidate", RaftVoter, rpcMsg{typ: rpcRequestVote, req: &raft.RequestVoteRequest{RPCHeader: hdr(b.ID()), Term: 3, Candidate: []byte(other.String())}}, RefusedImpersonation, false},
		{"pre-vote as another", RaftVoter, rpcMsg{typ: rpcRequestPreVote, req: &raft.RequestPreVoteRequest{RPCHeader: spoofed, Term: 3}}, RefusedImpersonation, false},
		{"voter sends a snapshot without a configuration", RaftVoter, rpcMsg{typ: rpcInstallSnapshot, req: &raft.InstallSnapshotRequest{RPCHeader: hdr(b.ID()), SnapshotVersion: raft.SnapshotVersionMax, Term: 3, Size: 4}, tail: []byte("snap")}, RefusedMalformed, false},
		{"voter sends a snapshot", RaftVoter, rpcMsg{typ: rpcInstallSnapshot, req: &raft.InstallSnapshotRequest{RPCHeader: hdr(b.ID()), SnapshotVersion: raft.SnapshotVersionMax, Term: 3, Size: 4, Configuration: raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{{ID: "x", Address: "x"}}})}, tail: []byte("snap")}, 0, true},
		{"voter appends a configuration that does not decode", RaftVoter, rpcMsg{typ: rpcAppendEntries, req: &raft.AppendEntriesRequest{RPCHeader: hdr(b.ID()), Term: 3, Entries: []*raft.Log{{Index: 1, Term: 3, Type: raft.LogCommand, Data: []byte{1}}, {Index: 2, Term: 3, Type: raft.LogConfiguration, Data: []byte{0xc1}}}}}, RefusedMalformed, false},
		{"voter appends a configuration", RaftVoter, rpcMsg{typ: rpcAppendEntries, req: &raft.AppendEntriesRequest{RPCHeader: hdr(b.ID()), Term: 3, Entries: []*raft.Log{{Index: 2, Term: 3, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{{ID: "x", Address: "x"}}})}}}}, 0, true},
		{"unknown type", RaftVoter, rpcMsg{typ: 9, req: &raft.TimeoutNowRequest{RPCHeader: hdr(b.ID())}}, RefusedUnknownType, false},
		{"not msgpack", RaftVoter, rpcMsg{typ: rpcRequestVote, tail: []byte{0xc1, 0, 0, 0}}, RefusedMalformed, false},
		//lint:ignore SA1019 the gate checks the deprecated sender fields that raft still reads
		{"vote over 1 MiB", RaftVoter, rpcMsg{typ: rpcRequestVote, req: &raft.RequestVoteRequest{RPCHeader: hdr(b.ID()), Term: 3, Candidate: bytes.Repeat([]byte{1}, maxOtherRPC)}}, RefusedMalformed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for len(a.got) > 0 {
				<-a.got // left by an earlier case that failed
			}
			a.setRole(b.ID(), tc.role)
			before := a.sl.Refused(tc.reason)
			n, err := exchange(t, b, a.h.ID(), tc.msg)
			if tc.ok {
				if n != 1 || err != nil {
					t.Fatalf("%d answered, err %v; want it answered", n, err)
				}
				<-a.got
				return
			}
			if n != 0 || err == nil {
				t.Fatalf("%d answered, err %v; want the stream reset", n, err)
			}
			a.noRPC(t)
			if got := a.sl.Refused(tc.reason) - before; got != 1 {
				t.Fatalf("refusals counted as %s: %d, want 1", tc.reason, got)
			}
		})
	}
}

// TestRaftGateAsksWithTerm: the gate asks a peer's role with the term of
// an RPC that claims to lead (a node may let a peer lead only up to a
// term), and with 0 at the stream's opening and for any other RPC.
func TestRaftGateAsksWithTerm(t *testing.T) {
	key := NewKey()
	a, b := newGated(t, key), newTestHost(t, key)
	b.Peerstore().AddAddrs(a.h.ID(), a.h.Addrs(), time.Hour)
	a.setRole(b.ID(), RaftVoter)
	for _, tc := range []struct {
		name string
		msg  rpcMsg
		want []uint64
	}{
		{"append", rpcMsg{typ: rpcAppendEntries, req: &raft.AppendEntriesRequest{RPCHeader: hdr(b.ID()), Term: 9}}, []uint64{0, 9}},
		{"snapshot", rpcMsg{typ: rpcInstallSnapshot, req: &raft.InstallSnapshotRequest{RPCHeader: hdr(b.ID()), Term: 8, Size: 1, Configuration: raft.EncodeConfiguration(raft.Configuration{})}, tail: []byte{1}}, []uint64{0, 8}},
		{"transfer vote", rpcMsg{typ: rpcRequestVote, req: &raft.RequestVoteRequest{RPCHeader: hdr(b.ID()), Term: 7, LeadershipTransfer: true}}, []uint64{0, 7}},
		{"vote", rpcMsg{typ: rpcRequestVote, req: &raft.RequestVoteRequest{RPCHeader: hdr(b.ID()), Term: 6}}, []uint64{0, 0}},
		{"pre-vote", rpcMsg{typ: rpcRequestPreVote, req: &raft.RequestPreVoteRequest{RPCHeader: hdr(b.ID()), Term: 5}}, []uint64{0, 0}},
		// TimeoutNow carries no term: a peer let lead only up to a
		// term is refused it.
		{"timeout now", rpcMsg{typ: rpcTimeoutNow, req: &raft.TimeoutNowRequest{RPCHeader: hdr(b.ID())}}, []uint64{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.askedTerms()
			if n, err := exchange(t, b, a.h.ID(), tc.msg); n != 1 || err != nil {
				t.Fatalf("%d answered, err %v", n, err)
			}
			<-a.got
			if got := a.askedTerms(); !slices.Equal(got, tc.want) {
				t.Fatalf("roles asked with terms %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRaftGateStream sends several RPCs on one stream, an InstallSnapshot
// with its snapshot bytes among them, and checks that raft gets each
// whole and in order, and that a forged RPC later on the same stream is
// still refused.
func TestRaftGateStream(t *testing.T) {
	key := NewKey()
	a, b := newGated(t, key), newTestHost(t, key)
	b.Peerstore().AddAddrs(a.h.ID(), a.h.Addrs(), time.Hour)
	a.setRole(b.ID(), RaftVoter)
	snap := bytes.Repeat([]byte("0123456789abcdef"), 40<<10) // 640 KiB: more than a read buffer
	entries := []*raft.Log{{Index: 11, Term: 3, Type: raft.LogCommand, Data: bytes.Repeat([]byte{7}, 300<<10)}}
	n, err := exchange(t, b, a.h.ID(),
		rpcMsg{typ: rpcAppendEntries, req: &raft.AppendEntriesRequest{RPCHeader: hdr(b.ID()), Term: 3, PrevLogEntry: 10, PrevLogTerm: 3, Entries: entries}},
		rpcMsg{typ: rpcInstallSnapshot, req: &raft.InstallSnapshotRequest{RPCHeader: hdr(b.ID()), Term: 3, LastLogIndex: 20, Size: int64(len(snap))}, tail: snap},
		rpcMsg{typ: rpcRequestVote, req: &raft.RequestVoteRequest{RPCHeader: hdr(b.ID()), Term: 4}},
		rpcMsg{typ: rpcAppendEntries, req: &raft.AppendEntriesRequest{RPCHeader: hdr(a.h.ID()), Term: 5}},
		rpcMsg{typ: rpcRequestVote, req: &raft.RequestVoteRequest{RPCHeader: hdr(b.ID()), Term: 6}},
	)
	if n != 3 || err == nil {
		t.Fatalf("%d answered, err %v; want 3 answered, then the stream reset", n, err)
	}
	ae := (<-a.got).Command.(*raft.AppendEntriesRequest)
	if len(ae.Entries) != 1 || ae.Entries[0].Index != 11 || !bytes.Equal(ae.Entries[0].Data, entries[0].Data) {
		t.Fatalf("AppendEntries reached raft altered: %d entries", len(ae.Entries))
	}
	is := (<-a.got).Command.(*raft.InstallSnapshotRequest)
	if is.LastLogIndex != 20 || is.Size != int64(len(snap)) {
		t.Fatalf("InstallSnapshot reached raft as %+v", is)
	}
	if got := <-a.snaps; !bytes.Equal(got, snap) {
		t.Fatalf("the snapshot reached raft as %d bytes, want %d", len(got), len(snap))
	}
	if rv := (<-a.got).Command.(*raft.RequestVoteRequest); rv.Term != 4 {
		t.Fatalf("RequestVote reached raft as %+v", rv)
	}
	a.noRPC(t)
	if got := a.sl.Refused(RefusedImpersonation); got != 1 {
		t.Fatalf("impersonations counted: %d, want 1", got)
	}
}

// TestRaftGateKeepsLeader runs a three-voter Raft cluster over gated
// stream layers whose roles come from each node's own configuration,
// and a fourth host, admitted to the mesh but no server, that sends the
// leader an AppendEntries of a much higher term naming itself leader:
// the leader keeps its leadership and its term.
func TestRaftGateKeepsLeader(t *testing.T) {
	key := NewKey()
	var hosts []host.Host
	for i := 0; i < 3; i++ {
		hosts = append(hosts, newTestHost(t, key))
	}
	var servers []raft.Server
	for _, h := range hosts {
		for _, o := range hosts {
			if h != o {
				h.Peerstore().AddAddrs(o.ID(), o.Addrs(), time.Hour)
			}
		}
		servers = append(servers, raft.Server{ID: raft.ServerID(h.ID().String()), Address: raft.ServerAddress(h.ID().String())})
	}
	var rafts []*raft.Raft
	var layers []*StreamLayer
	for _, h := range hosts {
		var r *raft.Raft
		var mu sync.Mutex
		roles := func(p peer.ID, _ uint64) RaftRole {
			mu.Lock()
			rr := r
			mu.Unlock()
			if rr == nil {
				return RaftNone
			}
			for _, s := range rr.GetConfiguration().Configuration().Servers {
				if string(s.ID) == p.String() {
					if s.Suffrage == raft.Voter {
						return RaftVoter
					}
					return RaftServer
				}
			}
			return RaftNone
		}
		sl := NewStreamLayer(h, roles, nil)
		trans := raft.NewNetworkTransport(sl, 3, 5*time.Second, io.Discard)
		conf := raft.DefaultConfig()
		conf.LocalID = raft.ServerID(h.ID().String())
		conf.HeartbeatTimeout, conf.ElectionTimeout, conf.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond
		conf.LogOutput = io.Discard
		store := raft.NewInmemStore()
		nr, err := raft.NewRaft(conf, &counterFSM{}, store, store, raft.NewInmemSnapshotStore(), trans)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		r = nr
		mu.Unlock()
		if err := nr.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			t.Fatal(err)
		}
		rafts, layers = append(rafts, nr), append(layers, sl)
		t.Cleanup(func() { nr.Shutdown().Error(); trans.Close() })
	}
	leader := -1
	for deadline := time.Now().Add(15 * time.Second); leader < 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for i, r := range rafts {
			if r.State() == raft.Leader {
				leader = i
			}
		}
	}
	if leader < 0 {
		t.Fatal("no leader within 15s")
	}
	if err := rafts[leader].Apply([]byte("x"), 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	term := rafts[leader].CurrentTerm()
	evil := newTestHost(t, key)
	evil.Peerstore().AddAddrs(hosts[leader].ID(), hosts[leader].Addrs(), time.Hour)
	forged := &raft.AppendEntriesRequest{RPCHeader: hdr(evil.ID()), Term: term + 100, PrevLogEntry: rafts[leader].LastIndex(), PrevLogTerm: term, LeaderCommitIndex: rafts[leader].LastIndex()}
	if n, err := exchange(t, evil, hosts[leader].ID(), rpcMsg{typ: rpcAppendEntries, req: forged}); n != 0 || err == nil {
		t.Fatalf("the forged AppendEntries: %d answered, err %v; want it refused", n, err)
	}
	time.Sleep(time.Second)
	if rafts[leader].State() != raft.Leader || rafts[leader].CurrentTerm() != term {
		t.Fatalf("after the forged AppendEntries the leader is %s in term %d (was leader in term %d)", rafts[leader].State(), rafts[leader].CurrentTerm(), term)
	}
	if got := layers[leader].Refused(RefusedNotServer); got != 1 {
		t.Fatalf("refusals counted as not_server on the leader: %d, want 1", got)
	}
	if err := rafts[leader].Apply([]byte("y"), 5*time.Second).Error(); err != nil {
		t.Fatalf("a write after the forged AppendEntries: %v", err)
	}
}
