package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
)

// digest returns a hash of the whole state of a store: every row of every
// table, in the order of its id index, as JSON, and the event log.
func digest(t testing.TB, s *store) string {
	t.Helper()
	h := sha256.New()
	tx := s.db.Txn(false)
	defer tx.Abort()
	var names []string
	for name := range schema().Tables {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		it, err := tx.Get(name, indexID)
		if err != nil {
			t.Fatalf("read table %s: %v", name, err)
		}
		h.Write([]byte("table " + name + "\n"))
		for raw := it.Next(); raw != nil; raw = it.Next() {
			data, err := json.Marshal(raw)
			if err != nil {
				t.Fatalf("encode a row of %s: %v", name, err)
			}
			h.Write(append(data, '\n'))
		}
	}
	for _, p := range s.eventLog().pages {
		data, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("encode an event page: %v", err)
		}
		h.Write(append([]byte("events "), data...))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// testEnvelope is wrapForwarded with the id drawn from rng, so that a test
// makes the same entries each run.
func testEnvelope(rng *rand.Rand, entry []byte, at time.Time) []byte {
	env := make([]byte, envelopeHead, envelopeHead+len(entry))
	env[0] = byte(forwardedType)
	for i := 1; i < 1+requestIDSize; i++ {
		env[i] = byte(rng.IntN(4)) // few ids: duplicates happen
	}
	binary.BigEndian.PutUint64(env[1+requestIDSize:], uint64(at.UnixNano()))
	return append(env, entry...)
}

// validEntry returns the entry of a command drawn from a small world of
// agents, artifacts, groups and members, so that commands meet each other.
func validEntry(t testing.TB, rng *rand.Rand, at time.Time) []byte {
	t.Helper()
	agents := []artmesh.AgentID{"alice", "bob", "carol"}
	agent := agents[rng.IntN(len(agents))]
	// Fixed ids (NewArtifactID is random): the state machine does not check
	// their form.
	art := artmesh.ArtifactID("art_" + string(rune('0'+rng.IntN(6))))
	group := []string{"team", "ops"}[rng.IntN(2)]
	peer := []string{"peer-a", "peer-b"}[rng.IntN(2)]
	cid := []string{"c1", "c2", "c3", "c4"}[rng.IntN(4)]
	var cmd command
	switch rng.IntN(18) {
	case 0, 1:
		cmd = CreateAgent{Agent: artmesh.Agent{ID: agent, Groups: []string{group}, CreatedAt: at}, KeyHash: "k-" + string(agent)}
	case 2, 3:
		cmd = CreateArtifact{ID: art, Name: "n", ContentType: "text/plain", Owner: agent, Metadata: md("k", `"v"`),
			CID: cid, SizeBytes: 5, At: at, Holder: peer}
	case 4, 5:
		cmd = AddVersion{ArtifactID: art, By: agent, Metadata: md("k", `1`), CID: cid, SizeBytes: 7, At: at, Holder: peer}
	case 6:
		cmd = DeleteVersion{ArtifactID: art, Version: 1 + rng.IntN(3), At: at}
	case 7:
		cmd = deleteArtifactCmd{ID: art}
	case 8:
		cmd = shareCmd{ID: art, Agents: []artmesh.AgentID{agent}, Groups: []string{group}}
	case 9:
		cmd = unshareCmd{ID: art, Agents: []artmesh.AgentID{agent}}
	case 10:
		cmd = putGroupCmd{Name: group, Members: []artmesh.AgentID{agent}}
	case 11:
		cmd = deleteGroupCmd{Name: group}
	case 12:
		cmd = PutMember{Member: Member{PeerID: peer, Addresses: []string{"/ip4/1.2.3.4/tcp/1"}, JoinedAt: at}}
	case 13:
		cmd = deleteMemberCmd{PeerID: peer}
	case 14:
		cmd = addHolderCmd{CID: cid, Peer: peer}
	case 15:
		cmd = putFetchingCmd{Rows: []Fetching{{CID: cid, Peer: peer, Seen: at}}}
	case 16:
		cmd = setReplicationCmd{ID: art, Factor: rng.IntN(3)}
	default:
		cmd = deleteAgentCmd{ID: agent}
	}
	data, err := encodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fuzzEntry returns a log entry: valid, mutated, cut short, of an unknown
// type, garbage, or an envelope around any of these.
func fuzzEntry(t testing.TB, rng *rand.Rand, at time.Time) []byte {
	t.Helper()
	switch rng.IntN(10) {
	case 0, 1, 2, 3: // valid: the state changes
		return validEntry(t, rng, at)
	case 4: // random bytes
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	case 5: // a valid command with some bytes changed
		b := validEntry(t, rng, at)
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] = byte(rng.Uint32())
		}
		return b
	case 6: // cut short
		b := validEntry(t, rng, at)
		return b[:rng.IntN(len(b))]
	case 7: // an unknown type, flagged or not, or a known type with a wrong payload
		payloads := []string{`{}`, `{"id":12}`, `[1,2]`, `{"agent":{"id":"x","created_at":"nope"}}`,
			`{"version":1e400}`, `{"factor":99999999999999999999}`, `null`, ``, `"`}
		p := payloads[rng.IntN(len(payloads))]
		typ := byte(rng.IntN(256))
		return append([]byte{typ}, p...)
	case 8: // an envelope around anything, even an envelope
		inner := fuzzEntry(t, rng, at)
		if rng.IntN(4) == 0 {
			inner = validEntry(t, rng, at)
		}
		return testEnvelope(rng, inner, at)
	default: // a valid entry in a short or empty envelope
		env := testEnvelope(rng, validEntry(t, rng, at), at)
		return env[:rng.IntN(envelopeHead+1)]
	}
}

