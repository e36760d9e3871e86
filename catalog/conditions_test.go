package catalog

import (
	"sync"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

// TestConditionalWrites: If-Match is checked in the write's own
// transaction, so of concurrent updates from one version exactly one
// applies, through the leader or a follower; If-None-Match: * creates a
// name once; a forwarded conditional write keeps its precondition.
func TestConditionalWrites(t *testing.T) {
	ctx := testCtx(t)
	nodes, _, leader := startCluster(t, ctx, 3, true)
	follower := followerOf(nodes, leader)
	if _, err := leader.CreateAgent(ctx, CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: time.Now()}, KeyHash: "k"}); err != nil {
		t.Fatal(err)
	}
	a, err := leader.CreateArtifact(ctx, createCmd("doc"))
	if err != nil {
		t.Fatal(err)
	}
	version := func(cid string) AddVersion {
		return AddVersion{ArtifactID: a.ID, By: "alice", CID: cid, SizeBytes: 1, At: time.Now().UTC()}
	}
	for round, cat := range []*Catalog{leader, follower} {
		cur, err := leader.Artifact(a.ID)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx := WithPrecondition(ctx, Precondition{IfMatch: []string{`"` + cur.CID + `"`}})
				_, errs[i] = cat.AddVersion(cctx, version(cur.CID+"-next-"+string(rune('a'+i))))
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case artmesh.KindOf(err) != artmesh.PreconditionFailed:
				t.Fatalf("round %d: %v, want precondition_failed", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of 4 updates from one version applied, want 1 (%v)", round, ok, errs)
		}
	}
	// * matches any version; a stale tag fails a deletion.
	cur, _ := leader.Artifact(a.ID)
	if _, err := follower.AddVersion(WithPrecondition(ctx, Precondition{IfMatch: []string{"*"}}), version("c-star")); err != nil {
		t.Fatal(err)
	}
	err = follower.DeleteArtifact(WithPrecondition(ctx, Precondition{IfMatch: []string{cur.CID}}), a.ID)
	wantKind(t, err, artmesh.PreconditionFailed)
	if _, err := leader.Artifact(a.ID); err != nil {
		t.Fatal("a refused conditional delete deleted")
	}

	// If-None-Match: * on a name.
	nctx := WithPrecondition(ctx, Precondition{IfNoneMatch: true})
	if _, err := follower.CreateArtifact(nctx, createCmd("fresh")); err != nil {
		t.Fatal(err)
	}
	_, err = follower.CreateArtifact(nctx, createCmd("fresh"))
	wantKind(t, err, artmesh.PreconditionFailed)
	_, err = leader.CreateArtifact(nctx, createCmd("doc"))
	wantKind(t, err, artmesh.PreconditionFailed)
	// A name that is a prefix of a taken one is free.
	if _, err := leader.CreateArtifact(nctx, createCmd("do")); err != nil {
		t.Fatal(err)
	}
}

func TestPreconditionMatches(t *testing.T) {
	for _, tc := range []struct {
		tags []string
		want bool
	}{
		{nil, true},
		{[]string{"*"}, true},
		{[]string{`"bafy1"`}, true},
		{[]string{`W/"bafy1"`}, true},
		{[]string{"bafy1"}, true},
		{[]string{`"bafy2"`, `"bafy1"`}, true},
		{[]string{`"bafy2"`}, false},
	} {
		if got := (Precondition{IfMatch: tc.tags}).Matches("bafy1"); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.tags, got, tc.want)
		}
	}
	if got := ParseETags(` "a" , W/"b",`); len(got) != 2 || got[0] != `"a"` || got[1] != `W/"b"` {
		t.Errorf("ParseETags: %q", got)
	}
}
