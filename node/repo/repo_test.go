package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	for _, f := range []string{ConfigFile, IdentityFile, APIKeyFile, RaftDir} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("init did not make %s: %v", f, err)
		}
	}
	// A mesh is admitted by peer id over TLS; a private network key only
	// where asked for.
	if _, err := os.Stat(filepath.Join(dir, MeshKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("init without --private-network made %s (%v)", MeshKeyFile, err)
	}
	if k, err := ReadMeshKey(dir); err != nil || k != (mesh.Key{}) {
		t.Errorf("ReadMeshKey of a repo without one: %v, %v; want the zero key", k, err)
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

func TestInitPrivateNetwork(t *testing.T) {
	dir := t.TempDir()
	if err := Init(context.Background(), dir, InitOptions{PrivateNetwork: true}); err != nil {
		t.Fatal(err)
	}
	k, err := ReadMeshKey(dir)
	if err != nil || k == (mesh.Key{}) {
		t.Fatalf("ReadMeshKey of a private mesh: %v, %v; want a key", k, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, MeshKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mesh.key: %v, %v; want mode 0600", fi, err)
	}
	// A joiner takes the key from its ticket, and none when the ticket has
	// none.
	for _, tc := range []struct {
		name string
		key  string
	}{{"private", k.String()}, {"public", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			jd := t.TempDir()
			tk := &Ticket{Key: tc.key, Addrs: []string{"/ip4/127.0.0.1/tcp/7481/p2p/12D3KooWGMx42SpeFeG526b9qsndFjrxXMKLk6QmSzvfcyGTHpVs"}, Secret: strings.Repeat("0", 64)}
			if err := Init(context.Background(), jd, InitOptions{Join: tk}); err != nil {
				t.Fatal(err)
			}
			got, err := ReadMeshKey(jd)
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.key; (want == "" && got != (mesh.Key{})) || (want != "" && got.String() != want) {
				t.Fatalf("joiner's key %v, want %q", got, want)
			}
		})
	}
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
	public := Ticket{Addrs: tk.Addrs, Secret: tk.Secret}
	if got, err := ParseTicket(public.String()); err != nil || got.Key != "" {
		t.Fatalf("a ticket without a key: %+v, %v", got, err)
	}
	badKey := Ticket{Key: "abcd", Addrs: tk.Addrs, Secret: tk.Secret}
	for _, bad := range []string{"", "artmesh1", "artmesh1!!!", tk.String()[:20], "nope" + tk.String(), badKey.String()} {
		if _, err := ParseTicket(bad); artmesh.KindOf(err) != artmesh.Invalid {
			t.Errorf("ParseTicket(%.30q): %v, want Invalid", bad, err)
		}
	}
}

// TestFreeAddrs holds the first pair of ports and checks that the next
// free pair is chosen, and that given addresses are kept.
func TestFreeAddrs(t *testing.T) {
	var held []net.Listener
	for _, port := range []int{7480, 7481} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // someone else holds it: as good for this test
		}
		held = append(held, l)
	}
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	api, listen := FreeAddrs("", nil)
	if api == DefaultAPIAddr || len(listen) != 1 || listen[0] == DefaultListen {
		t.Errorf("with 7480 and 7481 taken: %s %v", api, listen)
	}
	for _, a := range []string{api, strings.TrimPrefix(strings.Replace(listen[0], "/tcp/", ":", 1), "/ip4/")} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s was chosen but is not free: %v", a, err)
			continue
		}
		l.Close()
	}
	if api, listen := FreeAddrs("127.0.0.1:9999", []string{"/ip4/127.0.0.1/tcp/0"}); api != "127.0.0.1:9999" || listen[0] != "/ip4/127.0.0.1/tcp/0" {
		t.Errorf("given addresses changed: %s %v", api, listen)
	}
}

func TestParseRaftTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "1s": time.Second, "3s": 3 * time.Second, "1m": time.Minute} {
		if got, err := ParseRaftTimeout(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"500ms", "2m", "soon", "-3s"} {
		if _, err := ParseRaftTimeout(bad); !errors.Is(err, artmesh.Invalid) {
			t.Errorf("%q: %v, want invalid", bad, err)
		}
	}
}
