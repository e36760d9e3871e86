package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	berrors "go.etcd.io/bbolt/errors"
)

// fill gives h a state with every kind of row: agents with and without
// keys, groups, artifacts with several versions (some deleted), metadata
// and grants.
func fill(h *testFSM) []artmesh.ArtifactID {
	h.agent("alice", "team")
	h.agent("bob", "team", "ops")
	h.must(CreateAgent{Agent: artmesh.Agent{ID: "carol", Admin: true, CreatedAt: testBase}})
	h.must(putGroupCmd{Name: "empty"})
	var out []artmesh.ArtifactID
	for i := range 20 {
		owner := artmesh.AgentID("alice")
		if i%3 == 0 {
			owner = "bob"
		}
		a := h.create(owner, "f", "text/plain", md("i", jsonInt(i), "even", jsonInt(i%2)))
		out = append(out, a.ID)
		if i%4 == 0 {
			for v := range 3 {
				h.must(AddVersion{ArtifactID: a.ID, By: owner, Metadata: md("v", jsonInt(v)), CID: "c" + jsonInt(v), At: testBase.Add(time.Hour)})
			}
			h.must(DeleteVersion{ArtifactID: a.ID, Version: 4, At: testBase.Add(2 * time.Hour)})
		}
		switch i % 5 {
		case 1:
			h.must(shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"carol"}})
		case 2:
			h.must(shareCmd{ID: a.ID, Groups: []string{"team", "ops"}})
		}
	}
	exp := testBase.Add(24 * time.Hour)
	h.must(CreateUpload{Upload: Upload{ID: "upl_open", Owner: "alice", Name: "o", SizeBytes: 5, ExpiresAt: exp}, At: testBase})
	h.must(CreateUpload{Upload: Upload{ID: "upl_recv", Owner: "bob", Name: "r", SizeBytes: 5, ExpiresAt: exp, ArtifactID: out[0]}, At: testBase})
	h.must(UploadReceived{ID: "upl_recv", CID: "c-upload", SHA256: "ff", Size: 5, At: testBase})
	h.must(issueTokenCmd{Token: Token{ID: "tok_1", Agent: "alice", Target: string(out[1]), ExpiresAt: exp}})
	h.must(issueTokenCmd{Token: Token{ID: "tok_2", Agent: "bob", Target: "upl_recv", ExpiresAt: exp}})
	h.must(revokeTokenCmd{ID: "tok_2"})
	h.must(PutMember{Member: Member{PeerID: "peer-a", Addresses: []string{"/ip4/127.0.0.1/tcp/1"}, APIURL: "http://a", JoinedAt: testBase}})
	h.must(CreateInvite{Invite: Invite{SecretHash: "h1", CreatedBy: "carol", ExpiresAt: exp}})
	h.must(ConsumeInvite{SecretHash: "h1", PeerID: "peer-b", At: testBase})
	h.must(addHolderCmd{CID: "c-upload", Peer: "peer-a"})
	h.must(addHolderCmd{CID: "c-upload", Peer: "peer-b"})
	h.must(removeHolderCmd{CID: "c-upload", Peer: "peer-a"})
	h.must(putFetchingCmd{Rows: []Fetching{{CID: "c-big", Peer: "peer-a", Seen: testBase}}})
	return out
}

// dump returns everything the reads of s show, for comparing states.
func dump(t *testing.T, s *store, arts []artmesh.ArtifactID) map[string]any {
	t.Helper()
	out := map[string]any{}
	must := func(key string, v any, err error) {
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		out[key] = v
	}
	for _, id := range arts {
		a, err := s.artifact(id)
		must("artifact "+string(id), a, err)
		vs, err := s.versions(id)
		must("versions "+string(id), vs, err)
		acc, err := s.access(id)
		must("access "+string(id), acc, err)
	}
	for _, agent := range []artmesh.AgentID{"alice", "bob", "carol"} {
		p, err := s.list(agent, artmesh.Filter{Limit: 1000})
		must("list "+string(agent), p, err)
		p, err = s.list(agent, artmesh.Filter{Meta: []artmesh.MetaMatch{{Key: "even", Value: "1"}}})
		must("list meta "+string(agent), p, err)
		p, err = s.listShared(agent, artmesh.Filter{})
		must("shared "+string(agent), p, err)
		a, err := s.agentByKeyHash("hash-" + string(agent))
		if agent == "carol" {
			err = nil
		}
		must("by key "+string(agent), a, err)
	}
	agents, err := s.agents()
	must("agents", agents, err)
	groups, err := s.groups()
	must("groups", groups, err)
	cids, err := s.liveCIDs()
	must("cids", cids, err)
	evs, err := s.events(^uint64(0), 0, 1<<30)
	must("events", evs, err)
	tx := s.db.Txn(false)
	defer tx.Abort()
	for _, table := range []string{tableUploads, tableTokens, tableMembers, tableInvites, tablePlacement, tableFetching} {
		rows, err := collect[any](tx.Get(table, indexID))
		must(table, rows, err)
	}
	return out
}

