package catalog

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
)

func TestCreateArtifact(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	id, at := h.nextID()
	ok := CreateArtifact{
		ID: id, Name: "report.pdf", ContentType: "application/pdf", Owner: "alice",
		Metadata: md("year", "2025", "gone", "null"), CID: "cid1", SizeBytes: 42, At: at,
	}
	tests := []struct {
		name string
		cmd  func() CreateArtifact
		want artmesh.Kind
	}{
		{"created", func() CreateArtifact { return ok }, artmesh.Other},
		{"same id again", func() CreateArtifact { return ok }, artmesh.Conflict},
		{"owner is not an agent", func() CreateArtifact {
			c := ok
			c.ID, c.At = h.nextID()
			c.Owner = "nobody"
			return c
		}, artmesh.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.apply(tt.cmd())
			wantKind(t, err, tt.want)
		})
	}
	a, err := h.st().artifact(id)
	if err != nil {
		t.Fatal(err)
	}
	want := artmesh.Artifact{
		ID: id, Name: "report.pdf", Owner: "alice", ContentType: "application/pdf", SizeBytes: 42,
		CID: "cid1", Version: 1, Metadata: md("year", "2025"), CreatedAt: at, UpdatedAt: at,
	}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("artifact = %+v, want %+v", a, want)
	}
	v, err := h.st().version(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != 1 || v.CreatedBy != "alice" || v.Parent != 0 || v.CID != "cid1" || !reflect.DeepEqual(v.Metadata, want.Metadata) {
		t.Fatalf("version 1 = %+v", v)
	}
	// Reads hand out copies: changing one does not change the state.
	a.Metadata["year"] = json.RawMessage(`1999`)
	if again, _ := h.st().artifact(id); string(again.Metadata["year"]) != "2025" {
		t.Fatal("a read's metadata aliases the state")
	}
}

