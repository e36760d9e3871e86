package acl

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

func testKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

var (
	t0       = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	artifact = "art_01JD0000000000000000000000"
)

func claims() Claims {
	return Claims{ID: NewTokenID(), Action: ActionRead, Agent: "alice", Target: artifact, Version: 3, NotBefore: t0, Expires: t0.Add(time.Hour)}
}

func member(key ed25519.PrivateKey) func(string) bool {
	id := PeerIDFromPublicKey(key.Public().(ed25519.PublicKey))
	return func(issuer string) bool { return issuer == id }
}

// self is the peer id (bytes) of the node whose key is key.
func self(key ed25519.PrivateKey) string {
	return PeerIDFromPublicKey(key.Public().(ed25519.PublicKey))
}

func TestTokenRoundTrip(t *testing.T) {
	key := testKey(t)
	c := claims()
	tok, err := Mint(c, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(tok, VerifyOptions{Now: t0.Add(time.Minute), IsMember: member(key)})
	if err != nil {
		t.Fatal(err)
	}
	c.Issuer = PeerIDFromPublicKey(key.Public().(ed25519.PublicKey))
	if got != c {
		t.Fatalf("claims %+v, want %+v", got, c)
	}
	if len(tok) > 300 {
		t.Errorf("token of %d characters is not compact", len(tok))
	}
	w := claims()
	w.Action, w.Target, w.Version = ActionWrite, "upl_01JD0000000000000000000000", 0
	if _, err := Mint(w, key); err != nil {
		t.Fatal(err)
	}
}

func TestTokenVerifyFailures(t *testing.T) {
	key, other := testKey(t), testKey(t)
	tok, _ := Mint(claims(), key)
	foreign, _ := Mint(claims(), other)
	revokedID := claims()
	revoked, _ := Mint(revokedID, key)
	for _, tc := range []struct {
		name  string
		token string
		opts  VerifyOptions
		kind  artmesh.Kind
	}{
		{"valid", tok, VerifyOptions{Now: t0, IsMember: member(key)}, artmesh.Other},
		{"not a member", foreign, VerifyOptions{Now: t0, IsMember: member(key)}, artmesh.Unauthenticated},
		{"no membership lookup", tok, VerifyOptions{Now: t0}, artmesh.Unauthenticated},
		{"expired", tok, VerifyOptions{Now: t0.Add(time.Hour), IsMember: member(key)}, artmesh.Expired},
		{"expired within skew", tok, VerifyOptions{Now: t0.Add(time.Hour + 10*time.Second), Skew: 30 * time.Second, IsMember: member(key)}, artmesh.Other},
		{"expired past skew", tok, VerifyOptions{Now: t0.Add(time.Hour + 31*time.Second), Skew: 30 * time.Second, IsMember: member(key)}, artmesh.Expired},
		{"not yet valid", tok, VerifyOptions{Now: t0.Add(-time.Minute), IsMember: member(key)}, artmesh.Unauthenticated},
		{"not yet valid within skew", tok, VerifyOptions{Now: t0.Add(-20 * time.Second), Skew: 30 * time.Second, IsMember: member(key)}, artmesh.Other},
		// The skew is for other nodes' clocks: the issuer itself holds its
		// tokens to its own clock.
		{"own token expired within skew", tok, VerifyOptions{Now: t0.Add(time.Hour + 10*time.Second), Skew: 30 * time.Second, Self: self(key), IsMember: member(key)}, artmesh.Expired},
		{"own token at its expiry", tok, VerifyOptions{Now: t0.Add(time.Hour), Skew: 30 * time.Second, Self: self(key), IsMember: member(key)}, artmesh.Expired},
		{"own token before its expiry", tok, VerifyOptions{Now: t0.Add(time.Hour - time.Second), Skew: 30 * time.Second, Self: self(key), IsMember: member(key)}, artmesh.Other},
		{"own token not yet valid within skew", tok, VerifyOptions{Now: t0.Add(-20 * time.Second), Skew: 30 * time.Second, Self: self(key), IsMember: member(key)}, artmesh.Other},
		{"own token not yet valid past skew", tok, VerifyOptions{Now: t0.Add(-31 * time.Second), Skew: 30 * time.Second, Self: self(key), IsMember: member(key)}, artmesh.Unauthenticated},
		{"other node's token expired within skew", tok, VerifyOptions{Now: t0.Add(time.Hour + 10*time.Second), Skew: 30 * time.Second, Self: self(other), IsMember: member(key)}, artmesh.Other},
		{"revoked", revoked, VerifyOptions{Now: t0, IsMember: member(key), Revoked: func(id TokenID) bool { return id == revokedID.ID }}, artmesh.PermissionDenied},
		{"empty", "", VerifyOptions{Now: t0, IsMember: member(key)}, artmesh.Unauthenticated},
		{"garbage", "not-a-token", VerifyOptions{Now: t0, IsMember: member(key)}, artmesh.Unauthenticated},
		{"padded", tok + "=", VerifyOptions{Now: t0, IsMember: member(key)}, artmesh.Unauthenticated},
		{"truncated", tok[:len(tok)-1], VerifyOptions{Now: t0, IsMember: member(key)}, artmesh.Unauthenticated},
	} {
		_, err := Verify(tc.token, tc.opts)
		if tc.kind == artmesh.Other {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, tc.kind) {
			t.Errorf("%s: err %v, want %s", tc.name, err, tc.kind)
		}
	}
}

// TestTokenEveryFlippedBit flips each bit of a token's bytes and checks that
// no altered token verifies.
func TestTokenEveryFlippedBit(t *testing.T) {
	key := testKey(t)
	tok, _ := Mint(claims(), key)
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	opts := VerifyOptions{Now: t0, IsMember: member(key)}
	for i := range raw {
		for bit := 0; bit < 8; bit++ {
			b := append([]byte(nil), raw...)
			b[i] ^= 1 << bit
			if _, err := Verify(base64.RawURLEncoding.EncodeToString(b), opts); err == nil {
				t.Fatalf("token with byte %d bit %d flipped verifies", i, bit)
			}
		}
	}
	// And every character of the text form replaced by another.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range tok {
		for _, r := range []byte{alphabet[(i*7)%64], alphabet[(i*7+32)%64]} {
			if r == tok[i] {
				continue
			}
			alt := tok[:i] + string(r) + tok[i+1:]
			if _, err := Verify(alt, opts); err == nil {
				t.Fatalf("token with character %d changed verifies", i)
			}
		}
	}
}

