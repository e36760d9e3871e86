package catalog

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

// meta builds metadata conditions from alternating keys and values.
func meta(kv ...string) []artmesh.MetaMatch {
	var out []artmesh.MetaMatch
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, artmesh.MetaMatch{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

// cursorFixture gives alice 30 artifacts (and bob a twin of each) and
// returns alice's with their numbers. Every one has the metadata key
// "zz", which sorts after the others: a range of the owner_meta index
// (alice, tag, y) is followed by (alice, zz, 1) entries whose rows match
// tag=y too, which a listing must not take for the range going on.
func cursorFixture(h *testFSM) []artmesh.Artifact {
	h.agent("alice")
	h.agent("bob")
	var all []artmesh.Artifact
	for i := range 30 {
		ct := "text/plain"
		if i%2 == 1 {
			ct = "application/json"
		}
		tag := `"x"`
		if i%5 == 0 {
			tag = `"y"`
		}
		m := md("i", jsonInt(i), "bucket", jsonInt(i%3), "tag", tag, "zz", "1")
		name := fmt.Sprintf("file-%d", i%4)
		all = append(all, h.create("alice", name, ct, m))
		h.create("bob", name, ct, m)
	}
	return all
}

// matching returns the ids of as that keep accepts by number, newest first.
func matching(as []artmesh.Artifact, keep func(i int) bool) []artmesh.ArtifactID {
	var out []artmesh.ArtifactID
	for i := len(as) - 1; i >= 0; i-- {
		if keep(i) {
			out = append(out, as[i].ID)
		}
	}
	return out
}

// pageAll lists with f page by page, following the cursors, and checks
// that every page but the last is full and has a cursor.
func pageAll(t *testing.T, list func(artmesh.Filter) (artmesh.Page[artmesh.Artifact], error), f artmesh.Filter) []artmesh.ArtifactID {
	t.Helper()
	var got []artmesh.ArtifactID
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatalf("no end after 100 pages: %v", got)
		}
		p, err := list(f)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(p.Items)...)
		if p.NextCursor == "" {
			return got
		}
		if len(p.Items) != p.Limit {
			t.Fatalf("page %d has %d items of %d, and a cursor", pages, len(p.Items), p.Limit)
		}
		f.Cursor = p.NextCursor
	}
}

func TestListCursor(t *testing.T) {
	h := newTestFSM(t)
	all := cursorFixture(h)
	tests := []struct {
		name string
		f    artmesh.Filter
		keep func(i int) bool
	}{
		{"unfiltered", artmesh.Filter{}, func(int) bool { return true }},
		{"content type", artmesh.Filter{ContentType: "application/json"}, func(i int) bool { return i%2 == 1 }},
		{"name", artmesh.Filter{Name: "file-2"}, func(i int) bool { return i%4 == 2 }},
		{"metadata", artmesh.Filter{Meta: meta("bucket", "1")}, func(i int) bool { return i%3 == 1 }},
		{"metadata range followed by matching rows", artmesh.Filter{Meta: meta("tag", "y")}, func(i int) bool { return i%5 == 0 }},
		{"two metadata conditions", artmesh.Filter{Meta: meta("bucket", "0", "tag", "x")}, func(i int) bool { return i%3 == 0 && i%5 != 0 }},
		{"metadata and type", artmesh.Filter{ContentType: "text/plain", Meta: meta("bucket", "2")}, func(i int) bool { return i%2 == 0 && i%3 == 2 }},
		{"no match", artmesh.Filter{Meta: meta("bucket", "7")}, func(int) bool { return false }},
	}
	list := func(f artmesh.Filter) (artmesh.Page[artmesh.Artifact], error) { return h.st().list("alice", f) }
	for _, tt := range tests {
		for _, limit := range []int{1, 2, 4, 50} {
			t.Run(fmt.Sprintf("%s/limit=%d", tt.name, limit), func(t *testing.T) {
				f := tt.f
				f.Limit = limit
				want := matching(all, tt.keep)
				if got := pageAll(t, list, f); !slices.Equal(got, want) {
					t.Fatalf("paged by cursor:\n got %v\nwant %v", got, want)
				}
			})
		}
	}
}