func TestSnapshotRoundTrip(t *testing.T) {
	h := newTestFSM(t)
	arts := fill(h)
	before := dump(t, h.st(), arts)

	// A full snapshot, as sent to a member: writes after it was taken are
	// not in it.
	var full bytes.Buffer
	if _, err := h.st().writeFullSnapshot(&full); err != nil {
		t.Fatal(err)
	}
	h.must(deleteArtifactCmd{ID: arts[0]})
	data := full.Bytes()

	r := newTestFSM(t)
	r.agent("stale") // Restore replaces whatever was there
	if err := r.f.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	after := dump(t, r.st(), arts)
	if !reflect.DeepEqual(before, after) {
		for k := range before {
			if !reflect.DeepEqual(before[k], after[k]) {
				bj, _ := json.Marshal(before[k])
				aj, _ := json.Marshal(after[k])
				t.Errorf("%s:\n before %s\n after  %s", k, bj, aj)
			}
		}
		t.Fatal("restored state differs")
	}
	if got, want := r.f.applied.Load(), h.index-1; got != want {
		t.Fatalf("restored applied index = %d, want %d", got, want)
	}
	// The restored state goes on applying commands, numbering included.
	r.index = h.index
	v := r.must(AddVersion{ArtifactID: arts[0], By: "bob", CID: "next", At: testBase.Add(3 * time.Hour)}).(artmesh.Artifact)
	if v.Version != 5 {
		t.Fatalf("version after restore = %d, want 5 (4 was deleted)", v.Version)
	}

	// A cut-off, damaged or foreign snapshot is refused and leaves the
	// state alone.
	damaged := bytes.Clone(data)
	damaged[len(damaged)/2] ^= 1
	for _, bad := range [][]byte{data[:len(data)-1], data[:len(data)/2], damaged, []byte("hello"), nil} {
		fresh := newTestFSM(t)
		fresh.agent("kept")
		if err := fresh.f.Restore(io.NopCloser(bytes.NewReader(bad))); err == nil {
			t.Fatalf("restore of %d bytes of %d succeeded", len(bad), len(data))
		}
		if _, err := fresh.st().agent("kept"); err != nil {
			t.Fatalf("state after a failed restore: %v", err)
		}
	}
	if a, err := r.st().artifact(arts[0]); err != nil || a.Version != 5 {
		t.Fatalf("state after failed restores: %+v, %v", a, err)
	}
}

// TestRestoreClosesReplacedStore: a restore that replaces the state file
// closes the store it replaced once retireAfter has passed, so the
// unlinked file gives back its disk space and its map; closing the state
// machine closes it at once.
func TestRestoreClosesReplacedStore(t *testing.T) {
	h := newTestFSM(t)
	fill(h)
	var full bytes.Buffer
	if _, err := h.st().writeFullSnapshot(&full); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		after time.Duration
		close bool // close the state machine instead of waiting
	}{
		{"after retireAfter", 0, false},
		{"when the state machine closes", time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestFSM(t)
			r.f.retireAfter = tc.after
			old := r.st()
			if err := r.f.Restore(io.NopCloser(bytes.NewReader(full.Bytes()))); err != nil {
				t.Fatal(err)
			}
			if r.st() == old {
				t.Fatal("the restore kept the store")
			}
			if tc.close {
				if err := r.f.close(); err != nil {
					t.Fatal(err)
				}
			} else {
				r.f.retiring.Wait()
			}
			if _, err := old.db.bolt.Begin(false); !errors.Is(err, berrors.ErrDatabaseNotOpen) {
				t.Fatalf("the replaced store is still open (begin: %v)", err)
			}
		})
	}
}
