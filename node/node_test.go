package node

import (
	"context"
	"github.com/artmesh/artmesh/node/repo"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
