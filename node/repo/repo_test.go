package repo

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/mesh"
)

func TestInitReadLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	if Exists(dir) {
		t.Fatal("an empty folder is a repo")
	}
	if _, err := ReadConfig(dir); artmesh.KindOf(err) != artmesh.NotFound {
		t.Fatalf("config of a missing repo: %v, want NotFound", err)
	}
	if err := Init(context.Background(), dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	if !Exists(dir) {
		t.Fatal("an initialised repo is not one")
	}
	for _, f := range []string{ConfigFile, IdentityFile, APIKeyFile, MeshKeyFile, RaftDir} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("init did not make %s: %v", f, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, APIKeyFile)); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("api.key mode %v, want 0600", fi.Mode().Perm())
	}
	rc, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, id, err := ReadIdentity(dir)
	if err != nil || id.String() != rc.PeerID {
		t.Fatalf("identity %s (%v), config says %s", id, err, rc.PeerID)
	}
	if rc.APIAddr != DefaultAPIAddr || rc.Voters != DefaultVoters || rc.Member {
		t.Fatalf("config defaults %+v", rc)
	}
	if err := Init(context.Background(), dir, InitOptions{}); artmesh.KindOf(err) != artmesh.Conflict {
		t.Fatalf("init twice: %v, want Conflict", err)
	}
	// One daemon at a time.
	f, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir); artmesh.KindOf(err) != artmesh.Conflict {
		t.Fatalf("second lock: %v, want Conflict", err)
	}
	f.Close()
	g, err := Lock(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	g.Close()
}

func TestTicketRoundTrip(t *testing.T) {
	tk := Ticket{Key: mesh.NewKey().String(), Addrs: []string{"/ip4/127.0.0.1/tcp/7481/p2p/12D3KooWGMx42SpeFeG526b9qsndFjrxXMKLk6QmSzvfcyGTHpVs"}, Secret: "00000000000000000000000000000000000000000000000000000000000000ff", Voters: 5}
	got, err := ParseTicket(tk.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != tk.Key || got.Secret != tk.Secret || got.Voters != 5 || len(got.Addrs) != 1 {
		t.Fatalf("round trip %+v, want %+v", got, tk)
	}
	for _, bad := range []string{"", "artmesh1", "artmesh1!!!", tk.String()[:20], "nope" + tk.String()} {
		if _, err := ParseTicket(bad); artmesh.KindOf(err) != artmesh.Invalid {
			t.Errorf("ParseTicket(%.30q): %v, want Invalid", bad, err)
		}
	}
}
