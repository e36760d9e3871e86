package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node/repo"
)

func openTestNode(t testing.TB, cfg Config) (*Node, artmesh.Agent) {
	t.Helper()
	ctx := context.Background()
	if cfg.Repo == "" {
		cfg.Repo = t.TempDir()
		if err := repo.Init(ctx, cfg.Repo, repo.InitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Listen = testListen
	n, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	admin, err := n.cat.Agent(repo.AdminAgent)
	if err != nil {
		t.Fatal(err)
	}
	return n, admin
}

// TestPeerIDEncoding checks that acl's reading of Ed25519 peer ids agrees
// with libp2p's.
func TestPeerIDEncoding(t *testing.T) {
	n, _ := openTestNode(t, Config{GCDelay: -1})
	if got := acl.PeerIDFromPublicKey(n.key.Public().(ed25519.PublicKey)); got != string(n.peerID) {
		t.Fatalf("acl peer id %x, libp2p %x", got, string(n.peerID))
	}
}

// TestExpiredUploadIsCollected lets an upload expire half way and checks
// that the janitor forgets it and removes its staging file, and that its
// token then fails with Expired.
func TestExpiredUploadIsCollected(t *testing.T) {
	ctx := context.Background()
	n, admin := openTestNode(t, Config{GCDelay: -1, TokenSkew: -1, JanitorInterval: time.Hour})
	// 3 s: the first write must come before the expiry, and a loaded
	// machine (CI, two cores) has taken more than 1 s between the two.
	st, err := n.CreateUpload(ctx, admin, UploadInput{Name: "x.bin", SizeBytes: 100, ExpiresIn: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.WriteUpload(ctx, st.Token, st.ID, -1, -1, bytes.NewReader(make([]byte, 50))); err != nil {
		t.Fatal(err)
	}
	staged := n.staging.Path(st.ID)
	if _, err := os.Stat(staged); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(st.ExpiresAt) + 100*time.Millisecond)
	n.janitor(ctx)
	if _, err := n.cat.Upload(st.ID); !errors.Is(err, artmesh.NotFound) {
		t.Fatalf("expired upload still in the catalog: %v", err)
	}
	if _, err := os.Stat(staged); !os.IsNotExist(err) {
		t.Fatalf("staging file of an expired upload: %v", err)
	}
	if _, err := n.WriteUpload(ctx, st.Token, st.ID, 50, 100, bytes.NewReader(make([]byte, 50))); !errors.Is(err, artmesh.Expired) {
		t.Fatalf("write with an expired token: %v", err)
	}
}

// TestUploadSurvivesRestart checks that staged bytes are kept across a
// restart of the node, and that received (unconfirmed) content is not
// collected.
func TestUploadSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := repo.Init(ctx, dir, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(9, 3<<20)
	n, admin := openTestNode(t, Config{Repo: dir, GCDelay: -1})
	st, err := n.CreateUpload(ctx, admin, UploadInput{Name: "r.bin", SizeBytes: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.WriteUpload(ctx, st.Token, st.ID, -1, -1, bytes.NewReader(data[:1<<20])); err != nil {
		t.Fatal(err)
	}
	n.Close()

	n, admin = openTestNode(t, Config{Repo: dir, GCDelay: -1})
	have, size, err := n.UploadOffset(ctx, st.Token, st.ID)
	if err != nil || have != 1<<20 || size != int64(len(data)) {
		t.Fatalf("after restart: offset %d of %d, %v", have, size, err)
	}
	if _, err := n.WriteUpload(ctx, st.Token, st.ID, have, size, bytes.NewReader(data[have:])); err != nil {
		t.Fatal(err)
	}
	if _, err := n.collect(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := n.ConfirmUpload(ctx, admin, st.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.OpenContent(ctx, admin, a.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c.Reader)
	if !bytes.Equal(got, data) {
		t.Fatal("content differs after a restart mid-upload and a collection before confirm")
	}
	if u, _ := n.cat.Upload(st.ID); u.State != catalog.StateConfirmed {
		t.Fatalf("upload state %q", u.State)
	}
	if _, err := os.Stat(filepath.Join(dir, UploadsDir, st.ID+".part")); !os.IsNotExist(err) {
		t.Fatalf("staging file left: %v", err)
	}
}

// TestStagingSweptOnlyWhenCaughtUp: a member whose catalog state is gone
// (it waits for the leader to send it) keeps the staging files of uploads
// it does not know yet; a caught-up node removes what no open upload owns.
func TestStagingSweptOnlyWhenCaughtUp(t *testing.T) {
	ctx := context.Background()
	stage := func(n *Node) string {
		t.Helper()
		stray := n.staging.Path("up_unknown_to_this_catalog")
		if err := os.MkdirAll(filepath.Dir(stray), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(stray, []byte("staged bytes"), 0o600); err != nil {
			t.Fatal(err)
		}
		return stray
	}

	// A member whose Raft folder was emptied: it never bootstraps and is
	// not caught up until a leader sends it the catalog.
	dir := t.TempDir()
	if err := repo.Init(ctx, dir, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, err := repo.ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	rc.Member = true
	data, _ := json.MarshalIndent(rc, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, repo.ConfigFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, repo.RaftDir)); err != nil {
		t.Fatal(err)
	}
	behind, err := Open(ctx, Config{Repo: dir, GCDelay: -1, JanitorInterval: time.Hour, Listen: testListen,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer behind.Close()
	stray := stage(behind)
	behind.janitor(ctx)
	if _, err := os.Stat(stray); err != nil {
		t.Fatalf("a node behind the leader removed a staging file: %v", err)
	}

	n, _ := openTestNode(t, Config{GCDelay: -1, JanitorInterval: time.Hour})
	stray = stage(n)
	n.janitor(ctx)
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Fatalf("a caught-up node kept a staging file no upload owns: %v", err)
	}
}

// TestConfirmDuringCollectionIsKept: an upload confirmed while a
// collection marks, after the mark took the catalog's changes, keeps its
// content. The mark saw it as a received upload (it reads those before
// taking the changes); when it read them after, a confirm in between
// left the root in no read and in no change, and the sweep removed an
// acknowledged artifact's only copy (seen in e2e TestCollectorUnderLoad).
func TestConfirmDuringCollectionIsKept(t *testing.T) {
	ctx := context.Background()
	n, admin := openTestNode(t, Config{GCDelay: -1, JanitorInterval: time.Hour})
	body := bytes.Repeat([]byte("confirmed while the collector marks "), 2000)
	st, err := n.CreateUpload(ctx, admin, UploadInput{Name: "c.bin", SizeBytes: int64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.WriteUpload(ctx, st.Token, st.ID, -1, -1, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	var a artmesh.Artifact
	var confirmErr error
	n.afterMarkChanges = func() {
		n.afterMarkChanges = nil
		a, confirmErr = n.ConfirmUpload(ctx, admin, st.ID, "", 0)
	}
	if _, err := n.GC(ctx, admin); err != nil {
		t.Fatal(err)
	}
	if confirmErr != nil || a.ID == "" {
		t.Fatalf("the confirm during the mark: %+v %v", a, confirmErr)
	}
	c, err := n.OpenContent(ctx, admin, a.ID, 0)
	if err != nil {
		t.Fatalf("the confirmed artifact's content after the collection: %v", err)
	}
	defer c.Reader.Close()
	got, err := io.ReadAll(c.Reader)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("the confirmed artifact's content after the collection: %d bytes, %v", len(got), err)
	}
}