func TestVersions(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	h.agent("bob")
	a := h.create("alice", "model.bin", "application/octet-stream", md("stage", `"train"`, "epoch", "1"))
	at := func(i int) time.Time { return testBase.Add(time.Hour + time.Duration(i)*time.Minute) }
	add := func(i int, ct string, m artmesh.Metadata) artmesh.Artifact {
		t.Helper()
		return h.must(AddVersion{ArtifactID: a.ID, By: "bob", ContentType: ct, Metadata: m, CID: "cid-v" + string(rune('0'+i)), SizeBytes: int64(i), At: at(i)}).(artmesh.Artifact)
	}
	v2 := add(2, "", md("epoch", "2", "loss", "0.5"))
	if v2.Version != 2 || v2.ContentType != "application/octet-stream" || v2.CID != "cid-v2" || !v2.UpdatedAt.Equal(at(2)) || !v2.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("after v2: %+v", v2)
	}
	if want := md("stage", `"train"`, "epoch", "2", "loss", "0.5"); !reflect.DeepEqual(v2.Metadata, want) {
		t.Fatalf("v2 metadata = %s, want merged %s", v2.Metadata, want)
	}
	v3 := add(3, "application/x-model", md("loss", "null", "stage", `"eval"`))
	if want := md("stage", `"eval"`, "epoch", "2"); !reflect.DeepEqual(v3.Metadata, want) {
		t.Fatalf("v3 metadata = %s, want %s (null removes)", v3.Metadata, want)
	}
	if v3.ContentType != "application/x-model" {
		t.Fatalf("v3 content type = %q", v3.ContentType)
	}
	got, _ := h.st().version(a.ID, 3)
	if got.Parent != 2 || got.CreatedBy != "bob" {
		t.Fatalf("v3 = %+v, want parent 2 by bob", got)
	}

	tests := []struct {
		name        string
		version     int
		want        artmesh.Kind
		wantCurrent int
		wantCID     string
		wantLeft    []int
	}{
		{"no such version", 7, artmesh.NotFound, 3, "cid-v3", []int{1, 2, 3}},
		{"delete the current one: the previous takes over", 3, artmesh.Other, 2, "cid-v2", []int{1, 2}},
		{"deleted already", 3, artmesh.NotFound, 2, "cid-v2", []int{1, 2}},
		{"delete an older one: current unchanged", 1, artmesh.Other, 2, "cid-v2", []int{2}},
		{"the only one left", 2, artmesh.Conflict, 2, "cid-v2", []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.apply(DeleteVersion{ArtifactID: a.ID, Version: tt.version, At: at(9)})
			wantKind(t, err, tt.want)
			cur, err := h.st().artifact(a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if cur.Version != tt.wantCurrent || cur.CID != tt.wantCID {
				t.Fatalf("current = v%d %s, want v%d %s", cur.Version, cur.CID, tt.wantCurrent, tt.wantCID)
			}
			vs, err := h.st().versions(a.ID)
			if err != nil {
				t.Fatal(err)
			}
			var nums []int
			for _, v := range vs {
				nums = append(nums, v.Version)
			}
			if !slices.Equal(nums, tt.wantLeft) {
				t.Fatalf("versions = %v, want %v", nums, tt.wantLeft)
			}
		})
	}
	// After deleting v3, the state is v2's again, metadata included.
	cur, _ := h.st().artifact(a.ID)
	if want := md("stage", `"train"`, "epoch", "2", "loss", "0.5"); !reflect.DeepEqual(cur.Metadata, want) || cur.ContentType != "application/octet-stream" || !cur.UpdatedAt.Equal(at(2)) {
		t.Fatalf("current after deletes = %+v", cur)
	}
	// Numbers are never reused: v3 was deleted, the next is 4.
	if v4 := add(4, "", nil); v4.Version != 4 {
		t.Fatalf("next version = %d, want 4", v4.Version)
	}
	if v, _ := h.st().version(a.ID, 4); v.Parent != 2 {
		t.Fatalf("v4 parent = %d, want 2", v.Parent)
	}
	// The metadata filter index follows the current state.
	p, _ := h.st().list("alice", artmesh.Filter{Meta: []artmesh.MetaMatch{{Key: "loss", Value: "0.5"}}})
	if len(p.Items) != 1 || p.Total != nil {
		t.Fatalf("list by current metadata: %d items (total %v), want 1 and no total", len(p.Items), p.Total)
	}
	p, _ = h.st().list("alice", artmesh.Filter{Meta: []artmesh.MetaMatch{{Key: "stage", Value: "eval"}}})
	if len(p.Items) != 0 {
		t.Fatalf("list by deleted version's metadata: %d items, want 0", len(p.Items))
	}

	for _, cmd := range []command{
		AddVersion{ArtifactID: "art_01JD0000000000000000000000", By: "bob", CID: "x", At: at(5)},
		DeleteVersion{ArtifactID: "art_01JD0000000000000000000000", Version: 1, At: at(5)},
		deleteArtifactCmd{ID: "art_01JD0000000000000000000000"},
	} {
		_, err := h.apply(cmd)
		wantKind(t, err, artmesh.NotFound)
	}
	if _, err := h.st().versions("art_01JD0000000000000000000000"); !isKind(err, artmesh.NotFound) {
		t.Fatalf("versions of a missing artifact: %v", err)
	}
}

func isKind(err error, k artmesh.Kind) bool { return err != nil && artmesh.KindOf(err) == k }

