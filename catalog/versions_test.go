package catalog

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

// TestKnownCommandsCoversEveryType: KnownCommands is the level of the
// highest type this binary knows, and a member that recorded none knows
// every type that existed before members recorded theirs.
func TestKnownCommandsCoversEveryType(t *testing.T) {
	highest := 0
	for i := range 256 {
		if ct := commandType(i); ct.known() {
			highest = max(highest, commandLevel(ct))
		}
	}
	if highest != KnownCommands {
		t.Fatalf("the highest known type is %d, KnownCommands %d", highest, KnownCommands)
	}
	if got := (Member{}).knownCommands(); got != baselineCommands || baselineCommands != 34 {
		t.Fatalf("a member without Commands knows types up to %d, want the baseline 34", got)
	}
}

// TestOlderMemberGatesNewCommands: a member that records an older version
// (one that knows types up to PutGroup, 10) makes the leader refuse the
// types it does not know, until it is upgraded or removed. Members that
// recorded nothing know the baseline. The cache survives a snapshot.
func TestOlderMemberGatesNewCommands(t *testing.T) {
	const op = artmesh.Op("test")
	type check struct {
		typ     commandType
		refused bool
	}
	tests := []struct {
		name    string
		members []Member
		oldest  string // the member a refusal names
		checks  []check
	}{
		{"no members", nil, "", []check{{deleteGroupType, false}, {forwardedType, false}, {dropFetchingType, false}}},
		{"members without a version know the baseline", []Member{{PeerID: "a"}, {PeerID: "b", Commands: KnownCommands}}, "a",
			[]check{{deleteGroupType, false}, {forwardedType, false}, {commandType(baselineCommands), false}, {commandType(baselineCommands + 1), true}}},
		{"an older member", []Member{{PeerID: "a"}, {PeerID: "old", Commands: 10}, {PeerID: "c", Commands: 20}}, "old",
			[]check{{createArtifactType, false}, {putGroupType, false}, {deleteGroupType, true}, {createInviteType, true}, {forwardedType, true},
				// Skippable types are not gated, nor those that lift the gate.
				{putFetchingType, false}, {ignoreUnknownTypeFlag | 99, false}, {putMemberType, false}, {deleteMemberType, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestFSM(t)
			for _, m := range tt.members {
				h.must(PutMember{Member: m})
			}
			for _, s := range []*store{h.st(), h.restored().st()} {
				for _, c := range tt.checks {
					err := s.checkKnown(op, c.typ)
					if !c.refused {
						if err != nil {
							t.Fatalf("type %d refused: %v", c.typ, err)
						}
						continue
					}
					if !errors.Is(err, artmesh.Unavailable) || !strings.Contains(err.Error(), "member "+tt.oldest+" runs an older version that does not know command "+c.typ.String()) {
						t.Fatalf("type %d: %v, want Unavailable naming member %s", c.typ, err, tt.oldest)
					}
				}
			}
		})
	}
	// The cache follows the member rows: an upgrade or a removal lifts the
	// gate, a downgrade (a row rewritten without the field) lowers it.
	h := newTestFSM(t)
	h.must(PutMember{Member: Member{PeerID: "old", Commands: 10}})
	if err := h.st().checkKnown(op, deleteGroupType); err == nil {
		t.Fatal("the older member did not gate")
	}
	h.must(PutMember{Member: Member{PeerID: "old", Commands: KnownCommands}})
	if err := h.st().checkKnown(op, deleteGroupType); err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
	h.must(PutMember{Member: Member{PeerID: "old", Commands: 10}})
	h.must(deleteMemberCmd{PeerID: "old"})
	if err := h.st().checkKnown(op, deleteGroupType); err != nil {
		t.Fatalf("after the removal: %v", err)
	}
}

// TestLeaderRefusesCommandsAMemberDoesNotKnow: the leader's writes, its
// own and forwarded ones, of a type an older member does not know are
// refused with Unavailable and never reach the log.
func TestLeaderRefusesCommandsAMemberDoesNotKnow(t *testing.T) {
	ctx := testCtx(t)
	c := openSingle(t, t.TempDir())
	if err := c.PutMember(ctx, Member{PeerID: "node1", Commands: KnownCommands}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutMember(ctx, Member{PeerID: "old", Commands: 10, JoinedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutGroup(ctx, "team", nil); err != nil {
		t.Fatalf("a type the older member knows: %v", err)
	}
	last := c.LastIndex()
	const want = "member old runs an older version that does not know command DeleteGroup (type 11; it knows types up to 10); upgrade it first"
	err := c.DeleteGroup(ctx, "team")
	if !errors.Is(err, artmesh.Unavailable) || !strings.Contains(err.Error(), want) {
		t.Fatalf("DeleteGroup: %v, want Unavailable: %s", err, want)
	}
	entry, err := encodeCommand(deleteGroupCmd{Name: "team"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.ApplyForwarded(ctx, "node2", ForwardRequest{Entry: wrapForwarded(entry, time.Now()), Credential: Credential{APIKey: "as:alice"}})
	if err != nil || res.Index != 0 || artmesh.KindFromCode(res.Code) != artmesh.Unavailable || res.Message != want {
		t.Fatalf("forwarded DeleteGroup: %+v, %v; want the refusal as its answer", res, err)
	}
	if c.LastIndex() != last {
		t.Fatalf("the refused writes reached the log: last index %d, was %d", c.LastIndex(), last)
	}
	if _, err := c.Group("team"); err != nil {
		t.Fatalf("the group went: %v", err)
	}
	// Once the member is upgraded, the write goes through.
	if err := c.PutMember(ctx, Member{PeerID: "old", Commands: KnownCommands}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteGroup(ctx, "team"); err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
}

// TestCheckJoiner: a node may join only if it knows as many command types
// as every member; a member from before versions were recorded counts as
// knowing the baseline.
func TestCheckJoiner(t *testing.T) {
	h := newTestFSM(t)
	c := &Catalog{fsm: h.f}
	if err := c.CheckJoiner(0); err != nil {
		t.Fatalf("a joiner of a mesh without members: %v", err)
	}
	h.must(PutMember{Member: Member{PeerID: "old"}})
	if err := c.CheckJoiner(0); err != nil {
		t.Fatalf("a baseline joiner, baseline members: %v", err)
	}
	h.must(PutMember{Member: Member{PeerID: "old", Commands: KnownCommands}})
	h.must(PutMember{Member: Member{PeerID: "new", Commands: KnownCommands}})
	for _, tt := range []struct {
		commands int
		ok       bool
	}{{0, false}, {baselineCommands, false}, {KnownCommands, true}, {KnownCommands + 1, true}} {
		err := c.CheckJoiner(tt.commands)
		if tt.ok != (err == nil) || !tt.ok && !errors.Is(err, artmesh.Conflict) {
			t.Errorf("a joiner knowing %d: %v, want ok %v", tt.commands, err, tt.ok)
		}
	}
}