// applyInBatches applies logs to f in batches of random sizes, some one
// entry at a time through Apply.
func applyInBatches(t *testing.T, f *fsm, logs []*raft.Log, rng *rand.Rand) []any {
	t.Helper()
	var results []any
	for len(logs) > 0 {
		n := min(1+rng.IntN(40), len(logs))
		if rng.IntN(5) == 0 {
			n = 1
			results = append(results, f.Apply(logs[0]))
		} else {
			results = append(results, f.ApplyBatch(logs[:n])...)
		}
		logs = logs[n:]
	}
	return results
}

// TestFuzzedEntriesConverge feeds 10,000 fuzzed entries to three replicas,
// each in batches of its own sizes: none may panic, their states must end
// alike, and a replica restored from a snapshot must be alike too.
func TestFuzzedEntriesConverge(t *testing.T) {
	const entries = 10000
	rng := rand.New(rand.NewPCG(1, 2))
	logs := make([]*raft.Log, entries)
	for i := range logs {
		at := testBase.Add(time.Duration(i) * time.Second)
		logs[i] = &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: fuzzEntry(t, rng, at), AppendedAt: at}
	}
	var replicas []*fsm
	var results [][]any
	for r := range 3 {
		f, err := newFSM(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.close() })
		replicas = append(replicas, f)
		results = append(results, applyInBatches(t, f, logs, rand.New(rand.NewPCG(uint64(r+10), 7))))
	}
	want := digest(t, replicas[0].state())
	var rejected, errs, ok int
	for i := range logs {
		// The results are alike too: a bad entry makes no other entry of
		// its batch apply differently.
		a, _ := json.Marshal(results[0][i])
		for r := 1; r < 3; r++ {
			if b, _ := json.Marshal(results[r][i]); !bytes.Equal(a, b) || errString(results[0][i]) != errString(results[r][i]) {
				t.Fatalf("entry %d: replica 0 answered %v, replica %d %v", i+1, results[0][i], r, results[r][i])
			}
		}
		switch res := results[0][i]; {
		case isMalformed(res):
			rejected++
			if !errors.Is(res.(error), artmesh.Invalid) || errors.Is(res.(error), errApplyPanicked) {
				t.Fatalf("entry %d: a malformed entry answered %v, want kind Invalid, without a panic", i+1, res)
			}
		case res != nil && errString(res) != "":
			errs++
		default:
			ok++
		}
	}
	t.Logf("%d entries: %d applied, %d broke a rule, %d rejected", entries, ok, errs, rejected)
	if rejected < entries/10 || ok < entries/10 {
		t.Fatalf("the mix is off: %d applied, %d rejected", ok, rejected)
	}
	for r, f := range replicas {
		if got := digest(t, f.state()); got != want {
			t.Fatalf("replica %d digest %s, replica 0 %s", r, got, want)
		}
		if got := f.rejected.Load(); got != uint64(rejected) {
			t.Fatalf("replica %d counted %d rejected entries, want %d", r, got, rejected)
		}
		if f.applied.Load() != entries {
			t.Fatalf("replica %d applied up to %d", r, f.applied.Load())
		}
	}
	if n := len(replicas[0].state().eventLog().pages); n == 0 {
		t.Fatal("no events: the valid entries changed too little")
	}
	restored := snapshotRestore(t, replicas[1])
	if got := digest(t, restored.state()); got != want {
		t.Fatalf("restored replica digest %s, want %s", got, want)
	}
}