func TestDeleteArtifact(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	h.agent("bob", "team")
	a := h.create("alice", "a", "text/plain", nil)
	b := h.create("alice", "b", "text/plain", nil)
	h.must(AddVersion{ArtifactID: a.ID, By: "alice", CID: "shared-cid", At: testBase.Add(time.Hour)})
	h.must(AddVersion{ArtifactID: b.ID, By: "alice", CID: "shared-cid", At: testBase.Add(time.Hour)})
	h.must(shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob"}, Groups: []string{"team"}})

	cids, _ := h.st().liveCIDs()
	if want := []string{"cid-" + string(a.ID), "cid-" + string(b.ID), "shared-cid"}; !slices.Equal(cids, want) {
		t.Fatalf("live CIDs = %v, want %v", cids, want)
	}
	h.must(deleteArtifactCmd{ID: a.ID})
	if _, err := h.st().artifact(a.ID); !isKind(err, artmesh.NotFound) {
		t.Fatalf("deleted artifact: %v", err)
	}
	if _, err := h.st().version(a.ID, 1); !isKind(err, artmesh.NotFound) {
		t.Fatalf("deleted artifact's version: %v", err)
	}
	if h.st().canRead("bob", a.ID) {
		t.Fatal("bob can read a deleted artifact")
	}
	if p, _ := h.st().listShared("bob", artmesh.Filter{}); len(p.Items) != 0 {
		t.Fatalf("deleted artifact still shared: %+v", p)
	}
	cids, _ = h.st().liveCIDs()
	if want := []string{"cid-" + string(b.ID), "shared-cid"}; !slices.Equal(cids, want) {
		t.Fatalf("live CIDs = %v, want %v", cids, want)
	}
	if p, _ := h.st().list("alice", artmesh.Filter{}); totalOf(p) != 1 || len(p.Items) != 1 || p.Items[0].ID != b.ID {
		t.Fatalf("list after delete = %+v", p)
	}
	_, err := h.apply(deleteArtifactCmd{ID: a.ID})
	wantKind(t, err, artmesh.NotFound)
	h.must(deleteArtifactCmd{ID: b.ID})
	if p, _ := h.st().list("alice", artmesh.Filter{}); totalOf(p) != 0 || len(p.Items) != 0 {
		t.Fatalf("list after deleting all = %+v", p)
	}
	h.must(deleteAgentCmd{ID: "alice"}) // owns nothing any more
}

func TestShare(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	h.agent("bob")
	h.agent("carol", "team")
	h.agent("dave")
	a := h.create("alice", "a", "text/plain", nil)

	tests := []struct {
		name       string
		cmd        command
		want       artmesh.Kind
		wantAgents []artmesh.AgentID
		wantGroups []string
	}{
		{"unknown agent", shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob", "zed"}}, artmesh.Invalid, nil, nil},
		{"unknown group", shareCmd{ID: a.ID, Groups: []string{"team", "nope"}}, artmesh.Invalid, nil, nil},
		{"share", shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"dave", "bob", "bob"}, Groups: []string{"team"}}, artmesh.Other,
			[]artmesh.AgentID{"bob", "dave"}, []string{"team"}},
		{"share again is a set", shareCmd{ID: a.ID, Agents: []artmesh.AgentID{"bob"}}, artmesh.Other,
			[]artmesh.AgentID{"bob", "dave"}, []string{"team"}},
		{"unshare", unshareCmd{ID: a.ID, Agents: []artmesh.AgentID{"dave", "never"}}, artmesh.Other,
			[]artmesh.AgentID{"bob"}, []string{"team"}},
		{"missing artifact", shareCmd{ID: "art_01JD0000000000000000000000", Agents: []artmesh.AgentID{"bob"}}, artmesh.NotFound,
			[]artmesh.AgentID{"bob"}, []string{"team"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.apply(tt.cmd)
			wantKind(t, err, tt.want)
			acc, err := h.st().access(a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if acc.Owner != "alice" || !slices.Equal(acc.Agents, tt.wantAgents) || !slices.Equal(acc.Groups, tt.wantGroups) {
				t.Fatalf("access = %+v, want agents %v groups %v", acc, tt.wantAgents, tt.wantGroups)
			}
		})
	}
	for agent, want := range map[artmesh.AgentID]bool{"alice": true, "bob": true, "carol": true, "dave": false, "zed": false} {
		if got := h.st().canRead(agent, a.ID); got != want {
			t.Errorf("CanRead(%s) = %v, want %v", agent, got, want)
		}
	}
	if h.st().canRead("alice", "art_01JD0000000000000000000000") {
		t.Error("CanRead of a missing artifact")
	}
}

func TestListShared(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice", "team")
	h.agent("bob", "team", "ops")
	h.agent("carol")
	a1 := h.create("alice", "a1", "text/plain", md("k", `"v"`))
	a2 := h.create("alice", "a2", "image/png", nil)
	a3 := h.create("carol", "c3", "text/plain", md("k", `"v"`))
	a4 := h.create("carol", "c4", "text/plain", nil)
	b5 := h.create("bob", "b5", "text/plain", nil)
	h.must(shareCmd{ID: a1.ID, Agents: []artmesh.AgentID{"bob"}, Groups: []string{"team"}}) // both ways
	h.must(shareCmd{ID: a2.ID, Groups: []string{"team"}})
	h.must(shareCmd{ID: a3.ID, Groups: []string{"ops"}})
	h.must(shareCmd{ID: a4.ID, Agents: []artmesh.AgentID{"bob"}})
	h.must(shareCmd{ID: b5.ID, Groups: []string{"team"}}) // bob's own: not in his shared list

	shared := func(agent artmesh.AgentID, f artmesh.Filter) ([]artmesh.ArtifactID, int) {
		t.Helper()
		p, err := h.st().listShared(agent, f)
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != nil {
			t.Fatalf("a shared listing has total %d: counting would read every match", *p.Total)
		}
		return ids(p.Items), len(p.Items)
	}
	steps := []struct {
		name  string
		cmd   command // applied first, if any
		agent artmesh.AgentID
		f     artmesh.Filter
		want  []artmesh.ArtifactID
		total int
	}{
		{"direct and through groups, newest first, own excluded", nil, "bob", artmesh.Filter{},
			[]artmesh.ArtifactID{a4.ID, a3.ID, a2.ID, a1.ID}, 4},
		{"filtered", nil, "bob", artmesh.Filter{ContentType: "text/plain", Meta: []artmesh.MetaMatch{{Key: "k", Value: "v"}}},
			[]artmesh.ArtifactID{a3.ID, a1.ID}, 2},
		{"paged", nil, "bob", artmesh.Filter{Limit: 2, Offset: 1},
			[]artmesh.ArtifactID{a3.ID, a2.ID}, 2},
		{"alice sees bob's through team", nil, "alice", artmesh.Filter{},
			[]artmesh.ArtifactID{b5.ID}, 1},
		{"leaving ops takes effect at once", putGroupCmd{Name: "ops", Members: nil}, "bob", artmesh.Filter{},
			[]artmesh.ArtifactID{a4.ID, a2.ID, a1.ID}, 3},
		{"joining ops too", putGroupCmd{Name: "ops", Members: []artmesh.AgentID{"alice", "bob"}}, "alice", artmesh.Filter{},
			[]artmesh.ArtifactID{b5.ID, a3.ID}, 2},
		{"unshare the direct grant of a1: still through team", unshareCmd{ID: a1.ID, Agents: []artmesh.AgentID{"bob"}}, "bob", artmesh.Filter{},
			[]artmesh.ArtifactID{a4.ID, a3.ID, a2.ID, a1.ID}, 4},
		{"deleting team removes its grants", deleteGroupCmd{Name: "team"}, "bob", artmesh.Filter{},
			[]artmesh.ArtifactID{a4.ID, a3.ID}, 2},
		{"nothing for carol", nil, "carol", artmesh.Filter{}, []artmesh.ArtifactID{}, 0},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.cmd != nil {
				h.must(s.cmd)
			}
			got, total := shared(s.agent, s.f)
			if !slices.Equal(got, s.want) || total != s.total {
				t.Fatalf("shared with %s = %v (total %d), want %v (total %d)", s.agent, got, total, s.want, s.total)
			}
		})
	}
	if acc, _ := h.st().access(a2.ID); len(acc.Groups) != 0 {
		t.Fatalf("deleted group still granted: %+v", acc)
	}
	_, err := h.apply(deleteGroupCmd{Name: "team"})
	wantKind(t, err, artmesh.NotFound)
}

