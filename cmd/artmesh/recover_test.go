package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nrepo "github.com/artmesh/artmesh/node/repo"
)

// initMember makes a repo with nrepo.Init and, when member, records it as a
// mesh member the way a node that joined does.
func initMember(t *testing.T, member bool) string {
	t.Helper()
	repo := t.TempDir()
	if err := nrepo.Init(context.Background(), repo, nrepo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	if member {
		path := filepath.Join(repo, nrepo.ConfigFile)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		if err := json.Unmarshal(data, &cfg); err != nil {
			t.Fatal(err)
		}
		cfg["member"] = true
		data, _ = json.Marshal(cfg)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if rc, err := nrepo.ReadConfig(repo); err != nil || !rc.Member {
			t.Fatalf("the repo is not a member: %+v %v", rc, err)
		}
	}
	return repo
}

func TestRecoverCatalog(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	repo := initMember(t, true)
	raft := filepath.Join(repo, nrepo.RaftDir)
	before, err := os.ReadDir(raft)
	if err != nil || len(before) == 0 {
		t.Fatalf("init made no Raft state: %v %v", before, err)
	}
	// The block store as a daemon leaves it (Init makes none).
	blocksDir := filepath.Join(repo, nrepo.BlocksDir)
	if err := os.MkdirAll(blocksDir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(blocksDir, "pack-000001"), []byte("blocks"), 0o600)
	blocks, _ := os.ReadDir(blocksDir)

	// While a daemon holds the lock, nothing moves.
	lock, err := lockRepoFile(repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recoverCatalog(repo, at); !errors.Is(err, errRepoInUse) || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("with the lock held: %v", err)
	}
	lock.Close()
	if _, err := os.Stat(raft); err != nil {
		t.Fatalf("a refused recovery moved the Raft state: %v", err)
	}

	r, err := recoverCatalog(repo, at)
	want := raft + ".broken-20250102T020405Z"
	if err != nil || r.MovedFrom != raft || r.MovedTo != want {
		t.Fatalf("recover: %+v, %v; want it moved to %s", r, err, want)
	}
	if _, err := os.Stat(raft); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the Raft folder is still there: %v", err)
	}
	if after, err := os.ReadDir(want); err != nil || len(after) != len(before) {
		t.Errorf("moved folder has %d entries, %v; had %d", len(after), err, len(before))
	}
	if after, err := os.ReadDir(blocksDir); err != nil || len(after) != len(blocks) {
		t.Errorf("the block store changed: %d entries, %v; had %d", len(after), err, len(blocks))
	}
	if data, err := os.ReadFile(filepath.Join(blocksDir, "pack-000001")); err != nil || string(data) != "blocks" {
		t.Errorf("a pack file changed: %q, %v", data, err)
	}
	for _, f := range []string{nrepo.ConfigFile, nrepo.IdentityFile, nrepo.APIKeyFile} {
		if _, err := os.Stat(filepath.Join(repo, f)); err != nil {
			t.Errorf("%s is gone: %v", f, err)
		}
	}
	// Nothing left to move: it says so and changes nothing.
	if r, err := recoverCatalog(repo, at); err != nil || r.MovedTo != "" {
		t.Errorf("second run: %+v, %v", r, err)
	}
	// A second broken folder in the same second gets its own name.
	os.Mkdir(raft, 0o700)
	if r, err := recoverCatalog(repo, at); err != nil || r.MovedTo != want+"-2" {
		t.Errorf("third run: %+v, %v; want %s-2", r, err, want)
	}
}

func TestRecoverCatalogCmd(t *testing.T) {
	single := initMember(t, false)
	code, _, errOut := runCLI(t, map[string]string{envRepo: single}, "repo", "recover-catalog")
	if code != 1 || !strings.Contains(errOut, "never part of a mesh") || !strings.Contains(errOut, "no leader to recover") {
		t.Errorf("single node: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(single, nrepo.RaftDir)); err != nil {
		t.Errorf("a single node's Raft state was touched: %v", err)
	}
	code, _, errOut = runCLI(t, map[string]string{envRepo: t.TempDir()}, "repo", "recover-catalog")
	if code != 1 || !strings.Contains(errOut, "is not an artmesh repo") {
		t.Errorf("no repo: exit %d, %s", code, errOut)
	}

	member := initMember(t, true)
	code, out, errOut := runCLI(t, map[string]string{envRepo: member}, "repo", "recover-catalog")
	if code != 0 || !strings.Contains(out, filepath.Join(member, nrepo.RaftDir)+" -> "+filepath.Join(member, nrepo.RaftDir)+".broken-") ||
		!strings.Contains(out, "fetches the catalog from the mesh's leader") || !strings.Contains(out, "Every block in") {
		t.Errorf("member: exit %d, %q %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, map[string]string{envRepo: member}, "--json", "repo", "recover-catalog")
	var r catalogRecovery
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Repo != member || r.MovedTo != "" {
		t.Errorf("--json with nothing to move: exit %d, %s", code, out)
	}
}

// TestRecoverSoleVoter: the outage recovery refuses a single node and a
// repo whose daemon runs; on a member it keeps the catalog, forgets the
// saved addresses, and the repo is a member still.
func TestRecoverSoleVoter(t *testing.T) {
	ctx := context.Background()
	if _, err := recoverSoleVoter(ctx, initMember(t, false)); err == nil || !strings.Contains(err.Error(), "never part of a mesh") {
		t.Fatalf("a single node: %v", err)
	}
	if _, err := recoverSoleVoter(ctx, t.TempDir()); err == nil || !strings.Contains(err.Error(), "is not an artmesh repo") {
		t.Fatalf("not a repo: %v", err)
	}
	repo := initMember(t, true)
	os.WriteFile(filepath.Join(repo, nrepo.PeersFile), []byte("[]"), 0o600)
	lock, err := lockRepoFile(repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recoverSoleVoter(ctx, repo); !errors.Is(err, errRepoInUse) {
		t.Fatalf("with the lock held: %v", err)
	}
	lock.Close()
	r, err := recoverSoleVoter(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := nrepo.ReadConfig(repo)
	if r.PeerID != rc.PeerID || len(r.Servers) != 1 || r.Servers[0] != rc.PeerID || len(r.Dropped) != 0 || r.LastIndex == 0 {
		t.Fatalf("recovery of a one-voter mesh: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(repo, nrepo.PeersFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("peers.json was kept: %v", err)
	}
	if !rc.Member {
		t.Fatal("the recovered repo is not a member any more")
	}
}

// TestRecoverSoleVoterAfterMoveAside: when the Raft state was moved aside
// by the other recovery, the outage recovery says where it is.
func TestRecoverSoleVoterAfterMoveAside(t *testing.T) {
	repo := initMember(t, true)
	r, err := recoverCatalog(repo, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, err = recoverSoleVoter(context.Background(), repo)
	if err == nil || !strings.Contains(err.Error(), "rename the newest of "+r.MovedTo) {
		t.Fatalf("after a move aside: %v", err)
	}
}