func TestTokenID(t *testing.T) {
	id := NewTokenID()
	back, err := ParseTokenID(id.String())
	if err != nil || back != id {
		t.Fatalf("ParseTokenID(%s) = %v, %v", id, back, err)
	}
	for _, bad := range []string{"", "tok_", "tok_short", "xyz_" + id.String()[4:], id.String() + "a"} {
		if _, err := ParseTokenID(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzParseToken checks that no input makes the parser panic, that what
// parses re-encodes to the same bytes, and that no fuzzed input verifies
// unless it is the valid seed itself.
func FuzzParseToken(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	valid, _ := Mint(claims(), key)
	f.Add(valid)
	f.Add("")
	f.Add("AQEAAAAAAAAAAAAAAAAAAAAA")
	f.Add(valid[:40])
	opts := VerifyOptions{Now: t0, IsMember: member(key)}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := Parse(token)
		if err != nil {
			if !errors.Is(err, artmesh.Unauthenticated) {
				t.Fatalf("parse error %v is not Unauthenticated", err)
			}
			return
		}
		if _, err := c.marshal(); err != nil {
			t.Fatalf("parsed claims do not re-encode: %v", err)
		}
		if _, err := Verify(token, opts); err == nil && token != valid {
			t.Fatalf("a fuzzed token %q verifies", token)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	key := testKey(b)
	tok, _ := Mint(claims(), key)
	opts := VerifyOptions{Now: t0, IsMember: member(key), Revoked: func(TokenID) bool { return false }}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Verify(tok, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}