func TestList(t *testing.T) {
	h := newTestFSM(t)
	h.agent("alice")
	h.agent("bob")
	type item struct {
		a artmesh.Artifact
		i int
	}
	var all []item
	for i := range 40 {
		ct := "text/plain"
		if i%2 == 1 {
			ct = "application/json"
		}
		name := "file-" + string(rune('a'+i%4))
		tag := `"x"`
		if i%5 == 0 {
			tag = `"y"`
		}
		m := md("i", jsonInt(i), "bucket", jsonInt(i%3), "tag", tag, "nested", `{"a": [1, 2]}`)
		all = append(all, item{h.create("alice", name, ct, m), i})
		h.create("bob", name, ct, m) // another owner's twins must never show
	}
	// want lists alice's artifacts whose i passes keep, newest first.
	want := func(keep func(i int) bool) []artmesh.ArtifactID {
		var out []artmesh.ArtifactID
		for j := len(all) - 1; j >= 0; j-- {
			if keep(all[j].i) {
				out = append(out, all[j].a.ID)
			}
		}
		return out
	}
	page := func(idsAll []artmesh.ArtifactID, offset, limit int) []artmesh.ArtifactID {
		out := []artmesh.ArtifactID{}
		for j := offset; j < len(idsAll) && j < offset+limit; j++ {
			out = append(out, idsAll[j])
		}
		return out
	}
	meta := func(kv ...string) []artmesh.MetaMatch {
		var out []artmesh.MetaMatch
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, artmesh.MetaMatch{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name       string
		f          artmesh.Filter
		keep       func(i int) bool
		wantLimit  int
		wantOffset int
	}{
		{"all", artmesh.Filter{}, func(int) bool { return true }, 50, 0},
		{"limit and offset", artmesh.Filter{Limit: 7, Offset: 5}, func(int) bool { return true }, 7, 5},
		{"offset past the end", artmesh.Filter{Offset: 100}, func(int) bool { return true }, 50, 100},
		{"limit capped", artmesh.Filter{Limit: 5000}, func(int) bool { return true }, artmesh.MaxListLimit, 0},
		{"negative offset", artmesh.Filter{Offset: -3}, func(int) bool { return true }, 50, 0},
		{"content type", artmesh.Filter{ContentType: "application/json"}, func(i int) bool { return i%2 == 1 }, 50, 0},
		{"name", artmesh.Filter{Name: "file-c"}, func(i int) bool { return i%4 == 2 }, 50, 0},
		{"name and type", artmesh.Filter{Name: "file-b", ContentType: "application/json"}, func(i int) bool { return i%4 == 1 }, 50, 0},
		{"name and wrong type", artmesh.Filter{Name: "file-b", ContentType: "text/plain"}, func(i int) bool { return false }, 50, 0},
		{"number metadata", artmesh.Filter{Meta: meta("bucket", "1")}, func(i int) bool { return i%3 == 1 }, 50, 0},
		{"number metadata paged", artmesh.Filter{Meta: meta("bucket", "1"), Limit: 3, Offset: 2}, func(i int) bool { return i%3 == 1 }, 3, 2},
		{"string metadata", artmesh.Filter{Meta: meta("tag", "y")}, func(i int) bool { return i%5 == 0 }, 50, 0},
		{"string metadata is not matched by its JSON text", artmesh.Filter{Meta: meta("tag", `"y"`)}, func(i int) bool { return false }, 50, 0},
		{"nested metadata by compact JSON", artmesh.Filter{Meta: meta("nested", `{"a":[1,2]}`)}, func(i int) bool { return true }, 50, 0},
		{"two metadata conditions", artmesh.Filter{Meta: meta("bucket", "0", "tag", "y")}, func(i int) bool { return i%15 == 0 }, 50, 0},
		{"selective second condition", artmesh.Filter{Meta: meta("tag", "x", "i", "7")}, func(i int) bool { return i == 7 }, 50, 0},
		{"metadata and type", artmesh.Filter{ContentType: "text/plain", Meta: meta("bucket", "2")}, func(i int) bool { return i%2 == 0 && i%3 == 2 }, 50, 0},
		{"no such key", artmesh.Filter{Meta: meta("nope", "1")}, func(i int) bool { return false }, 50, 0},
		{"value prefix does not match", artmesh.Filter{Meta: meta("i", "1")}, func(i int) bool { return i == 1 }, 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := h.st().list("alice", tt.f)
			if err != nil {
				t.Fatal(err)
			}
			matches := want(tt.keep)
			wantTotal := -1 // only an unfiltered listing counts
			if tt.f.Name == "" && tt.f.ContentType == "" && len(tt.f.Meta) == 0 {
				wantTotal = len(matches)
			}
			if totalOf(p) != wantTotal || p.Limit != tt.wantLimit || p.Offset != tt.wantOffset {
				t.Fatalf("total/limit/offset = %d/%d/%d, want %d/%d/%d", totalOf(p), p.Limit, p.Offset, wantTotal, tt.wantLimit, tt.wantOffset)
			}
			if more := tt.wantOffset+tt.wantLimit < len(matches); more != (p.NextCursor != "") {
				t.Fatalf("next cursor %q, want one: %v", p.NextCursor, more)
			}
			if got, w := ids(p.Items), page(matches, tt.wantOffset, tt.wantLimit); !slices.Equal(got, w) {
				t.Fatalf("items = %v, want %v", got, w)
			}
			if p.Items == nil {
				t.Fatal("items is nil; want an empty list")
			}
		})
	}
	// Index keys separate their parts with NUL bytes: a key and value with
	// NULs can collide in the index but must not match.
	h.agent("nul")
	odd := h.create("nul", "odd", "text/plain", md("a\x00b", `"c"`))
	for _, tt := range []struct {
		m    artmesh.MetaMatch
		want int
	}{{artmesh.MetaMatch{Key: "a", Value: "b\x00c"}, 0}, {artmesh.MetaMatch{Key: "a\x00b", Value: "c"}, 1}} {
		p, _ := h.st().list("nul", artmesh.Filter{Meta: []artmesh.MetaMatch{tt.m}})
		if len(p.Items) != tt.want || (tt.want == 1 && p.Items[0].ID != odd.ID) {
			t.Fatalf("list by %q=%q: %+v, want %d", tt.m.Key, tt.m.Value, p, tt.want)
		}
	}
	// A row whose metadata key has a NUL has a second key under another
	// key's prefix (nul, a, b, c...): it is listed once, by cursor too.
	dup := h.create("nul", "dup", "text/plain", md("a", `"b"`, "a\x00b", `"c"`))
	h.create("nul", "newer", "text/plain", md("a", `"b"`))
	for _, f := range []artmesh.Filter{{Meta: meta("a", "b")}, {Meta: meta("a", "b"), Limit: 1}} {
		var got []artmesh.ArtifactID
		for {
			p, err := h.st().list("nul", f)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ids(p.Items)...)
			if f.Cursor = p.NextCursor; f.Cursor == "" {
				break
			}
		}
		if len(got) != 2 || got[1] != dup.ID {
			t.Fatalf("list by a=b (limit %d): %v, want the newer one and %s once", f.Limit, got, dup.ID)
		}
	}
	if p, _ := h.st().list("nobody", artmesh.Filter{}); totalOf(p) != 0 || len(p.Items) != 0 || p.NextCursor != "" {
		t.Fatalf("list of an agent without artifacts: %+v", p)
	}
}