func errString(res any) string {
	if err, ok := res.(error); ok {
		return err.Error()
	}
	return ""
}

// snapshotRestore returns a new state machine restored from a snapshot of f.
func snapshotRestore(t testing.TB, f *fsm) *fsm {
	t.Helper()
	var full bytes.Buffer
	if _, err := f.state().writeFullSnapshot(&full); err != nil {
		t.Fatal(err)
	}
	r, err := newFSM(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.close() })
	if err := r.Restore(io.NopCloser(bytes.NewReader(full.Bytes()))); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestMalformedEntriesChangeNothing: a malformed entry is a no-op whose
// result is an Invalid error, on its own or within a batch, where the
// other entries apply as they would without it; it is counted. An unknown
// type with the ignore flag is skipped silently, as before.
func TestMalformedEntriesChangeNothing(t *testing.T) {
	at := testBase.Add(time.Hour)
	rng := rand.New(rand.NewPCG(3, 4))
	enc := func(cmd command) []byte {
		data, err := encodeCommand(cmd)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	const art = artmesh.ArtifactID("art_x") // the state machine does not check its form
	create := enc(CreateArtifact{ID: "art_y", Name: "n", Owner: "alice", CID: "c9", At: at})
	typed := func(typ commandType, payload string) []byte { return append([]byte{byte(typ)}, payload...) }
	// Later than the request remembered below by more than the window:
	// applying the envelope would forget that request first.
	late := at.Add(2 * requestWindow)
	tests := []struct {
		name      string
		entry     []byte
		malformed bool // else skipped: nil result, not counted
	}{
		{"empty", nil, true},
		{"unknown type", typed(99, `{}`), true},
		{"bad JSON", typed(createArtifactType, `{not json`), true},
		{"cut short", create[:len(create)/2], true},
		{"wrong field type", typed(deleteArtifactType, `{"id":12}`), true},
		{"huge number", typed(deleteVersionType, `{"artifact_id":"x","version":1e400}`), true},
		{"number too large for its field", typed(setReplicationType, `{"id":"x","factor":99999999999999999999}`), true},
		{"time that is not one", typed(createAgentType, `{"agent":{"id":"x","created_at":"yesterday"}}`), true},
		{"type byte alone", typed(putMemberType, ``), true},
		{"short envelope", testEnvelope(rng, create, late)[:envelopeHead-1], true},
		{"empty envelope", testEnvelope(rng, nil, late), true},
		{"nested envelope", testEnvelope(rng, testEnvelope(rng, create, late), late), true},
		{"envelope of an unknown type", testEnvelope(rng, typed(99, `{}`), late), true},
		{"envelope of garbage", testEnvelope(rng, typed(createArtifactType, `{"id":`), late), true},
		{"envelope of a wrong field type", testEnvelope(rng, typed(putGroupType, `{"name":["a"]}`), late), true},
		{"flagged unknown type", typed(ignoreUnknownTypeFlag|99, `{}`), false},
		{"flagged unknown type with garbage", typed(ignoreUnknownTypeFlag|99, `{{{`), false},
	}
	remembered := testEnvelope(rng, enc(putGroupCmd{Name: "ops", Members: []artmesh.AgentID{"alice"}}), at)
	// prepare makes a state with rows in most tables and a remembered
	// forwarded request.
	prepare := func(t *testing.T) *testFSM {
		h := newTestFSM(t)
		h.agent("alice", "team")
		h.must(CreateArtifact{ID: art, Name: "a", Owner: "alice", CID: "c1", At: testBase, Metadata: md("k", `"v"`)})
		h.must(PutMember{Member: Member{PeerID: "peer-a", JoinedAt: testBase}})
		h.index++
		if res := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: remembered}); errString(res) != "" {
			t.Fatal(res)
		}
		return h
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := prepare(t)
			before := digest(t, h.st())
			res := h.f.Apply(&raft.Log{Index: h.index + 1, Type: raft.LogCommand, Data: tt.entry, AppendedAt: at})
			if got := digest(t, h.st()); got != before && tt.malformed {
				t.Fatal("the malformed entry changed the state")
			}
			wantRejected := uint64(0)
			if tt.malformed {
				wantRejected = 1
				err, _ := res.(error)
				if !errors.Is(err, artmesh.Invalid) || !errors.Is(err, errMalformedEntry) || errors.Is(err, errApplyPanicked) {
					t.Fatalf("result %v, want an Invalid error for a malformed entry, without a panic", res)
				}
			} else if res != nil {
				t.Fatalf("result %v, want nil", res)
			}
			if got := h.f.rejected.Load(); got != wantRejected {
				t.Fatalf("%d entries counted as rejected, want %d", got, wantRejected)
			}

			// Within a batch, between valid entries, as when applied alone.
			batch, alone := prepare(t), prepare(t)
			i := batch.index
			logs := []*raft.Log{
				{Index: i + 1, Type: raft.LogCommand, Data: enc(AddVersion{ArtifactID: art, By: "alice", CID: "c2", At: at}), AppendedAt: at},
				{Index: i + 2, Type: raft.LogCommand, Data: tt.entry, AppendedAt: at},
				{Index: i + 3, Type: raft.LogCommand, Data: enc(shareCmd{ID: art, Groups: []string{"ops"}}), AppendedAt: at},
				{Index: i + 4, Type: raft.LogCommand, Data: enc(putGroupCmd{Name: "later"}), AppendedAt: at},
			}
			got := batch.f.ApplyBatch(logs)
			for j, l := range logs {
				want := alone.f.Apply(l)
				a, _ := json.Marshal(got[j])
				b, _ := json.Marshal(want)
				if !bytes.Equal(a, b) || errString(got[j]) != errString(want) {
					t.Fatalf("entry %d answered %v in the batch, %v alone", j, got[j], want)
				}
				if j != 1 && errString(want) != "" {
					t.Fatalf("valid entry %d answered %v", j, want)
				}
			}
			if digest(t, batch.st()) != digest(t, alone.st()) {
				t.Fatal("the batch and the entries applied alone left different states")
			}
			if batch.f.rejected.Load() != wantRejected {
				t.Fatalf("the batch counted %d rejected entries, want %d", batch.f.rejected.Load(), wantRejected)
			}
		})
	}
}

