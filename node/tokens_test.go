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
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
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

// TestTokenNeedsItsGrant checks that a read token works only while a
// grant it was issued under stands: an unshare, or leaving the group the
// artifact is shared with, ends it, and sharing or joining again does not
// bring it back; a token issued after that works.
func TestTokenNeedsItsGrant(t *testing.T) {
	ctx := context.Background()
	n, admin := openTestNode(t, Config{GCDelay: -1, TokenSkew: -1})
	a, err := n.CreateArtifact(ctx, admin, CreateInput{Name: "z.txt", Size: -1}, strings.NewReader("zed"))
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := n.CreateAgent(ctx, admin, "bob", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	carol, _, err := n.CreateAgent(ctx, admin, "carol", []string{"g"}, false)
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sign := func(who artmesh.Agent) string {
		t.Helper()
		su, err := n.CreateSignedURL(ctx, who, a.ID, 600, 0)
		if err != nil {
			t.Fatal(err)
		}
		return su.Token
	}
	tests := []struct {
		name   string
		who    artmesh.Agent
		remove func()
		again  func()
	}{
		{"direct share", bob,
			func() { must(n.Unshare(ctx, admin, a.ID, []artmesh.AgentID{"bob"}, nil)) },
			func() { must(n.Share(ctx, admin, a.ID, []artmesh.AgentID{"bob"}, nil)) }},
		{"group share", carol,
			func() { must(n.Unshare(ctx, admin, a.ID, nil, []string{"g"})) },
			func() { must(n.Share(ctx, admin, a.ID, nil, []string{"g"})) }},
		{"group membership", carol,
			func() { must(n.PutGroup(ctx, admin, "g", nil)) },
			func() { must(n.PutGroup(ctx, admin, "g", []artmesh.AgentID{"carol"})) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.again()
			old := sign(tt.who)
			if got, err := readCap(ctx, n, old); err != nil || got != "zed" {
				t.Fatalf("under its grant: %q, %v", got, err)
			}
			tt.remove()
			if _, err := readCap(ctx, n, old); !errors.Is(err, artmesh.PermissionDenied) {
				t.Fatalf("after the grant went: %v, want PermissionDenied", err)
			}
			tt.again()
			if _, err := readCap(ctx, n, old); !errors.Is(err, artmesh.PermissionDenied) || !strings.Contains(err.Error(), "was removed since") {
				t.Fatalf("after the grant was made again: %v, want PermissionDenied (grant removed since)", err)
			}
			if got, err := readCap(ctx, n, sign(tt.who)); err != nil || got != "zed" {
				t.Fatalf("a token issued under the new grant: %q, %v", got, err)
			}
		})
	}
	// The owner's tokens rest on the ownership.
	if got, err := readCap(ctx, n, sign(admin)); err != nil || got != "zed" {
		t.Fatalf("the owner's token: %q, %v", got, err)
	}
}

// TestGrantStandsLegacy checks the grant check of token records: one
// from before grants were checked (no issued index) passes it, which
// leaves it to the check of current rights as before; so does a write
// token and a token of an artifact that is gone (reported later).
func TestGrantStandsLegacy(t *testing.T) {
	ctx := context.Background()
	n, admin := openTestNode(t, Config{GCDelay: -1})
	a, err := n.CreateArtifact(ctx, admin, CreateInput{Name: "z.txt", Size: -1}, strings.NewReader("zed"))
	if err != nil {
		t.Fatal(err)
	}
	now := n.cat.AppliedIndex()
	tests := []struct {
		name   string
		action acl.Action
		target string
		issued uint64
		want   artmesh.Kind
	}{
		{"recorded before grants were checked", acl.ActionRead, string(a.ID), 0, artmesh.Other},
		{"recorded since, no grant", acl.ActionRead, string(a.ID), now, artmesh.PermissionDenied},
		{"a write token", acl.ActionWrite, string(a.ID), now, artmesh.Other},
		{"an artifact that is gone", acl.ActionRead, "01JNKQ0000000000000000000A", now, artmesh.Other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := acl.Claims{Action: tt.action, Agent: "bob", Target: tt.target}
			err := grantStands(n.cat, catalog.Token{ID: "t", Agent: "bob", IssuedIndex: tt.issued}, c)
			if tt.want == artmesh.Other && err != nil || tt.want != artmesh.Other && !errors.Is(err, tt.want) {
				t.Fatalf("grantStands: %v, want kind %v", err, tt.want)
			}
		})
	}
}

// TestTokenClaimsMustMatchRecord: any member can sign a token, so one
// signed with other claims under a recorded id (another artifact, another
// agent, a later expiry) is refused; the token as issued
// works.
func TestTokenClaimsMustMatchRecord(t *testing.T) {
	ctx := context.Background()
	n, admin := openTestNode(t, Config{GCDelay: -1, TokenSkew: -1})
	mine, err := n.CreateArtifact(ctx, admin, CreateInput{Name: "mine.txt", Size: -1}, strings.NewReader("mine"))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := n.CreateArtifact(ctx, admin, CreateInput{Name: "secret.txt", Size: -1}, strings.NewReader("secret"))
	if err != nil {
		t.Fatal(err)
	}
	su, err := n.CreateSignedURL(ctx, admin, mine.ID, 600, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readCap(ctx, n, su.Token); err != nil || got != "mine" {
		t.Fatalf("the token as issued: %q, %v", got, err)
	}
	issued, err := acl.Parse(su.Token)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(c *acl.Claims){
		"another artifact": func(c *acl.Claims) { c.Target = string(secret.ID) },
		"another agent":    func(c *acl.Claims) { c.Agent = "someone" },
		"a later expiry":   func(c *acl.Claims) { c.Expires = c.Expires.Add(24 * time.Hour) },
	} {
		c := issued
		change(&c)
		forged, err := acl.Mint(c, n.key)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := readCap(ctx, n, forged); !errors.Is(err, artmesh.Unauthenticated) {
			t.Errorf("%s under the recorded id: %q, %v; want unauthenticated", name, got, err)
		}
	}
}
