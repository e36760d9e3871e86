package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// get fetches a URL with plain HTTP, as curl would, and no key.
func get(t *testing.T, method, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading: %v", method, url, err)
	}
	return resp, body
}

// expectCap checks that a capability URL answers status with error code
// code.
func expectCap(t *testing.T, what, url string, status int, code string) {
	t.Helper()
	resp, body := get(t, "GET", url)
	if resp.StatusCode != status || errorCode(body) != code {
		t.Errorf("%s: GET answered %d %s, want %d %s", what, resp.StatusCode, body, status, code)
	}
}

// TestSignedURL checks signed download URLs: they serve content with no key
// exactly as /content does (Range, ETag, If-None-Match, HEAD), and stop
// working with the right error when they expire, are revoked, when the
// granting access is taken back and when the artifact is deleted. A token
// with any one byte changed, and one signed by a node that is not a
// member, are refused.
func TestSignedURL(t *testing.T) {
	d := startDaemonArgs(t, t.TempDir(), "127.0.0.1:0", "--token-clock-skew", "0s")
	alice, bob := d.addAgent(t, "alice"), d.addAgent(t, "bob")
	dave := d.addAgent(t, "dave")

	const size = 1 << 20
	var a artifact
	d.callAs(t, alice, "POST", "/v1/artifacts?name=weights.bin", &patterned{n: size, seed: 21}, 201, &a, "Content-Type", "application/octet-stream")
	want, _ := io.ReadAll(&patterned{n: size, seed: 21})

	var u signedURL
	d.callAs(t, alice, "POST", "/v1/artifacts/"+a.ID+"/signed-url", nil, 201, &u)
	if !strings.HasPrefix(u.URL, d.url+"/v1/cap/") || !strings.HasSuffix(u.URL, u.Token) || !strings.HasPrefix(u.TokenID, "tok_") {
		t.Fatalf("signed URL %+v", u)
	}
	if exp, err := time.Parse(time.RFC3339, u.ExpiresAt); err != nil || time.Until(exp) < 59*time.Minute || time.Until(exp) > 61*time.Minute {
		t.Fatalf("default expiry %q, want in an hour", u.ExpiresAt)
	}

	t.Run("serves like content", func(t *testing.T) {
		resp, body := get(t, "GET", u.URL)
		if resp.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Fatalf("GET: %d, %d bytes", resp.StatusCode, len(body))
		}
		ref := d.do(t, alice, "GET", "/v1/artifacts/"+a.ID+"/content", nil)
		io.Copy(io.Discard, ref.Body)
		ref.Body.Close()
		for _, h := range []string{"Content-Type", "Content-Length", "ETag", "Accept-Ranges", "Content-Disposition", "X-Content-Type-Options"} {
			if got, w := resp.Header.Get(h), ref.Header.Get(h); got != w || w == "" {
				t.Errorf("%s: %q through the URL, %q through /content", h, got, w)
			}
		}
		if resp.Header.Get("ETag") != `"`+a.CID+`"` || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
			t.Errorf("headers %v", resp.Header)
		}
		resp, body = get(t, "GET", u.URL, "Range", "bytes=1000-1999")
		if resp.StatusCode != 206 || !bytes.Equal(body, want[1000:2000]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 1000-1999/%d", size) {
			t.Errorf("Range: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
		}
		resp, body = get(t, "GET", u.URL, "Range", "bytes=-10")
		if resp.StatusCode != 206 || !bytes.Equal(body, want[size-10:]) {
			t.Errorf("suffix Range: %d, %d bytes", resp.StatusCode, len(body))
		}
		resp, _ = get(t, "GET", u.URL, "Range", fmt.Sprintf("bytes=%d-", size+10))
		if resp.StatusCode != 416 {
			t.Errorf("Range past the end: %d", resp.StatusCode)
		}
		resp, body = get(t, "GET", u.URL, "If-None-Match", `"`+a.CID+`"`)
		if resp.StatusCode != 304 || len(body) != 0 {
			t.Errorf("If-None-Match: %d, %d bytes", resp.StatusCode, len(body))
		}
		resp, body = get(t, "HEAD", u.URL)
		if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != fmt.Sprint(size) {
			t.Errorf("HEAD: %d, Content-Length %q", resp.StatusCode, resp.Header.Get("Content-Length"))
		}
		// The CLI-free path a person takes: curl with no key. The token
		// also works when the request carries some other key.
		resp, _ = get(t, "GET", u.URL, "Authorization", "Bearer amk_"+strings.Repeat("x", 52))
		if resp.StatusCode != 200 {
			t.Errorf("with an unrelated Authorization header: %d", resp.StatusCode)
		}
	})

	t.Run("versions", func(t *testing.T) {
		var v2 artifact
		d.callAs(t, alice, "PUT", "/v1/artifacts/"+a.ID+"/content", "version two", 201, &v2)
		var pinned signedURL
		d.callAs(t, alice, "POST", "/v1/artifacts/"+a.ID+"/signed-url", map[string]any{"version": 1}, 201, &pinned)
		if _, body := get(t, "GET", pinned.URL); !bytes.Equal(body, want) {
			t.Errorf("a URL for version 1 served %d bytes", len(body))
		}
		// The unpinned URL follows the current version.
		if _, body := get(t, "GET", u.URL); string(body) != "version two" {
			t.Errorf("the unpinned URL served %d bytes after an update", len(body))
		}
		for _, tc := range []struct {
			body any
			want int
		}{
			{map[string]any{"version": 9}, 404},
			{map[string]any{"version": -1}, 400},
			{map[string]any{"expires_in": 604801}, 400},
			{map[string]any{"expires_in": -1}, 400},
			{`{"expires_in": "soon"}`, 400},
		} {
			if code, body := d.status(t, alice, "POST", "/v1/artifacts/"+a.ID+"/signed-url", tc.body); code != tc.want {
				t.Errorf("signed-url %v: %d %s, want %d", tc.body, code, body, tc.want)
			}
		}
		var week signedURL
		d.callAs(t, alice, "POST", "/v1/artifacts/"+a.ID+"/signed-url", map[string]any{"expires_in": 604800}, 201, &week)
		if exp, _ := time.Parse(time.RFC3339, week.ExpiresAt); time.Until(exp) < 167*time.Hour {
			t.Errorf("a week's URL expires at %s", week.ExpiresAt)
		}
		if code, _ := d.status(t, dave, "POST", "/v1/artifacts/"+a.ID+"/signed-url", nil); code != 404 {
			t.Errorf("a stranger made a signed URL: %d", code)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		var short signedURL
		d.callAs(t, alice, "POST", "/v1/artifacts/"+a.ID+"/signed-url", map[string]any{"expires_in": 1}, 201, &short)
		// It works for at most a second, then answers 410 for good.
		waitExpired(t, short, time.Now().Add(10*time.Second))
		expectCap(t, "expired, again", short.URL, 410, "expired")
		resp, _ := get(t, "HEAD", short.URL)
		if resp.StatusCode != 410 {
			t.Errorf("HEAD of an expired URL: %d", resp.StatusCode)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		var r signedURL
		d.callAs(t, alice, "POST", "/v1/artifacts/"+a.ID+"/signed-url", nil, 201, &r)
		expectCap(t, "before revoking", r.URL, 200, "")
		d.callAs(t, alice, "DELETE", "/v1/tokens/"+r.TokenID, nil, 204, nil)
		expectCap(t, "revoked", r.URL, 403, "permission_denied")
		expectCap(t, "another token of the same artifact", u.URL, 200, "")
		// With the CLI too.
		var r2 signedURL
		mustJSON(t, d.cliAs(t, alice, "url", a.ID, "--expires", "10m", "--json"), &r2)
		expectCap(t, "made by artmesh url", r2.URL, 200, "")
		d.cliAs(t, alice, "token", "revoke", r2.TokenID)
		expectCap(t, "revoked by artmesh token revoke", r2.URL, 403, "permission_denied")
	})

	t.Run("unshared", func(t *testing.T) {
		var b artifact
		d.callAs(t, alice, "POST", "/v1/artifacts?name=shared.txt", "for bob, for a while", 201, &b)
		d.cliAs(t, alice, "share", b.ID, "--agent", "bob")
		var bobs, alices signedURL
		d.callAs(t, bob, "POST", "/v1/artifacts/"+b.ID+"/signed-url", nil, 201, &bobs)
		d.callAs(t, alice, "POST", "/v1/artifacts/"+b.ID+"/signed-url", nil, 201, &alices)
		if resp, body := get(t, "GET", bobs.URL); resp.StatusCode != 200 || string(body) != "for bob, for a while" {
			t.Fatalf("bob's URL: %d %q", resp.StatusCode, body)
		}
		d.cliAs(t, alice, "unshare", b.ID, "--agent", "bob")
		expectCap(t, "bob's URL after unshare", bobs.URL, 403, "permission_denied")
		expectCap(t, "alice's URL after unsharing bob", alices.URL, 200, "")
	})

	t.Run("deleted", func(t *testing.T) {
		var c artifact
		d.callAs(t, alice, "POST", "/v1/artifacts?name=doomed.txt", "soon gone", 201, &c)
		var cu signedURL
		d.callAs(t, alice, "POST", "/v1/artifacts/"+c.ID+"/signed-url", nil, 201, &cu)
		expectCap(t, "before delete", cu.URL, 200, "")
		d.callAs(t, alice, "DELETE", "/v1/artifacts/"+c.ID, nil, 204, nil)
		expectCap(t, "after delete", cu.URL, 404, "not_found")
	})

	t.Run("tampered", func(t *testing.T) {
		raw, err := base64.RawURLEncoding.DecodeString(u.Token)
		if err != nil {
			t.Fatalf("the token is not unpadded URL-safe base64: %v", err)
		}
		refused := func(what, token string) {
			resp, body := get(t, "GET", d.url+capPath(token))
			if resp.StatusCode != 401 || errorCode(body) != "unauthenticated" {
				t.Errorf("%s: %d %s, want 401 unauthenticated", what, resp.StatusCode, body)
			}
		}
		// Every byte, flipped in its lowest bit and in all its bits.
		for i := range raw {
			for _, mask := range []byte{0x01, 0xff} {
				b := append([]byte(nil), raw...)
				b[i] ^= mask
				refused(fmt.Sprintf("byte %d of %d ^ %#x", i, len(raw), mask), base64.RawURLEncoding.EncodeToString(b))
			}
		}
		// Every character, changed to another valid one.
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		for i := range u.Token {
			c := alphabet[(strings.IndexByte(alphabet, u.Token[i])+1)%len(alphabet)]
			refused(fmt.Sprintf("character %d of %d", i, len(u.Token)), u.Token[:i]+string(c)+u.Token[i+1:])
		}
		for what, tok := range map[string]string{
			"truncated":        u.Token[:len(u.Token)-1],
			"one byte short":   base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]),
			"one byte more":    base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), raw...), 0)),
			"padded":           base64.URLEncoding.EncodeToString(raw),
			"standard base64":  strings.NewReplacer("-", "+", "_", "/").Replace(u.Token),
			"garbage":          "not-a-token",
			"empty payload":    "AA",
			"upload token":     uploadToken(t, d, alice),
			"repeated":         u.Token + u.Token,
			"signature zeroed": base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), raw[:len(raw)-64]...), make([]byte, 64)...)),
		} {
			if what == "upload token" {
				// A write token is a valid token, but not for reading.
				resp, body := get(t, "GET", d.url+capPath(tok))
				if resp.StatusCode != 401 && resp.StatusCode != 403 {
					t.Errorf("%s: %d %s, want 401 or 403", what, resp.StatusCode, body)
				}
				continue
			}
			if strings.Contains(tok, "/") || strings.Contains(tok, "+") {
				tok = strings.NewReplacer("/", "%2F", "+", "%2B").Replace(tok)
			}
			refused(what, tok)
		}
		// The untouched token still works.
		expectCap(t, "the original", u.URL, 200, "")
	})

	t.Run("foreign node", func(t *testing.T) {
		repo2 := t.TempDir()
		init := exec.Command(binary, "init", "--api", "127.0.0.1:0")
		init.Env = append(os.Environ(), "ARTMESH_PATH="+repo2)
		if out, err := init.CombinedOutput(); err != nil {
			t.Fatalf("artmesh init: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(repo2, "api.key")); err != nil {
			t.Fatal(err)
		}
		d2 := startDaemon(t, repo2)
		var other artifact
		d2.call(t, "POST", "/v1/artifacts?name=elsewhere.txt", "from another mesh", 201, &other)
		var fu signedURL
		d2.call(t, "POST", "/v1/artifacts/"+other.ID+"/signed-url", nil, 201, &fu)
		expectCap(t, "on its own node", fu.URL, 200, "")
		expectCap(t, "a token signed by a node that is not a member", d.url+capPath(fu.Token), 401, "unauthenticated")
		// And the other way round.
		expectCap(t, "this node's token on the other node", d2.url+capPath(u.Token), 401, "unauthenticated")
		d2.stop()
	})
}

// uploadToken opens a tiny upload as key and returns its write token.
func uploadToken(t *testing.T, d *daemon, key string) string {
	t.Helper()
	var up uploadSession
	d.callAs(t, key, "POST", "/v1/uploads", map[string]any{"name": "x", "size_bytes": 1}, 201, &up)
	return up.Token
}

// waitExpired polls a short-lived signed URL: it must download (200)
// until it answers 410 "expired", never before its announced expiry, and
// no later than deadline.
func waitExpired(t *testing.T, u signedURL, deadline time.Time) {
	t.Helper()
	exp, err := time.Parse(time.RFC3339, u.ExpiresAt)
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, body := get(t, "GET", u.URL)
		if resp.StatusCode == 410 {
			if errorCode(body) != "expired" {
				t.Errorf("expired URL: %s", body)
			}
			break
		}
		if resp.StatusCode != 200 {
			t.Fatalf("a short-lived URL answered %d %s before it expired", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("a short-lived URL still downloads %v after its expiry", time.Since(exp).Round(100*time.Millisecond))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if time.Now().Before(exp) {
		t.Errorf("410 before the announced expiry %s", u.ExpiresAt)
	}
}