// TestApplyEntryRecoversAPanic: should applying an entry panic all the
// same, the entry is malformed; the transaction is then discarded (see
// applyOpen and recover).
func TestApplyEntryRecoversAPanic(t *testing.T) {
	data, err := encodeCommand(deleteArtifactCmd{ID: artmesh.NewArtifactID(testBase)})
	if err != nil {
		t.Fatal(err)
	}
	// No transaction at all: reading it panics.
	res, ev := applyEntry(nil, &raft.Log{Index: 1, Type: raft.LogCommand, Data: data})
	if err, _ := res.(error); !errors.Is(err, artmesh.Invalid) || !errors.Is(err, errMalformedEntry) || !errors.Is(err, errApplyPanicked) || ev != nil {
		t.Fatalf("applyEntry answered %v, %v; want a malformed entry's error", res, ev)
	}
}

// FuzzApplyEntry: no entry makes a replica panic; a malformed one changes
// nothing; and one applied within a batch, between valid entries, gives
// the results and state of the entries applied one by one.
func FuzzApplyEntry(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	at := testBase.Add(time.Hour)
	for range 20 {
		f.Add(validEntry(f, rng, at))
		f.Add(fuzzEntry(f, rng, at))
	}
	for _, seed := range []string{"", "\x63{}", "\x01{not json", "\x03{\"version\":1e400}", "\xe3{}", "\x20", "\x20\x01\x02"} {
		f.Add([]byte(seed))
	}
	f.Add(testEnvelope(rng, testEnvelope(rng, validEntry(f, rng, at), at), at))
	f.Add(testEnvelope(rng, []byte("\x02{\"artifact_id\":"), at))
	prepare := func(t *testing.T) *fsm {
		r, err := newFSM(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.close() })
		prng := rand.New(rand.NewPCG(7, 8))
		var logs []*raft.Log
		for i := range 30 {
			logs = append(logs, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: validEntry(t, prng, at), AppendedAt: at})
		}
		r.ApplyBatch(logs)
		return r
	}
	f.Fuzz(func(t *testing.T, entry []byte) {
		alone, batch := prepare(t), prepare(t)
		before := digest(t, alone.state())
		logs := []*raft.Log{
			{Index: 31, Type: raft.LogCommand, Data: entry, AppendedAt: at},
			{Index: 32, Type: raft.LogCommand, Data: validEntry(t, rand.New(rand.NewPCG(9, 9)), at), AppendedAt: at},
		}
		first := alone.Apply(logs[0])
		if isMalformed(first) {
			if errors.Is(first.(error), errApplyPanicked) {
				t.Fatalf("applying the entry panicked: %v", first)
			}
			if digest(t, alone.state()) != before {
				t.Fatal("a malformed entry changed the state")
			}
		}
		second := alone.Apply(logs[1])
		got := batch.ApplyBatch(logs)
		for i, want := range []any{first, second} {
			a, _ := json.Marshal(got[i])
			b, _ := json.Marshal(want)
			if !bytes.Equal(a, b) || errString(got[i]) != errString(want) {
				t.Fatalf("entry %d answered %v in a batch, %v alone", i, got[i], want)
			}
		}
		if digest(t, alone.state()) != digest(t, batch.state()) {
			t.Fatal("a batch and the entries one by one left different states")
		}
	})
}