// TestListCursorUnderChanges lists a page, then deletes the artifact the
// cursor points at and one further on, and creates newer ones, before the
// rest: the rest is what followed the first page, less the deleted one,
// with nothing repeated or skipped. (An offset would skip one.)
func TestListCursorUnderChanges(t *testing.T) {
	tests := []struct {
		name   string
		shared bool
		f      artmesh.Filter
		keep   func(i int) bool
	}{
		{"unfiltered", false, artmesh.Filter{}, func(int) bool { return true }},
		{"metadata", false, artmesh.Filter{Meta: meta("bucket", "1")}, func(i int) bool { return i%3 == 1 }},
		{"content type", false, artmesh.Filter{ContentType: "text/plain"}, func(i int) bool { return i%2 == 0 }},
		{"two conditions", false, artmesh.Filter{Meta: meta("tag", "x"), ContentType: "text/plain"}, func(i int) bool { return i%2 == 0 && i%5 != 0 }},
		{"shared", true, artmesh.Filter{}, func(int) bool { return true }},
		{"shared and filtered", true, artmesh.Filter{Meta: meta("bucket", "1")}, func(i int) bool { return i%3 == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestFSM(t)
			all := cursorFixture(h)
			h.agent("carol", "readers")
			list := func(f artmesh.Filter) (artmesh.Page[artmesh.Artifact], error) { return h.st().list("alice", f) }
			if tt.shared {
				for i, a := range all { // half directly, half through a group
					if i%2 == 0 {
						h.must(shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"carol"}})
					} else {
						h.must(shareCmd{ID: a.ID, Groups: []string{"readers"}})
					}
				}
				list = func(f artmesh.Filter) (artmesh.Page[artmesh.Artifact], error) { return h.st().listShared("carol", f) }
			}
			want := matching(all, tt.keep)
			f := tt.f
			f.Limit = 3
			first, err := list(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(first.Items); !slices.Equal(got, want[:3]) || first.NextCursor == "" {
				t.Fatalf("first page %v (cursor %q), want %v", got, first.NextCursor, want[:3])
			}
			h.must(deleteArtifactCmd{ID: want[2]}) // the cursor's own
			h.must(deleteArtifactCmd{ID: want[4]}) // one on the next page
			for range 3 {                          // newer ones that match
				a := h.create("alice", "file-0", "text/plain", md("bucket", "1", "tag", `"x"`))
				if tt.shared {
					h.must(shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"carol"}})
				}
			}
			f.Cursor = first.NextCursor
			rest := pageAll(t, list, f)
			wantRest := slices.Concat(want[3:4], want[5:])
			if !slices.Equal(rest, wantRest) {
				t.Fatalf("after the changes:\n got %v\nwant %v", rest, wantRest)
			}
		})
	}
}

