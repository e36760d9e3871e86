package catalog

import (
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

// usageOf returns an agent's counted usage in h's state.
func usageOf(t *testing.T, s *store, agent artmesh.AgentID) artmesh.Usage {
	t.Helper()
	st, err := read(s, func(tx *Txn) (artmesh.QuotaStatus, error) {
		return quotaStatusTxn(tx, "test", agent)
	})
	if err != nil {
		t.Fatal(err)
	}
	return st.Usage
}

// TestUsageCounters follows one agent's usage through every write that
// changes it, and checks after each step that a state restored from a
// snapshot (which derives the counters) counts the same.
func TestUsageCounters(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	h.agent("bob")
	exp := testBase.Add(time.Hour)
	a1, at1 := h.nextID()
	a2, at2 := h.nextID()
	steps := []struct {
		name string
		cmd  command
		want artmesh.Usage
	}{
		{"create", CreateArtifact{ID: a1, Name: "a", Owner: "alice", CID: "c1", SizeBytes: 10, At: at1}, artmesh.Usage{Bytes: 10}},
		{"add version", AddVersion{ArtifactID: a1, By: "alice", CID: "c2", SizeBytes: 30, At: at1}, artmesh.Usage{Bytes: 40}},
		{"add another", AddVersion{ArtifactID: a1, By: "alice", CID: "c3", SizeBytes: 5, At: at1}, artmesh.Usage{Bytes: 45}},
		{"delete a version", DeleteVersion{ArtifactID: a1, Version: 2, At: at1}, artmesh.Usage{Bytes: 15}},
		{"create upload", CreateUpload{Upload: Upload{ID: "upl_1", Owner: "alice", Name: "u", SizeBytes: 100, ExpiresAt: exp}, At: testBase}, artmesh.Usage{Bytes: 15, Staged: 100, Uploads: 1}},
		{"create another", CreateUpload{Upload: Upload{ID: "upl_2", Owner: "alice", Name: "u", SizeBytes: 7, ExpiresAt: exp}, At: testBase}, artmesh.Usage{Bytes: 15, Staged: 107, Uploads: 2}},
		{"bob's upload", CreateUpload{Upload: Upload{ID: "upl_b", Owner: "bob", Name: "u", SizeBytes: 1, ExpiresAt: exp}, At: testBase}, artmesh.Usage{Bytes: 15, Staged: 107, Uploads: 2}},
		{"received", UploadReceived{ID: "upl_1", CID: "cu", SHA256: "ff", Size: 100, At: testBase}, artmesh.Usage{Bytes: 15, Staged: 107, Uploads: 2}},
		{"confirm", ConfirmUpload{ID: "upl_1", NewID: a2, At: at2}, artmesh.Usage{Bytes: 115, Staged: 7, Uploads: 1}},
		{"delete the confirmed upload", deleteUploadCmd{ID: "upl_1"}, artmesh.Usage{Bytes: 115, Staged: 7, Uploads: 1}},
		{"short upload", CreateUpload{Upload: Upload{ID: "upl_3", Owner: "alice", Name: "u", SizeBytes: 8, ExpiresAt: testBase.Add(time.Minute)}, At: testBase}, artmesh.Usage{Bytes: 115, Staged: 15, Uploads: 2}},
		{"expire", expireUploadsCmd{At: testBase.Add(2 * time.Minute)}, artmesh.Usage{Bytes: 115, Staged: 7, Uploads: 1}},
		{"delete an open upload", deleteUploadCmd{ID: "upl_2"}, artmesh.Usage{Bytes: 115}},
		{"delete an artifact", deleteArtifactCmd{ID: a1}, artmesh.Usage{Bytes: 100}},
		{"delete the last", deleteArtifactCmd{ID: a2}, artmesh.Usage{}},
	}
	for _, s := range steps {
		h.must(s.cmd)
		if got := usageOf(t, h.st(), "alice"); got != s.want {
			t.Fatalf("%s: usage %+v, want %+v", s.name, got, s.want)
		}
		if got := usageOf(t, h.restored().st(), "alice"); got != s.want {
			t.Fatalf("%s: restored usage %+v, want %+v", s.name, got, s.want)
		}
	}
	if got, want := usageOf(t, h.st(), "bob"), (artmesh.Usage{Staged: 1, Uploads: 1}); got != want {
		t.Fatalf("bob's usage %+v, want %+v", got, want)
	}
	// Rows that came to zero are gone, not kept as zeros.
	n, err := read(h.st(), func(tx *Txn) (int, error) {
		rows, err := collect[*usageRow](tx.Get(tableUsage, indexID))
		return len(rows), err
	})
	if err != nil || n != 1 {
		t.Fatalf("%d usage rows (%v), want 1 (bob's)", n, err)
	}
}

// TestQuotaLimits checks the limits the state machine enforces, in order:
// each step is applied to the state the earlier ones left.
func TestQuotaLimits(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	h.agent("bob")
	h.must(CreateAgent{Agent: artmesh.Agent{ID: "carol", Admin: true, CreatedAt: testBase}})
	base, _ := h.nextID()
	h.must(CreateArtifact{ID: base, Name: "base", Owner: "alice", CID: "c0", SizeBytes: 1, At: testBase})
	exp := testBase.Add(time.Hour)
	newArt := func(owner artmesh.AgentID, size int64) command {
		id, at := h.nextID()
		return CreateArtifact{ID: id, Name: "f", Owner: owner, CID: "c-" + string(id), SizeBytes: size, At: at}
	}
	upload := func(id string, owner artmesh.AgentID, size int64) command {
		return CreateUpload{Upload: Upload{ID: id, Owner: owner, Name: "u", SizeBytes: size, ExpiresAt: exp}, At: testBase}
	}
	big := newArt("alice", 1<<40)
	steps := []struct {
		name string
		cmd  command
		want artmesh.Kind // artmesh.Other: success
	}{
		{"no quota: anything goes", big, artmesh.Other},
		{"delete it", deleteArtifactCmd{ID: big.(CreateArtifact).ID}, artmesh.Other},
		{"defaults", setQuotaCmd{Quota: artmesh.Quota{Bytes: 100, Staged: 20, Uploads: 1}}, artmesh.Other},
		{"within the default", newArt("alice", 59), artmesh.Other},
		{"over the default", newArt("alice", 41), artmesh.QuotaExceeded},
		{"a version over it", AddVersion{ArtifactID: base, By: "alice", CID: "cv", SizeBytes: 41, At: testBase}, artmesh.QuotaExceeded},
		{"a version up to it", AddVersion{ArtifactID: base, By: "alice", CID: "cv", SizeBytes: 40, At: testBase}, artmesh.Other},
		{"admins are unlimited", newArt("carol", 1000), artmesh.Other},
		{"an admin's own quota", setQuotaCmd{Agent: "carol", Quota: artmesh.Quota{Bytes: 1000}}, artmesh.Other},
		{"binds the admin", newArt("carol", 1), artmesh.QuotaExceeded},
		{"unlimited override", setQuotaCmd{Agent: "alice", Quota: artmesh.Quota{Bytes: artmesh.Unlimited}}, artmesh.Other},
		{"lifts the default", newArt("alice", 1000), artmesh.Other},
		{"an upload within", upload("upl_1", "bob", 15), artmesh.Other},
		{"one upload too many", upload("upl_2", "bob", 1), artmesh.TooMany},
		{"staged over", upload("upl_3", "alice", 21), artmesh.QuotaExceeded},
		{"staged bytes count against bytes", newArt("bob", 86), artmesh.QuotaExceeded},
		{"up to bytes with staged", newArt("bob", 85), artmesh.Other},
		{"negative limit", setQuotaCmd{Agent: "bob", Quota: artmesh.Quota{Uploads: -2}}, artmesh.Invalid},
		{"unknown agent", setQuotaCmd{Agent: "nobody", Quota: artmesh.Quota{Uploads: 1}}, artmesh.NotFound},
		{"policy change keeps defaults", setPolicyCmd{Policy: Policy{ReplicationFactor: 3, WriteReplicas: 1}}, artmesh.Other},
		{"so the default still binds", newArt("bob", 1), artmesh.QuotaExceeded},
	}
	for _, s := range steps {
		before, _ := h.st().list("alice", artmesh.Filter{Limit: 1})
		_, err := h.apply(s.cmd)
		wantKind(t, err, s.want)
		if s.want == artmesh.QuotaExceeded {
			after, _ := h.st().list("alice", artmesh.Filter{Limit: 1})
			if totalOf(after) != totalOf(before) {
				t.Fatalf("%s: refused, yet alice has %d artifacts, had %d", s.name, totalOf(after), totalOf(before))
			}
		}
	}
	if got, want := usageOf(t, h.st(), "bob"), (artmesh.Usage{Bytes: 85, Staged: 15, Uploads: 1}); got != want {
		t.Fatalf("bob's usage %+v, want %+v", got, want)
	}
	st, err := read(h.st(), func(tx *Txn) (artmesh.QuotaStatus, error) { return quotaStatusTxn(tx, "test", "carol") })
	if err != nil {
		t.Fatal(err)
	}
	want := artmesh.Quota{Bytes: 1000, Staged: artmesh.Unlimited, Uploads: artmesh.Unlimited, Streams: artmesh.Unlimited}
	if st.Limits != want || st.Defaults != (artmesh.Quota{Bytes: 100, Staged: 20, Uploads: 1}) {
		t.Fatalf("carol's limits %+v defaults %+v", st.Limits, st.Defaults)
	}
	if p, _ := read(h.st(), policyTxn); p.ReplicationFactor != 3 {
		t.Fatalf("policy %+v", p)
	}
	// A snapshot carries the defaults and the agents' own limits.
	r := h.restored()
	for _, agent := range []artmesh.AgentID{"alice", "bob", "carol"} {
		want, _ := read(h.st(), func(tx *Txn) (artmesh.QuotaStatus, error) { return quotaStatusTxn(tx, "test", agent) })
		got, err := read(r.st(), func(tx *Txn) (artmesh.QuotaStatus, error) { return quotaStatusTxn(tx, "test", agent) })
		if err != nil || got != want {
			t.Fatalf("%s after restore: %+v (%v), want %+v", agent, got, err, want)
		}
	}
}
