package e2e

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// joinDaemon initialises repo with an invite from inviter and starts it;
// the node joins on its first start.
func joinDaemon(t *testing.T, inviter *daemon, repo string) *daemon {
	t.Helper()
	return joinDaemonArgs(t, inviter, repo)
}

type memberInfo struct {
	PeerID    string `json:"peer_id"`
	Role      string `json:"role"`
	Reachable bool   `json:"reachable"`
	Leader    bool   `json:"leader"`
}

// members lists the mesh's members as d sees them.
func (d *daemon) members(t testing.TB) []memberInfo {
	t.Helper()
	var ms struct {
		Items []memberInfo `json:"items"`
	}
	d.call(t, "GET", "/v1/mesh/members", nil, 200, &ms)
	return ms.Items
}

// TestMeshCatalog joins three nodes with tickets and checks that the
// catalog is one: a write on any node is read on the others, a follower's
// write is visible on the leader as soon as it is answered, and agents,
// keys and grants hold everywhere.
func TestMeshCatalog(t *testing.T) {
	a := startDaemon(t, t.TempDir())
	b := joinDaemon(t, a, t.TempDir())
	// b's own key is its node agent's, which may not invite: the mesh
	// admin's key on b may.
	bOwn := b.key
	b.key = a.key
	c := joinDaemon(t, b, t.TempDir()) // invited by a follower
	b.key = bOwn

	var members struct {
		Items []memberInfo `json:"items"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.call(t, "GET", "/v1/mesh/members", nil, 200, &members)
		voters, reachable, leaders := 0, 0, 0
		for _, m := range members.Items {
			if m.Role == "voter" {
				voters++
			}
			if m.Reachable {
				reachable++
			}
			if m.Leader {
				leaders++
			}
		}
		if voters == 3 && reachable == 3 && leaders == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members after joining: %+v", members.Items)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := a.cli(t, "node", "--json")
	if !strings.Contains(out, "/p2p/") {
		t.Fatalf("node info has no mesh addresses: %s", out)
	}

	// An agent made on A works on B and C with the same key.
	var alice, bob struct {
		APIKey string `json:"api_key"`
	}
	a.call(t, "POST", "/v1/agents", map[string]any{"id": "alice"}, 201, &alice)
	b.call(t, "POST", "/v1/agents", map[string]any{"id": "bob", "groups": []string{"team"}}, 201, &bob) // forwarded write

	var art artifact
	a.callAs(t, alice.APIKey, "POST", "/v1/snippets", map[string]any{"name": "input.json", "content": map[string]any{"x": 1}}, 201, &art)
	var got artifact
	c.callAs(t, alice.APIKey, "GET", "/v1/artifacts/"+art.ID+"?consistent=true", nil, 200, &got)
	if got.CID != art.CID {
		t.Fatalf("C sees %+v", got)
	}
	// Update on B; version 2 is visible on A as soon as B answered.
	var v2 artifact
	b.callAs(t, alice.APIKey, "PUT", "/v1/artifacts/"+art.ID+"/content", `{"x": 2}`, 201, &v2, "Content-Type", "application/json")
	a.callAs(t, alice.APIKey, "GET", "/v1/artifacts/"+art.ID, nil, 200, &got)
	if v2.Version != 2 || got.Version != 2 || got.CID != v2.CID {
		t.Fatalf("after the update on B: B answered %+v, A shows %+v", v2, got)
	}
	// Share on A; the grantee lists it on C.
	a.callAs(t, alice.APIKey, "POST", "/v1/artifacts/"+art.ID+"/share", map[string]any{"groups": []string{"team"}}, 200, nil)
	var shared artifactPage
	c.callAs(t, bob.APIKey, "GET", "/v1/shared?consistent=true", nil, 200, &shared)
	if len(shared.Items) != 1 || shared.Items[0].ID != art.ID || shared.Items[0].Owner != "alice" {
		t.Fatalf("bob's shared list on C: %+v", shared)
	}
	// Content created on A downloads on C, fetched from A as it streams.
	const size = 24 << 20
	var big artifact
	a.callAs(t, alice.APIKey, "POST", "/v1/artifacts?name=weights.bin", &patterned{n: size, seed: 21}, 201, &big)
	resp := c.do(t, alice.APIKey, "GET", "/v1/artifacts/"+big.ID+"/content?consistent=true", nil)
	sum := sha256.New()
	n, _ := io.Copy(sum, resp.Body)
	resp.Body.Close()
	want := sha256.New()
	io.Copy(want, &patterned{n: size, seed: 21})
	if resp.StatusCode != 200 || n != size || !bytes.Equal(sum.Sum(nil), want.Sum(nil)) {
		t.Fatalf("download on C: status %d, %d bytes, equal %v", resp.StatusCode, n, bytes.Equal(sum.Sum(nil), want.Sum(nil)))
	}
	// A signed URL made on A downloads through B's API.
	var su struct {
		URL   string `json:"url"`
		Token string `json:"token"`
	}
	a.callAs(t, alice.APIKey, "POST", "/v1/artifacts/"+big.ID+"/signed-url", nil, 201, &su)
	resp = b.do(t, "", "GET", "/v1/cap/"+su.Token, nil)
	sum.Reset()
	n, _ = io.Copy(sum, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || n != size || !bytes.Equal(sum.Sum(nil), want.Sum(nil)) {
		t.Fatalf("signed URL from A through B: status %d, %d bytes", resp.StatusCode, n)
	}

	// Pin on C a version only A and B hold: C fetches it and keeps it.
	var v1 artifact
	a.callAs(t, alice.APIKey, "POST", "/v1/artifacts?name=pinned.bin", &patterned{n: 3 << 20, seed: 22}, 201, &v1)
	var pin struct {
		State     string `json:"state"`
		SizeBytes int64  `json:"size_bytes"`
	}
	c.callAs(t, alice.APIKey, "GET", "/v1/artifacts/"+v1.ID+"?consistent=true", nil, 200, nil)
	c.callAs(t, alice.APIKey, "PUT", "/v1/pins/"+v1.ID, nil, 202, &pin)
	deadline = time.Now().Add(20 * time.Second)
	for {
		var pins struct {
			Items []struct {
				ArtifactID string `json:"artifact_id"`
				State      string `json:"state"`
				BytesDone  int64  `json:"bytes_done"`
				Error      string `json:"error"`
			} `json:"items"`
		}
		c.callAs(t, alice.APIKey, "GET", "/v1/pins", nil, 200, &pins)
		if len(pins.Items) == 1 && pins.Items[0].State == "pinned" {
			if pins.Items[0].BytesDone != 3<<20 {
				t.Fatalf("pinned with %d bytes done", pins.Items[0].BytesDone)
			}
			break
		}
		if len(pins.Items) != 1 || pins.Items[0].State == "failed" || time.Now().After(deadline) {
			t.Fatalf("pins on C: %+v", pins.Items)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := c.cliAs(t, alice.APIKey, "pins"); !strings.Contains(out, v1.ID) || !strings.Contains(out, "pinned") {
		t.Fatalf("artmesh pins: %s", out)
	}
	a.callAs(t, alice.APIKey, "PUT", "/v1/artifacts/"+v1.ID+"/content", &patterned{n: 2 << 20, seed: 23}, 201, nil)
	c.callAs(t, alice.APIKey, "GET", "/v1/artifacts?consistent=true", nil, 200, nil)
	c.cliAs(t, alice.APIKey, "pin", v1.ID, "--version", "2")
	if out := c.cli(t, "mesh", "members"); !strings.HasPrefix(out, "THIS ") {
		t.Fatalf("artmesh mesh members: %s", out)
	} else {
		// One row a member; this node's is the one marked; one leader.
		marked, leaders, rows := 0, 0, 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 0 && f[0] == "*" {
				marked++
				if f = f[1:]; f[0] != c.peerID(t) {
					t.Fatalf("mesh members on C marks %s, not C:\n%s", f[0], out)
				}
			}
			if rows++; len(f) < 4 || f[1] != "voter" {
				t.Fatalf("artmesh mesh members row %q:\n%s", line, out)
			}
			if f[3] == "yes" {
				leaders++
			}
		}
		if rows != 3 || marked != 1 || leaders != 1 {
			t.Fatalf("artmesh mesh members: %d rows, %d marked, %d leaders:\n%s", rows, marked, leaders, out)
		}
	}
	c.callAs(t, alice.APIKey, "DELETE", "/v1/pins/"+v1.ID, nil, 204, nil)
	c.callAs(t, alice.APIKey, "DELETE", "/v1/pins/"+v1.ID, nil, 404, nil)

	// Each joined node got its own admin key, which works on every node.
	c.call(t, "GET", "/v1/agents", nil, 200, nil)
	bKey, _ := os.ReadFile(filepath.Join(b.repo, "api.key"))
	a.callAs(t, strings.TrimSpace(string(bKey)), "GET", "/v1/agents", nil, 200, nil)

	// A ticket is good for one node only.
	var inv struct {
		Ticket string `json:"ticket"`
	}
	a.call(t, "POST", "/v1/mesh/invites", nil, 201, &inv)
	for i, want := range []bool{true, false} {
		repo := t.TempDir()
		cmd := exec.Command(binary, "init", "--join", inv.Ticket, "--listen", "/ip4/127.0.0.1/tcp/0")
		cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("init --join: %v %s", err, out)
		}
		d := exec.Command(binary, "daemon", "--api", "127.0.0.1:0", "--log-level", "error")
		d.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
		if want {
			started := startDaemon(t, repo)
			started.stop()
			continue
		}
		outb, err := d.CombinedOutput()
		if err == nil || !strings.Contains(string(outb), "already used") {
			t.Fatalf("round %d: a reused ticket: %v %s", i, err, outb)
		}
	}
}