func TestListCursorAndTotal(t *testing.T) {
	h := newTestFSM(t)
	all := cursorFixture(h)
	h.agent("carol")
	h.must(shareCmd{ID: all[0].ID, Agents: []artmesh.AgentID{"carol"}})
	mid := artmesh.EncodeCursor(all[15].ID)
	gone := artmesh.EncodeCursor(artmesh.NewArtifactID(testBase.Add(31 * time.Millisecond))) // between all[15] and all[16] (30 and 32 ms): never existed
	tests := []struct {
		name      string
		shared    bool
		f         artmesh.Filter
		wantIDs   []artmesh.ArtifactID
		wantTotal int // -1: none
		wantNext  bool
		wantErr   artmesh.Kind
	}{
		{"unfiltered counts all from the owned table", false, artmesh.Filter{Limit: 2}, matching(all, func(i int) bool { return i >= 28 }), 30, true, artmesh.Other},
		{"unfiltered after a cursor still counts all", false, artmesh.Filter{Limit: 2, Cursor: mid}, matching(all, func(i int) bool { return i == 13 || i == 14 }), 30, true, artmesh.Other},
		{"a filter has no total", false, artmesh.Filter{Limit: 2, Meta: meta("bucket", "0")}, matching(all, func(i int) bool { return i == 27 || i == 24 }), -1, true, artmesh.Other},
		{"a shared listing has no total", true, artmesh.Filter{}, []artmesh.ArtifactID{all[0].ID}, -1, false, artmesh.Other},
		{"the cursor of an artifact that never existed", false, artmesh.Filter{Limit: 1, Cursor: gone}, matching(all, func(i int) bool { return i == 15 }), 30, true, artmesh.Other},
		{"a last page that is exactly full has no cursor", false, artmesh.Filter{Limit: 2, Cursor: artmesh.EncodeCursor(all[2].ID)}, matching(all, func(i int) bool { return i < 2 }), 30, false, artmesh.Other},
		{"offset still works", false, artmesh.Filter{Limit: 2, Offset: 3}, matching(all, func(i int) bool { return i == 26 || i == 25 }), 30, true, artmesh.Other},
		{"a cursor that is not one", false, artmesh.Filter{Cursor: "art_01JD0000000000000000000000"}, nil, 0, false, artmesh.Invalid},
		{"a cursor of something else", true, artmesh.Filter{Cursor: "MTpub3Q"}, nil, 0, false, artmesh.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p artmesh.Page[artmesh.Artifact]
			var err error
			if tt.shared {
				p, err = h.st().listShared("carol", tt.f)
			} else {
				p, err = h.st().list("alice", tt.f)
			}
			wantKind(t, err, tt.wantErr)
			if err != nil {
				return
			}
			if got := ids(p.Items); !slices.Equal(got, tt.wantIDs) {
				t.Fatalf("items %v, want %v", got, tt.wantIDs)
			}
			if totalOf(p) != tt.wantTotal || (p.NextCursor != "") != tt.wantNext {
				t.Fatalf("total %d, next cursor %q; want %d, a cursor %v", totalOf(p), p.NextCursor, tt.wantTotal, tt.wantNext)
			}
		})
	}
}

// TestOwnerPlan checks the index a filtered listing walks: the smallest
// when one has fewer than probeCap entries, else the sparsest.
func TestOwnerPlan(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	n := 3 * probeCap
	for i := range n {
		m := md("dense", "1", "half", jsonInt(i%2), "third", jsonInt(i%3))
		if i%500 == 0 {
			m["rare"] = []byte("1")
		}
		h.create("alice", fmt.Sprintf("f-%d", i%4), "text/plain", m)
	}
	tests := []struct {
		name string
		f    artmesh.Filter
		want []any
	}{
		{"none: the owner index", artmesh.Filter{}, []any{"alice"}},
		{"one condition", artmesh.Filter{Meta: meta("dense", "1")}, []any{"alice", "dense", "1"}},
		{"all capped: the sparsest, though last", artmesh.Filter{Meta: meta("dense", "1", "half", "0", "third", "0")}, []any{"alice", "third", "0"}},
		{"all capped: the sparsest, first", artmesh.Filter{Meta: meta("third", "1", "dense", "1"), ContentType: "text/plain"}, []any{"alice", "third", "1"}},
		{"one under the cap: the smallest", artmesh.Filter{Meta: meta("third", "1", "rare", "1")}, []any{"alice", "rare", "1"}},
		{"a name under the cap", artmesh.Filter{Name: "f-1", Meta: meta("rare", "1", "dense", "1")}, []any{"alice", "rare", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := read(h.st(), func(tx *Txn) ([]any, error) {
				_, args, err := ownerPlanTxn(tx, "alice", tt.f)
				return args, err
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("planned %v, want %v", got, tt.want)
			}
		})
	}
}
