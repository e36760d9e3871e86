package acl

import (
	"testing"

	"github.com/artmesh/artmesh"
)

func TestAPIKey(t *testing.T) {
	a, b := NewAPIKey(), NewAPIKey()
	if a == b {
		t.Fatal("two keys are equal")
	}
	for _, k := range []string{a, b} {
		if !WellFormedKey(k) {
			t.Fatalf("%q is not well formed", k)
		}
	}
	if HashKey(a) == HashKey(b) || !EqualHash(HashKey(a), HashKey(a)) {
		t.Fatal("hashes do not tell keys apart")
	}
	for _, bad := range []string{"", "amk_", "amk_short", "xyz_" + a[4:], a + "x", a[:len(a)-1] + "1"} {
		if WellFormedKey(bad) {
			t.Errorf("%q is taken as well formed", bad)
		}
	}
}

func TestCan(t *testing.T) {
	s := Subject{Owner: "alice", Agents: []artmesh.AgentID{"bob"}, Groups: []string{"team"}}
	for _, tc := range []struct {
		agent  artmesh.AgentID
		groups []string
		right  artmesh.Right
		want   bool
	}{
		{"alice", nil, artmesh.Read, true},
		{"alice", nil, artmesh.Delete, true},
		{"alice", nil, artmesh.Share, true},
		{"bob", nil, artmesh.Read, true},
		{"bob", nil, artmesh.Write, false},
		{"bob", nil, artmesh.Delete, false},
		{"carol", []string{"team"}, artmesh.Read, true},
		{"carol", []string{"team"}, artmesh.Share, false},
		{"carol", []string{"other"}, artmesh.Read, false},
		{"dave", nil, artmesh.Read, false},
		{"", nil, artmesh.Read, false},
	} {
		if got := Can(tc.agent, tc.groups, tc.right, s); got != tc.want {
			t.Errorf("Can(%s, %v, %s) = %v, want %v", tc.agent, tc.groups, tc.right, got, tc.want)
		}
	}
}
