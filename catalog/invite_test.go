package catalog

import (
	"errors"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

// TestInviteUsable: the check a join is refused by before anything is
// proposed gives what ConsumeInvite would.
func TestInviteUsable(t *testing.T) {
	exp := testBase.Add(time.Hour)
	for _, tt := range []struct {
		name string
		inv  Invite
		at   time.Time
		want artmesh.Kind // Other: usable
	}{
		{"unused", Invite{ExpiresAt: exp}, testBase, artmesh.Other},
		{"retried by its joiner", Invite{ExpiresAt: exp, UsedBy: "p1"}, testBase, artmesh.Other},
		{"used by another", Invite{ExpiresAt: exp, UsedBy: "p2"}, testBase, artmesh.Conflict},
		{"at its expiry", Invite{ExpiresAt: exp}, exp, artmesh.Expired},
	} {
		err := tt.inv.Usable("p1", tt.at)
		if (tt.want == artmesh.Other) != (err == nil) || (err != nil && !errors.Is(err, tt.want)) {
			t.Fatalf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}
