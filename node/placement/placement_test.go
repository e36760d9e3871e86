package placement

import (
	"reflect"
	"testing"
	"time"

	"github.com/artmesh/artmesh/catalog"
)

func members(spec string) []Member {
	// spec: one letter per member; upper case live and reachable, lower
	// case dead, '~' before a letter: live but not reachable now.
	var out []Member
	for i := 0; i < len(spec); i++ {
		if spec[i] == '~' {
			i++
			out = append(out, Member{ID: string(spec[i] - 'a' + 'A'), Live: true})
			continue
		}
		c := spec[i]
		if c >= 'a' {
			out = append(out, Member{ID: string(c - 'a' + 'A')})
		} else {
			out = append(out, Member{ID: string(c), Live: true, Reachable: true})
		}
	}
	return out
}

func TestAllocate(t *testing.T) {
	tests := []struct {
		name      string
		members   string
		replica   catalog.Replica
		wantAlloc []string // nil: no allocation change
		wantDrop  []string
	}{
		{"new content goes to its holder and the emptiest member",
			"ABC", catalog.Replica{CID: "x", Factor: 2, Holders: []string{"B"}}, []string{"A", "B"}, nil},
		{"held by as many as the factor and not allocated: no write (the holders are the allocation)",
			"ABC", catalog.Replica{CID: "x", Factor: 2, Holders: []string{"A", "C"}}, nil, nil},
		{"already allocated: no change",
			"ABC", catalog.Replica{CID: "x", Factor: 2, Holders: []string{"A"}, Allocated: []string{"A", "C"}}, nil, nil},
		{"factor above the members is capped",
			"AB", catalog.Replica{CID: "x", Factor: 5, Holders: []string{"A"}}, []string{"A", "B"}, nil},
		{"a dead holder is replaced, its record kept until enough live holders",
			"aBC", catalog.Replica{CID: "x", Factor: 2, Holders: []string{"A", "B"}, Allocated: []string{"A", "B"}}, []string{"B", "C"}, nil},
		{"a dead holder's record goes once the factor is met by live holders",
			"aBC", catalog.Replica{CID: "x", Factor: 2, Holders: []string{"A", "B", "C"}, Allocated: []string{"B", "C"}}, nil, []string{"A"}},
		{"the last holder record stays even when its member is dead",
			"aBC", catalog.Replica{CID: "x", Factor: 2, Holders: []string{"A"}, Allocated: []string{"A"}}, []string{"B", "C"}, nil},
		{"a live but briefly unreachable member keeps its allocation",
			"~aBC", catalog.Replica{CID: "x", Factor: 2, Holders: []string{"A", "B"}, Allocated: []string{"A", "B"}}, nil, nil},
		{"a lowered factor gives up a non-holder first",
			"ABC", catalog.Replica{CID: "x", Factor: 1, Holders: []string{"C"}, Allocated: []string{"A", "C"}}, []string{"C"}, nil},
		{"a removed member is not allocated",
			"AB", catalog.Replica{CID: "x", Factor: 2, Holders: []string{"Z"}, Allocated: []string{"Z"}}, []string{"A", "B"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := Allocate([]catalog.Replica{tt.replica}, members(tt.members), nil)
			var gotAlloc []string
			if len(up.Allocations) == 1 {
				gotAlloc = up.Allocations[0].Peers
			} else if len(up.Allocations) > 1 {
				t.Fatalf("allocations %+v", up.Allocations)
			}
			if !reflect.DeepEqual(gotAlloc, tt.wantAlloc) {
				t.Fatalf("allocation %v, want %v", gotAlloc, tt.wantAlloc)
			}
			var gotDrop []string
			for _, d := range up.DropHolders {
				gotDrop = append(gotDrop, d.Peer)
			}
			if !reflect.DeepEqual(gotDrop, tt.wantDrop) {
				t.Fatalf("drops %v, want %v", gotDrop, tt.wantDrop)
			}
		})
	}
}

