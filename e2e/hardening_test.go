package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSignedURLEndsOnItsIssuer runs a node with the default clock-skew
// leeway (30 s): a 1-s signed URL is refused by that node, which issued it,
// as soon as it expires, and not 30 s later. The URL names the node's own
// API address, and a request whose Host names another host is refused
// (DNS rebinding).
func TestSignedURLEndsOnItsIssuer(t *testing.T) {
	d := startDaemon(t, t.TempDir()) // the default --token-clock-skew
	var a artifact
	d.call(t, "POST", "/v1/artifacts?name=brief.txt", "for one second", 201, &a)

	var short signedURL
	d.call(t, "POST", "/v1/artifacts/"+a.ID+"/signed-url", map[string]any{"expires_in": 1}, 201, &short)
	if !strings.HasPrefix(short.URL, d.url+"/v1/cap/") {
		t.Fatalf("signed URL %s is not on the node's API address %s", short.URL, d.url)
	}
	// On its issuer it ends at its expiry (the second-granular
	// expires_at, plus the poll), not 30 s of leeway later.
	exp, err := time.Parse(time.RFC3339, short.ExpiresAt)
	if err != nil {
		t.Fatal(err)
	}
	waitExpired(t, short, exp.Add(1500*time.Millisecond))

	// Another Host: refused before any route runs, with the error shape.
	for _, host := range []string{"rebind.attacker.test" + d.url[strings.LastIndex(d.url, ":"):], "attacker.test"} {
		req, _ := http.NewRequest("GET", d.url+"/v1/artifacts/"+a.ID, nil)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+d.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || errorCode(body) != "invalid_argument" {
			t.Errorf("Host %s: %d %s, want 400 invalid_argument", host, resp.StatusCode, body)
		}
	}
}
