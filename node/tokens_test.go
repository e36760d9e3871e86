package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

// readCap downloads what a read token grants, or returns the error.
func readCap(ctx context.Context, n *Node, token string) (string, error) {
	c, err := n.OpenCapContent(ctx, token)
	if err != nil {
		return "", err
	}
	defer c.Reader.Close()
	data, err := io.ReadAll(c.Reader)
	return string(data), err
}

// TestLocalTokenEndsAtItsExpiry checks that a token is refused on the node
// that issued it as soon as it expires: the clock-skew leeway (30 s by
// default) is for tokens of other nodes, whose clocks may differ.
func TestLocalTokenEndsAtItsExpiry(t *testing.T) {
	ctx := context.Background()
	n, admin := openTestNode(t, Config{GCDelay: -1}) // the default skew
	if n.skew != DefaultTokenSkew {
		t.Fatalf("skew %v, want the default %v", n.skew, DefaultTokenSkew)
	}
	a, err := n.CreateArtifact(ctx, admin, CreateInput{Name: "short.txt", Size: -1}, strings.NewReader("for a second"))
	if err != nil {
		t.Fatal(err)
	}
	su, err := n.CreateSignedURL(ctx, admin, a.ID, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readCap(ctx, n, su.Token); err != nil || got != "for a second" {
		t.Fatalf("before expiry: %q, %v", got, err)
	}
	time.Sleep(time.Until(su.ExpiresAt) + 50*time.Millisecond)
	if _, err := readCap(ctx, n, su.Token); !errors.Is(err, artmesh.Expired) {
		t.Fatalf("a 1-s token on its own node after its expiry: %v, want Expired", err)
	}

	st, err := n.CreateUpload(ctx, admin, UploadInput{Name: "u.bin", SizeBytes: 1, ExpiresIn: 1})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(st.ExpiresAt) + 50*time.Millisecond)
	if _, err := n.WriteUpload(ctx, st.Token, st.ID, -1, -1, bytes.NewReader([]byte("x"))); !errors.Is(err, artmesh.Expired) {
		t.Fatalf("a 1-s upload token on its own node after its expiry: %v, want Expired", err)
	}
}

// TestTokensBoundToAgentIncarnation deletes an agent that holds tokens and
// creates another of the same id: the new agent inherits neither the old
// one's tokens nor the right to revoke them.
func TestTokensBoundToAgentIncarnation(t *testing.T) {
	ctx := context.Background()
	n, admin := openTestNode(t, Config{GCDelay: -1, TokenSkew: -1})
	a, err := n.CreateArtifact(ctx, admin, CreateInput{Name: "shared.txt", Size: -1}, strings.NewReader("shared bytes"))
	if err != nil {
		t.Fatal(err)
	}
	oldBob, _, err := n.CreateAgent(ctx, admin, "bob", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Share(ctx, admin, a.ID, []artmesh.AgentID{"bob"}, nil); err != nil {
		t.Fatal(err)
	}
	read, err := n.CreateSignedURL(ctx, oldBob, a.ID, 600, 0)
	if err != nil {
		t.Fatal(err)
	}
	revokable, err := n.CreateSignedURL(ctx, oldBob, a.ID, 600, 0)
	if err != nil {
		t.Fatal(err)
	}
	up, err := n.CreateUpload(ctx, oldBob, UploadInput{Name: "bob.bin", SizeBytes: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readCap(ctx, n, read.Token); err != nil || got != "shared bytes" {
		t.Fatalf("old bob's token before the delete: %q, %v", got, err)
	}

	if err := n.DeleteAgent(ctx, admin, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := readCap(ctx, n, read.Token); !errors.Is(err, artmesh.PermissionDenied) {
		t.Fatalf("token of a deleted agent: %v, want PermissionDenied", err)
	}
	newBob, _, err := n.CreateAgent(ctx, admin, "bob", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if newBob.CreatedAt.Equal(oldBob.CreatedAt) {
		t.Fatal("two incarnations of bob have one creation time")
	}
	if _, err := n.Share(ctx, admin, a.ID, []artmesh.AgentID{"bob"}, nil); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		what string
		err  error
	}{
		{"old bob's read token", func() error { _, err := readCap(ctx, n, read.Token); return err }()},
		{"old bob's upload token", func() error {
			_, err := n.WriteUpload(ctx, up.Token, up.ID, -1, -1, bytes.NewReader([]byte("abc")))
			return err
		}()},
		{"new bob revoking old bob's token", n.RevokeToken(ctx, newBob, revokable.TokenID)},
	} {
		if !errors.Is(tc.err, artmesh.PermissionDenied) {
			t.Errorf("%s: %v, want PermissionDenied", tc.what, tc.err)
		}
	}
	// An admin may still revoke it, and new bob's own tokens work and are
	// his to revoke.
	if err := n.RevokeToken(ctx, admin, revokable.TokenID); err != nil {
		t.Errorf("admin revoking old bob's token: %v", err)
	}
	mine, err := n.CreateSignedURL(ctx, newBob, a.ID, 600, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readCap(ctx, n, mine.Token); err != nil || got != "shared bytes" {
		t.Errorf("new bob's own token: %q, %v", got, err)
	}
	if err := n.RevokeToken(ctx, newBob, mine.TokenID); err != nil {
		t.Errorf("new bob revoking his own token: %v", err)
	}
}
