package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	n, err := Open(context.Background(), Config{Repo: dir, NoSync: true, GCDelay: -1, Listen: testListen})
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

// TestLegacyPinsMigrate: the pins.json of an earlier version becomes
// catalog pins at the next start, and the file is renamed.
func TestLegacyPinsMigrate(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if err := repo.Init(ctx, dir, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := Open(ctx, Config{Repo: dir, NoSync: true, GCDelay: -1, Listen: testListen})
	if err != nil {
		t.Fatal(err)
	}
	admin := artmesh.Agent{ID: repo.AdminAgent, Admin: true}
	a, err := n.CreateArtifact(ctx, admin, CreateInput{Name: "p", Size: -1}, strings.NewReader("pinned bytes"))
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	legacy := `[{"artifact_id": "` + string(a.ID) + `", "version": 1, "cid": "` + a.CID + `"}, {"artifact_id": "art_01JD0000000000000000000000", "version": 1}]`
	if err := os.WriteFile(filepath.Join(dir, "pins.json"), []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err = Open(ctx, Config{Repo: dir, NoSync: true, GCDelay: -1, Listen: testListen})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pins, err := n.Pins(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		// The file is renamed once the pins are committed, a moment
		// after they can be seen.
		_, renamed := os.Stat(filepath.Join(dir, "pins.json.migrated"))
		if len(pins) == 1 && pins[0].ArtifactID == a.ID && pins[0].Version == 1 && renamed == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pins after the start: %+v, want the one of pins.json whose artifact exists; pins.json renamed: %v", pins, renamed)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
