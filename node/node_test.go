package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/node/repo"
)

// testListen makes test nodes listen on a free loopback port.
var testListen = []string{"/ip4/127.0.0.1/tcp/0"}

func TestInitOpenAuthenticate(t *testing.T) {
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		ctx := context.Background()
		if err := repo.Init(ctx, dir, repo.InitOptions{}); err != nil {
			t.Fatal(err)
		}
		n, err := Open(ctx, Config{Repo: dir, GCDelay: -1, Listen: testListen})
		if err != nil {
			t.Fatal(err)
		}
		key, _ := os.ReadFile(filepath.Join(dir, repo.APIKeyFile))
		a, err := n.Authenticate(ctx, strings.TrimSpace(string(key)))
		if err != nil || a.ID != repo.AdminAgent || !a.Admin {
			all, _ := n.cat.Agents()
			t.Fatalf("round %d: authenticate: %+v %v; agents %+v", i, a, err, all)
		}
		n.Close()
	}
}

// TestMissesAreRateLimited: lookups that miss (an unknown API key in a
// loop) cost a leader round trip each only up to the limit; past it they
// are answered at once.
func TestMissesAreRateLimited(t *testing.T) {
	n, _ := openTestNode(t, Config{GCDelay: -1})
	ctx := context.Background()
	caught := 0
	for range 3 * missBurst {
		if n.catchUp(ctx) {
			caught++
		}
	}
	// The loop takes a little time, in which the bucket refills a little.
	if caught < missBurst || caught > missBurst+missBurst/2 {
		t.Fatalf("%d of %d misses went to the leader, want about the burst of %d", caught, 3*missBurst, missBurst)
	}
	if _, err := n.Authenticate(ctx, acl.NewAPIKey()); !errors.Is(err, artmesh.Unauthenticated) {
		t.Fatalf("an unknown key past the limit: %v, want Unauthenticated", err)
	}
}