func TestAllocateSpreads(t *testing.T) {
	var rs []catalog.Replica
	for _, c := range []string{"a", "b", "c", "d"} {
		rs = append(rs, catalog.Replica{CID: c, Factor: 1, SizeBytes: 100})
	}
	up := Allocate(rs, members("AB"), nil)
	count := map[string]int{}
	for _, a := range up.Allocations {
		count[a.Peers[0]]++
	}
	if count["A"] != 2 || count["B"] != 2 {
		t.Fatalf("four equal versions on two members went %v", count)
	}
	// One at a time, with the held bytes kept between calls, spreads too.
	held := map[string]int64{}
	count = map[string]int{}
	for _, r := range rs {
		for _, a := range Allocate([]catalog.Replica{r}, members("AB"), held).Allocations {
			count[a.Peers[0]]++
		}
	}
	if count["A"] != 2 || count["B"] != 2 {
		t.Fatalf("four versions allocated one at a time went %v", count)
	}
}

func TestReconcile(t *testing.T) {
	verified := map[string]bool{"held": true, "extra": true, "lastcopy": true, "pinned": true, "unrecorded": true, "unallocated": true}
	// lost-unwanted and lost are certainly incomplete here; implicit-lost
	// too; unknown could not be checked: its record stays.
	local := func(c string) Local {
		return Local{Verified: verified[c], Lost: c == "lost" || c == "implicit-lost" || c == "lost-unwanted"}
	}
	rs := []catalog.Replica{
		{CID: "new", Factor: 2, Holders: []string{"A"}, Allocated: []string{"A", "S"}},
		{CID: "held", Factor: 2, Holders: []string{"A", "S"}, Allocated: []string{"A", "S"}},
		{CID: "extra", Factor: 2, Holders: []string{"A", "B", "S"}, Allocated: []string{"A", "B"}},
		{CID: "lastcopy", Factor: 2, Holders: []string{"A", "S"}, Allocated: []string{"A", "B"}},
		{CID: "unallocated", Factor: 2, Holders: []string{"S"}},
		{CID: "pinned", Factor: 1, Holders: []string{"A", "S"}, Allocated: []string{"A"}},
		{CID: "unrecorded", Factor: 2, Holders: []string{"A"}, Allocated: []string{"A", "S"}},
		{CID: "lost", Factor: 2, Holders: []string{"A", "S"}, Allocated: []string{"A", "S"}},
		{CID: "implicit-lost", Factor: 2, Holders: []string{"A", "S"}},
		// Held here but no longer wanted, and blocks lost: the record
		// goes, nothing is fetched.
		{CID: "lost-unwanted", Factor: 1, Holders: []string{"A", "S"}, Allocated: []string{"A"}},
		// Not verified, but not known to be lost (an I/O error): the
		// record stays, and a fetch fills in what is missing.
		{CID: "unknown", Factor: 2, Holders: []string{"A", "S"}, Allocated: []string{"A", "S"}},
	}
	a := Reconcile("S", rs, map[string]bool{"pinned": true}, 3, local)
	var fetch []string
	for _, r := range a.Fetch {
		fetch = append(fetch, r.CID)
	}
	if want := []string{"new", "lost", "implicit-lost", "unknown"}; !reflect.DeepEqual(fetch, want) {
		t.Errorf("fetch %v, want %v", fetch, want)
	}
	if want := []string{"unrecorded"}; !reflect.DeepEqual(a.Record, want) {
		t.Errorf("record %v, want %v", a.Record, want)
	}
	if want := []string{"extra"}; !reflect.DeepEqual(a.Drop, want) {
		t.Errorf("drop %v, want %v (never below the factor, never before an allocation)", a.Drop, want)
	}
	// Every holder record of what is not complete here goes at once.
	if want := []string{"lost", "implicit-lost", "lost-unwanted"}; !reflect.DeepEqual(a.Unhold, want) {
		t.Errorf("unhold %v, want %v", a.Unhold, want)
	}
}

func TestKeepCache(t *testing.T) {
	base := time.Unix(1000, 0)
	entries := []CacheEntry{
		{CID: "old", Size: 40, LastUsed: base},
		{CID: "new", Size: 40, LastUsed: base.Add(2 * time.Second)},
		{CID: "mid", Size: 40, LastUsed: base.Add(time.Second)},
		{CID: "small", Size: 10, LastUsed: base.Add(-time.Second)},
	}
	var got []string
	for _, e := range KeepCache(entries, 95) {
		got = append(got, e.CID)
	}
	if want := []string{"new", "mid", "small"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	if k := KeepCache(entries, 0); len(k) != 0 {
		t.Fatalf("a zero budget kept %v", k)
	}
}