func jsonInt(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestAgentsAndGroups(t *testing.T) {
	h := newTestFSM(t)
	at := testBase
	create := func(id artmesh.AgentID, hash string, groups ...string) CreateAgent {
		return CreateAgent{Agent: artmesh.Agent{ID: id, Groups: groups, CreatedAt: at}, KeyHash: hash}
	}
	tests := []struct {
		name string
		cmd  command
		want artmesh.Kind
	}{
		{"create alice", create("alice", "h1", "team", "admins"), artmesh.Other},
		{"create bob", create("bob", "h2", "team"), artmesh.Other},
		{"create carol without a key", create("carol", ""), artmesh.Other},
		{"id taken", create("alice", "h9"), artmesh.Conflict},
		{"hash taken", create("dave", "h1"), artmesh.Conflict},
		{"rotate to a taken hash", setAgentKeyCmd{ID: "bob", KeyHash: "h1"}, artmesh.Conflict},
		{"rotate a missing agent", setAgentKeyCmd{ID: "zed", KeyHash: "h5"}, artmesh.NotFound},
		{"rotate bob", setAgentKeyCmd{ID: "bob", KeyHash: "h3"}, artmesh.Other},
		{"group of unknown agents", putGroupCmd{Name: "g", Members: []artmesh.AgentID{"alice", "zed"}}, artmesh.Invalid},
		{"put group", putGroupCmd{Name: "readers", Members: []artmesh.AgentID{"carol", "alice", "carol"}}, artmesh.Other},
		{"delete a missing agent", deleteAgentCmd{ID: "zed"}, artmesh.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.apply(tt.cmd)
			wantKind(t, err, tt.want)
		})
	}
	if _, err := h.st().agent("dave"); !isKind(err, artmesh.NotFound) {
		t.Fatalf("dave was created by a failed command: %v", err)
	}
	got, err := h.st().agentByKeyHash("h1")
	if err != nil || got.ID != "alice" || !slices.Equal(got.Groups, []string{"admins", "readers", "team"}) {
		t.Fatalf("agent by h1 = %+v, %v", got, err)
	}
	if _, err := h.st().agentByKeyHash("h2"); !isKind(err, artmesh.NotFound) {
		t.Fatalf("bob's old key still works: %v", err)
	}
	if got, _ := h.st().agentByKeyHash("h3"); got.ID != "bob" {
		t.Fatalf("bob's new key: %+v", got)
	}
	g, _ := h.st().group("readers")
	if !slices.Equal(g.Members, []artmesh.AgentID{"alice", "carol"}) {
		t.Fatalf("readers = %+v", g)
	}

	// Deleting an agent that owns artifacts is refused; after they are gone
	// it removes the agent from groups and grants.
	a := h.create("bob", "b", "text/plain", nil)
	c := h.create("alice", "c", "text/plain", nil)
	h.must(shareCmd{ID: c.ID, Agents: []artmesh.AgentID{"bob", "carol"}})
	_, err = h.apply(deleteAgentCmd{ID: "bob"})
	wantKind(t, err, artmesh.Conflict)
	if !strings.Contains(err.Error(), "1 artifact") || !strings.Contains(err.Error(), "delete them first") {
		t.Fatalf("conflict message = %q", err)
	}
	h.must(deleteArtifactCmd{ID: a.ID})
	h.must(deleteAgentCmd{ID: "bob"})
	if _, err := h.st().agent("bob"); !isKind(err, artmesh.NotFound) {
		t.Fatalf("bob after delete: %v", err)
	}
	if _, err := h.st().agentByKeyHash("h3"); !isKind(err, artmesh.NotFound) {
		t.Fatalf("deleted bob's key: %v", err)
	}
	if acc, _ := h.st().access(c.ID); !slices.Equal(acc.Agents, []artmesh.AgentID{"carol"}) {
		t.Fatalf("grants after deleting bob = %+v", acc)
	}
	if g, _ := h.st().group("team"); !slices.Equal(g.Members, []artmesh.AgentID{"alice"}) {
		t.Fatalf("team after deleting bob = %+v", g)
	}

	agents, _ := h.st().agents()
	var names []artmesh.AgentID
	for _, a := range agents {
		names = append(names, a.ID)
	}
	if !slices.Equal(names, []artmesh.AgentID{"alice", "carol"}) || !slices.Equal(agents[1].Groups, []string{"readers"}) || agents[0].CreatedAt != at {
		t.Fatalf("agents = %+v", agents)
	}
	groups, _ := h.st().groups()
	var gnames []string
	for _, g := range groups {
		gnames = append(gnames, g.Name)
	}
	if !slices.Equal(gnames, []string{"admins", "readers", "team"}) {
		t.Fatalf("groups = %v", gnames)
	}
	// Joining a group that exists keeps its members.
	h.must(CreateAgent{Agent: artmesh.Agent{ID: "erin", Groups: []string{"team"}, CreatedAt: at}})
	if g, _ := h.st().group("team"); !slices.Equal(g.Members, []artmesh.AgentID{"alice", "erin"}) {
		t.Fatalf("team after erin joined = %+v", g)
	}
}