// lockedBuffer is a log destination that raft's goroutines write to while
// a test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestBadEntryDoesNotStopTheCatalog is the trial's attack: entries that
// no leader would propose reach the log. The node answers them with
// Invalid, logs and counts them, goes on taking writes, and opens again
// after a restart that applies them anew.
func TestBadEntryDoesNotStopTheCatalog(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	var logs lockedBuffer
	open := func() *Catalog {
		cfg := testConfig(dir, "node1")
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))
		c, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := open()
	bad := [][]byte{{99, '{', '}'}, append([]byte{byte(createAgentType)}, "{garbage"...), testEnvelope(rand.New(rand.NewPCG(1, 1)), []byte{byte(forwardedType)}, time.Now())}
	for i, entry := range bad {
		f := c.Raft().Apply(entry, time.Second)
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		err, _ := f.Response().(error)
		if !errors.Is(err, artmesh.Invalid) || !errors.Is(err, errMalformedEntry) {
			t.Fatalf("bad entry %d answered %v", i, f.Response())
		}
		if !strings.Contains(logs.String(), fmt.Sprintf("index=%d type=%d", f.Index(), bad[i][0])) {
			t.Fatalf("bad entry %d (index %d) not logged with its index and type:\n%s", i, f.Index(), logs.String())
		}
	}
	if got := c.RejectedEntries(); got != uint64(len(bad)) {
		t.Fatalf("RejectedEntries = %d, want %d", got, len(bad))
	}
	if _, err := c.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}}); err != nil {
		t.Fatalf("a write after the bad entries: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open()
	if err := c.WaitApplied(ctx, c.LastIndex()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Agent("alice"); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if got := c.RejectedEntries(); got != 0 {
		t.Fatalf("after a restart RejectedEntries = %d, want 0 (the state file holds the log's effects)", got)
	}
	// Without its state file, the node applies the whole log anew, bad
	// entries included.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, stateFile)); err != nil {
		t.Fatal(err)
	}
	c = open()
	if err := c.WaitApplied(ctx, c.LastIndex()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Agent("alice"); err != nil {
		t.Fatalf("after a replay: %v", err)
	}
	if got := c.RejectedEntries(); got != uint64(len(bad)) {
		t.Fatalf("after a replay RejectedEntries = %d, want %d (the log applied anew)", got, len(bad))
	}
}
