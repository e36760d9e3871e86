package catalog

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

func TestUploadLifecycle(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	exp := testBase.Add(time.Hour)
	up := func(id string, artifact artmesh.ArtifactID) Upload {
		return h.must(CreateUpload{Upload: Upload{ID: id, Owner: "alice", Name: "f.bin", ContentType: "application/octet-stream", SizeBytes: 10, ExpiresAt: exp, ArtifactID: artifact}, At: testBase}).(Upload)
	}
	u := up("upl_1", "")
	if u.State != StateOpen {
		t.Fatalf("new upload is %q", u.State)
	}
	if _, err := h.apply(CreateUpload{Upload: Upload{ID: "upl_1", Owner: "alice", SizeBytes: 1, ExpiresAt: exp}, At: testBase}); !errors.Is(err, artmesh.Conflict) {
		t.Fatalf("duplicate upload: %v", err)
	}
	if _, err := h.apply(CreateUpload{Upload: Upload{ID: "upl_x", Owner: "alice", SizeBytes: 1, ExpiresAt: exp, ArtifactID: "art_01JD0000000000000000000000"}, At: testBase}); !errors.Is(err, artmesh.NotFound) {
		t.Fatalf("upload for an unknown artifact: %v", err)
	}
	newID, at := h.nextID()
	// Not received yet: no confirm.
	if _, err := h.apply(ConfirmUpload{ID: "upl_1", NewID: newID, At: at}); !errors.Is(err, artmesh.Conflict) {
		t.Fatalf("confirm of an open upload: %v", err)
	}
	if _, err := h.apply(UploadReceived{ID: "upl_1", CID: "bafy1", SHA256: "ab", Size: 9, At: at}); !errors.Is(err, artmesh.Invalid) {
		t.Fatalf("received with the wrong size: %v", err)
	}
	h.must(UploadReceived{ID: "upl_1", CID: "bafy1", SHA256: "ab", Size: 10, At: at})
	if cids, _ := h.st().liveCIDs(); len(cids) != 1 || cids[0] != "bafy1" {
		t.Fatalf("a received upload's CID is not live: %v", cids)
	}
	a := h.must(ConfirmUpload{ID: "upl_1", NewID: newID, At: at}).(artmesh.Artifact)
	if a.ID != newID || a.CID != "bafy1" || a.Owner != "alice" || a.Version != 1 {
		t.Fatalf("confirm made %+v", a)
	}
	// A second confirm, even with another new id, creates nothing.
	other, at2 := h.nextID()
	if _, err := h.apply(ConfirmUpload{ID: "upl_1", NewID: other, At: at2}); !errors.Is(err, artmesh.Conflict) {
		t.Fatalf("second confirm: %v", err)
	}
	if page, _ := h.st().list("alice", artmesh.Filter{Limit: 10}); totalOf(page) != 1 {
		t.Fatalf("%d artifacts after two confirms", totalOf(page))
	}
	// An upload for an existing artifact becomes its next version.
	up("upl_2", a.ID)
	h.must(UploadReceived{ID: "upl_2", CID: "bafy2", Size: 10, At: at2})
	v2 := h.must(ConfirmUpload{ID: "upl_2", At: at2}).(artmesh.Artifact)
	if v2.ID != a.ID || v2.Version != 2 || v2.CID != "bafy2" {
		t.Fatalf("version upload made %+v", v2)
	}
	// A confirm after expiry fails.
	up("upl_3", "")
	h.must(UploadReceived{ID: "upl_3", CID: "bafy3", Size: 10, At: at2})
	late, _ := h.nextID()
	if _, err := h.apply(ConfirmUpload{ID: "upl_3", NewID: late, At: exp}); !errors.Is(err, artmesh.Expired) {
		t.Fatalf("late confirm: %v", err)
	}
	// Expiry forgets every upload due, and their CIDs stop being live.
	gone := h.must(expireUploadsCmd{At: exp}).([]string)
	if len(gone) != 3 {
		t.Fatalf("expired %v", gone)
	}
	if _, err := h.st().liveCIDs(); err != nil {
		t.Fatal(err)
	}
	cids, _ := h.st().liveCIDs()
	for _, c := range cids {
		if c == "bafy3" {
			t.Fatal("an expired upload's CID is still live")
		}
	}
	h.must(CreateUpload{Upload: Upload{ID: "upl_4", Owner: "alice", SizeBytes: 1, ExpiresAt: exp}, At: testBase})
	h.must(deleteUploadCmd{ID: "upl_4"})
	if _, err := h.apply(deleteUploadCmd{ID: "upl_4"}); !errors.Is(err, artmesh.NotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestTokens(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	h.must(issueTokenCmd{Token: Token{ID: "tok_a", Agent: "alice", Target: "art_x", ExpiresAt: testBase.Add(time.Hour)}})
	h.must(issueTokenCmd{Token: Token{ID: "tok_b", Agent: "alice", Target: "art_x", ExpiresAt: testBase.Add(2 * time.Hour)}})
	if _, err := h.apply(issueTokenCmd{Token: Token{ID: "tok_a"}}); !errors.Is(err, artmesh.Conflict) {
		t.Fatalf("duplicate token: %v", err)
	}
	h.must(issueTokenCmd{Token: Token{ID: "tok_c", Agent: "alice", Target: "art_xy", ExpiresAt: testBase.Add(time.Hour)}})
	h.must(revokeTokenCmd{ID: "tok_a"})
	if _, err := h.apply(revokeTokenCmd{ID: "tok_zzz"}); !errors.Is(err, artmesh.NotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	// The target index finds an artifact's tokens, and only its own (not
	// those of an id it is a prefix of).
	targetIDs := func(target string) string {
		t.Helper()
		ts, err := tokensFor(h.st(), target)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tk := range ts {
			out = append(out, fmt.Sprintf("%s:%v", tk.ID, tk.Revoked))
		}
		return strings.Join(out, ",")
	}
	if got := targetIDs("art_x"); got != "tok_a:true,tok_b:false" {
		t.Errorf("tokens for art_x: %s, want tok_a (revoked) and tok_b", got)
	}
	n := h.must(purgeTokensCmd{Before: testBase.Add(90 * time.Minute)}).(int)
	if n != 2 {
		t.Fatalf("purged %d tokens, want 2", n)
	}
	if got := targetIDs("art_x"); got != "tok_b:false" {
		t.Errorf("tokens for art_x after the purge: %s, want tok_b", got)
	}
	if got := targetIDs("art_xy"); got != "" {
		t.Errorf("tokens for art_xy after the purge: %s, want none", got)
	}
}

func TestInvites(t *testing.T) {
	h := newTestFSM(t)
	exp := testBase.Add(time.Hour)
	h.must(CreateInvite{Invite: Invite{SecretHash: "s1", ExpiresAt: exp}})
	if _, err := h.apply(ConsumeInvite{SecretHash: "nope", PeerID: "p1", At: testBase}); !errors.Is(err, artmesh.PermissionDenied) {
		t.Fatalf("unknown invite: %v", err)
	}
	if _, err := h.apply(ConsumeInvite{SecretHash: "s1", PeerID: "p1", At: exp}); !errors.Is(err, artmesh.Expired) {
		t.Fatalf("expired invite: %v", err)
	}
	h.must(ConsumeInvite{SecretHash: "s1", PeerID: "p1", At: testBase})
	h.must(ConsumeInvite{SecretHash: "s1", PeerID: "p1", At: testBase}) // a retried join
	if _, err := h.apply(ConsumeInvite{SecretHash: "s1", PeerID: "p2", At: testBase}); !errors.Is(err, artmesh.Conflict) {
		t.Fatalf("second use by another peer: %v", err)
	}
	h.must(PutMember{Member: Member{PeerID: "p1", Addresses: []string{"/ip4/127.0.0.1/tcp/9"}}})
	h.must(deleteMemberCmd{PeerID: "p1"})
	if _, err := h.apply(deleteMemberCmd{PeerID: "p1"}); !errors.Is(err, artmesh.NotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestPlacement(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	id, at := h.nextID()
	h.must(CreateArtifact{ID: id, Name: "f", Owner: "alice", CID: "root1", At: at, Holder: "peer-a"})
	h.must(AddVersion{ArtifactID: id, By: "alice", CID: "root2", At: at, Holder: "peer-b"})
	h.must(addHolderCmd{CID: "root1", Peer: "peer-c"})
	h.must(addHolderCmd{CID: "root1", Peer: "peer-c"})
	got := func(cid string) []string {
		var out []string
		tx := h.st().db.Txn(false)
		defer tx.Abort()
		if raw, _ := tx.First(tablePlacement, indexID, cid); raw != nil {
			out = raw.(*Placement).Holders
		}
		return out
	}
	if g := got("root1"); len(g) != 2 || g[0] != "peer-a" || g[1] != "peer-c" {
		t.Fatalf("root1 holders %v", g)
	}
	if g := got("root2"); len(g) != 1 || g[0] != "peer-b" {
		t.Fatalf("root2 holders %v", g)
	}
	// The last holder record is never dropped.
	h.must(removeHolderCmd{CID: "root2", Peer: "peer-b"})
	if g := got("root2"); len(g) != 1 || g[0] != "peer-b" {
		t.Fatalf("root2 holders after removing the last holder %v", g)
	}
	h.must(removeHolderCmd{CID: "root1", Peer: "peer-a"})
	if g := got("root1"); len(g) != 1 || g[0] != "peer-c" {
		t.Fatalf("root1 holders after removal %v", g)
	}
	// Deleting the version that references root2 drops its placement.
	h.must(DeleteVersion{ArtifactID: id, Version: 2, At: at})
	if g := got("root2"); g != nil {
		t.Fatalf("root2 holders after its version was deleted %v", g)
	}
	if g := got("root1"); len(g) != 1 {
		t.Fatalf("root1 holders after another version was deleted %v", g)
	}
}

func TestRemovedMemberLosesItsJoinAgentKeys(t *testing.T) {
	h := newTestFSM(t)
	h.agent("admin-p1")
	h.agent("bob")
	h.must(PutMember{Member: Member{PeerID: "p1", Agent: "admin-p1"}})
	// An update of addresses (as a node sends for itself) keeps the agent.
	h.must(PutMember{Member: Member{PeerID: "p1", Addresses: []string{"/ip4/127.0.0.1/tcp/9"}}})
	if _, err := h.st().agentByKeyHash("hash-admin-p1"); err != nil {
		t.Fatalf("join agent's key before the removal: %v", err)
	}
	h.must(deleteMemberCmd{PeerID: "p1"})
	if _, err := h.st().agentByKeyHash("hash-admin-p1"); !errors.Is(err, artmesh.NotFound) {
		t.Fatalf("join agent's key after the removal: got %v, want NotFound", err)
	}
	if _, err := h.st().agent("admin-p1"); err != nil {
		t.Fatalf("the agent itself stays: %v", err)
	}
	if _, err := h.st().agentByKeyHash("hash-bob"); err != nil {
		t.Fatalf("another agent's key: %v", err)
	}
}