func TestApplyBatch(t *testing.T) {
	h := newTestFSM(t)
	id1, at1 := h.nextID()
	id2, at2 := h.nextID()
	entries := []struct {
		cmd  command // nil: a configuration entry
		want artmesh.Kind
	}{
		{CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: testBase}, KeyHash: "k1"}, artmesh.Other},
		{CreateAgent{Agent: artmesh.Agent{ID: "alice", CreatedAt: testBase}}, artmesh.Conflict},
		{CreateAgent{Agent: artmesh.Agent{ID: "bob", Groups: []string{"team"}, CreatedAt: testBase}, KeyHash: "k1"}, artmesh.Conflict},
		{nil, artmesh.Other},
		{CreateArtifact{ID: id1, Name: "a", Owner: "alice", CID: "c1", At: at1}, artmesh.Other},
		{CreateArtifact{ID: id2, Name: "b", Owner: "bob", CID: "c2", At: at2}, artmesh.Invalid}, // bob was refused
		{shareCmd{ID: id1, Groups: []string{"team"}}, artmesh.Invalid},                          // so was his group
		{AddVersion{ArtifactID: id1, By: "alice", CID: "c3", At: at2}, artmesh.Other},           // sees the create before it
		{DeleteVersion{ArtifactID: id1, Version: 1, At: at2}, artmesh.Other},
	}
	logs := make([]*raft.Log, len(entries))
	for i, e := range entries {
		logs[i] = &raft.Log{Index: uint64(10 + i), Type: raft.LogConfiguration}
		if e.cmd != nil {
			data, err := encodeCommand(e.cmd)
			if err != nil {
				t.Fatal(err)
			}
			logs[i] = &raft.Log{Index: uint64(10 + i), Type: raft.LogCommand, Data: data}
		}
	}
	results := h.f.ApplyBatch(logs)
	for i, e := range entries {
		err, _ := results[i].(error)
		wantKind(t, err, e.want)
		if e.cmd == nil && results[i] != nil {
			t.Errorf("configuration entry answered %v", results[i])
		}
	}
	if got := h.f.applied.Load(); got != uint64(10+len(entries)-1) {
		t.Fatalf("applied index = %d", got)
	}
	agents, _ := h.st().agents()
	groups, _ := h.st().groups()
	if len(agents) != 1 || len(groups) != 0 {
		t.Fatalf("agents %+v, groups %+v: refused commands left traces", agents, groups)
	}
	vs, _ := h.st().versions(id1)
	if len(vs) != 1 || vs[0].Version != 2 || vs[0].Parent != 1 {
		t.Fatalf("versions = %+v", vs)
	}
}
