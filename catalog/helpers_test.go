package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
)

// testBase is the time test artifacts are created from; artifact i of a
// test is created i milliseconds later, so that ids sort as i does.
var testBase = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// testFSM drives a state machine directly, as Raft would, without Raft.
type testFSM struct {
	t     testing.TB
	f     *fsm
	index uint64
	n     int // artifacts created so far, for fresh ids
}

func newTestFSM(t testing.TB) *testFSM {
	t.Helper()
	f, err := newFSM(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.close() })
	return &testFSM{t: t, f: f}
}

// st returns the current state.
func (h *testFSM) st() *store { return h.f.state() }

// apply applies cmd as a committed log entry and returns its result.
func (h *testFSM) apply(cmd command) (any, error) {
	h.t.Helper()
	data, err := encodeCommand(cmd)
	if err != nil {
		h.t.Fatal(err)
	}
	h.index++
	res := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data})
	if err, ok := res.(error); ok {
		return nil, err
	}
	return res, nil
}

// must applies cmd and fails the test if it broke a rule.
func (h *testFSM) must(cmd command) any {
	h.t.Helper()
	res, err := h.apply(cmd)
	if err != nil {
		h.t.Fatalf("apply %T: %v", cmd, err)
	}
	return res
}

// agent creates an agent in the given groups.
func (h *testFSM) agent(id artmesh.AgentID, groups ...string) {
	h.t.Helper()
	h.must(CreateAgent{Agent: artmesh.Agent{ID: id, Groups: groups, CreatedAt: testBase}, KeyHash: "hash-" + string(id)})
}

// nextID returns a fresh artifact id, later than every earlier one.
func (h *testFSM) nextID() (artmesh.ArtifactID, time.Time) {
	at := testBase.Add(time.Duration(h.n) * time.Millisecond)
	h.n++
	return artmesh.NewArtifactID(at), at
}

// create creates an artifact of owner and returns it.
func (h *testFSM) create(owner artmesh.AgentID, name, contentType string, md artmesh.Metadata) artmesh.Artifact {
	h.t.Helper()
	id, at := h.nextID()
	return h.must(CreateArtifact{
		ID: id, Name: name, ContentType: contentType, Owner: owner, Metadata: md,
		CID: "cid-" + string(id), SizeBytes: 10, At: at,
	}).(artmesh.Artifact)
}

// md builds metadata from alternating keys and JSON texts.
func md(kv ...string) artmesh.Metadata {
	m := artmesh.Metadata{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = json.RawMessage(kv[i+1])
	}
	return m
}

// wantKind fails the test unless err has the kind.
func wantKind(t testing.TB, err error, kind artmesh.Kind) {
	t.Helper()
	if kind == artmesh.Other {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v (kind %v), want kind %v", err, artmesh.KindOf(err), kind)
	}
}

// ids returns the ids of artifacts.
func ids(as []artmesh.Artifact) []artmesh.ArtifactID {
	out := make([]artmesh.ArtifactID, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

// totalOf returns a page's Total, or -1 when it has none.
func totalOf(p artmesh.Page[artmesh.Artifact]) int {
	if p.Total == nil {
		return -1
	}
	return *p.Total
}

// bufferSink is a raft.SnapshotSink into memory.
type bufferSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *bufferSink) ID() string    { return "test" }
func (s *bufferSink) Close() error  { s.closed = true; return nil }
func (s *bufferSink) Cancel() error { s.cancelled = true; return nil }

// restored returns a new state machine restored from a snapshot of h,
// numbering on from h's index.
func (h *testFSM) restored() *testFSM {
	h.t.Helper()
	var full bytes.Buffer
	if _, err := h.st().writeFullSnapshot(&full); err != nil {
		h.t.Fatal(err)
	}
	r := newTestFSM(h.t)
	if err := r.f.Restore(io.NopCloser(bytes.NewReader(full.Bytes()))); err != nil {
		h.t.Fatal(err)
	}
	r.index = h.index
	return r
}
