package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node/blockstore"
	"github.com/artmesh/artmesh/node/repo"
)

// fakeGate is a collectGate whose answers a test sets.
type fakeGate struct {
	leader     bool
	barrierErr error
	barriers   int
}

func (g *fakeGate) HasLeader() bool { return g.leader }

func (g *fakeGate) Barrier(context.Context) error {
	g.barriers++
	return g.barrierErr
}

func TestCollectionIsGated(t *testing.T) {
	tests := []struct {
		name        string
		gate        fakeGate
		wantCollect bool
		wantBarrier int
		wantKind    artmesh.Kind
	}{
		{"no leader: refused before the barrier", fakeGate{leader: false}, false, 0, artmesh.Unavailable},
		{"leader but the barrier fails: refused", fakeGate{leader: true, barrierErr: errors.New("read index timed out")}, false, 1, artmesh.Unavailable},
		{"leader and barrier: collects", fakeGate{leader: true}, true, 1, artmesh.Other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.gate
			collected := false
			_, err := gated(context.Background(), &g, func(context.Context) (blockstore.CollectStats, error) {
				collected = true
				return blockstore.CollectStats{}, nil
			})
			if collected != tt.wantCollect {
				t.Fatalf("collected = %v, want %v", collected, tt.wantCollect)
			}
			if g.barriers != tt.wantBarrier {
				t.Fatalf("barriers = %d, want %d", g.barriers, tt.wantBarrier)
			}
			if tt.wantCollect {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if artmesh.KindOf(err) != tt.wantKind {
				t.Fatalf("err = %v (kind %v), want kind %v", err, artmesh.KindOf(err), tt.wantKind)
			}
			if !tt.gate.leader && !errors.Is(err, ErrNoLeader) {
				t.Fatalf("err = %v, want ErrNoLeader", err)
			}
		})
	}
}

// TestBehindIsUnavailable: while a node has not caught up, a valid key
// gets Unavailable (a 503 to retry), never Unauthenticated.
func TestBehindIsUnavailable(t *testing.T) {
	dir := t.TempDir()
	if err := repo.Init(context.Background(), dir, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := Open(context.Background(), Config{Repo: dir, NoSync: true, GCDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	data, err := os.ReadFile(filepath.Join(dir, repo.APIKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(data))
	if _, err := n.Authenticate(context.Background(), key); err != nil {
		t.Fatalf("caught up: %v", err)
	}
	n.caughtUp.Store(false) // as if it had just restarted
	if _, err := n.Authenticate(context.Background(), key); artmesh.KindOf(err) != artmesh.Unavailable {
		t.Fatalf("valid key while behind: %v, want Unavailable", err)
	}
	if err := n.Ready(context.Background()); artmesh.KindOf(err) != artmesh.Unavailable {
		t.Fatalf("ready while behind: %v, want Unavailable", err)
	}
	n.caughtUp.Store(true)
	if err := n.Ready(context.Background()); err != nil {
		t.Fatalf("ready: %v", err)
	}
}
