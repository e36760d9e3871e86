package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRemovedMemberIsCutOff removes a member from a mesh of three and
// checks that, at once, the key of the admin agent it got at join is
// refused on every node, its writes (forwarded to the leader) fail, and it
// cannot fetch content it never held: the mesh refuses every stream of a
// peer that is not a member, with no network key to hide behind.
func TestRemovedMemberIsCutOff(t *testing.T) {
	ds := meshOf(t, 3)
	a, b, c := ds[0], ds[1], ds[2]
	joinKey, err := os.ReadFile(filepath.Join(c.repo, "api.key"))
	if err != nil {
		t.Fatal(err)
	}
	cKey := strings.TrimSpace(string(joinKey))
	// One copy only, on a: c never holds it.
	a.call(t, "PUT", "/v1/mesh/policy", map[string]any{"replication_factor": 1}, 200, nil)
	var alice struct {
		APIKey string `json:"api_key"`
	}
	a.call(t, "POST", "/v1/agents", map[string]any{"id": "alice"}, 201, &alice)
	var only artifact
	a.callAs(t, alice.APIKey, "POST", "/v1/artifacts?name=only-a.bin", &patterned{n: 2 << 20, seed: 7}, 201, &only)
	// Before: c's join key works everywhere, and c knows alice.
	for _, d := range ds {
		waitFor(t, 10*time.Second, "c's join key and alice are known on "+d.url, func() bool {
			code1, _ := d.status(t, cKey, "GET", "/v1/artifacts", nil)
			code2, _ := d.status(t, alice.APIKey, "GET", "/v1/artifacts/"+only.ID, nil)
			return code1 == 200 && code2 == 200
		})
	}

	a.call(t, "DELETE", "/v1/mesh/members/"+c.peerID(t), nil, 204, nil)

	for _, d := range []*daemon{a, b} {
		waitFor(t, 5*time.Second, "the removed member's join key is refused on "+d.url, func() bool {
			code, _ := d.status(t, cKey, "GET", "/v1/artifacts", nil)
			return code == 401
		})
	}
	// c may not know yet that it was removed (503: the leader takes no
	// write from it and no member serves it content), or know it already
	// (409: it says it was removed, and serves nothing).
	refused := func(code int, body []byte) bool {
		return code == 503 || code == 409 && bytes.Contains(body, []byte("was removed from its mesh"))
	}
	if code, body := c.status(t, alice.APIKey, "POST", "/v1/artifacts?name=after-removal.bin", bytes.NewReader([]byte("x"))); !refused(code, body) {
		t.Fatalf("a write through the removed member: %d %s, want 503 or 409", code, body)
	}
	if code, body := c.status(t, alice.APIKey, "GET", "/v1/artifacts/"+only.ID+"/content", nil); !refused(code, body) {
		t.Fatalf("a download on the removed member of content it never held: %d %.200s, want 503 or 409", code, body)
	}
	// Either way it finds out soon: the leader sent it the configuration
	// without it.
	waitFor(t, 10*time.Second, "the removed member says it was removed", func() bool {
		code, body := c.status(t, "", "GET", "/readyz", nil)
		return code == 409 && bytes.Contains(body, []byte("was removed from its mesh"))
	})
	var page artifactPage
	a.callAs(t, alice.APIKey, "GET", "/v1/artifacts?name=after-removal.bin", nil, 200, &page)
	if len(page.Items) != 0 {
		t.Fatalf("the removed member's write was recorded: %+v", page)
	}
	ms := a.members(t)
	if len(ms) != 2 {
		t.Fatalf("members after the removal: %+v", ms)
	}

	// The leader leaves by itself: `mesh leave` hands the leadership over
	// and returns (it used to hang), and the other node goes on alone.
	leaver, stays := a, b
	for _, m := range ms {
		if m.Leader && m.PeerID == b.peerID(t) {
			leaver, stays = b, a
		}
	}
	start := time.Now()
	if out, errOut, err := leaver.cliRaw("mesh", "leave"); err != nil || !strings.Contains(out, "left the mesh") {
		t.Fatalf("mesh leave: %v\n%s%s", err, out, errOut)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("mesh leave took %s", took)
	}
	waitFor(t, 20*time.Second, "the node that stays is alone and leads", func() bool {
		var ms struct {
			Items []memberInfo `json:"items"`
		}
		code, data := stays.status(t, stays.key, "GET", "/v1/mesh/members", nil)
		return code == 200 && json.Unmarshal(data, &ms) == nil && len(ms.Items) == 1 && ms.Items[0].Leader
	})
	stays.callAs(t, alice.APIKey, "POST", "/v1/artifacts?name=alone.bin", bytes.NewReader([]byte("alone")), 201, nil)
}

// TestUsedTicketCannotJoin joins a node with a ticket and then tries the
// same ticket from another repo: with no network key in a ticket, the
// one-time secret is the whole gate, and a used one is refused.
func TestUsedTicketCannotJoin(t *testing.T) {
	a := startDaemon(t, t.TempDir())
	ticket := strings.TrimSpace(a.cli(t, "mesh", "invite", "--expires", "10m"))
	if strings.Contains(decodeTicket(t, ticket), `"k"`) {
		t.Fatalf("a ticket of a mesh without a private network carries a key: %s", decodeTicket(t, ticket))
	}
	first := t.TempDir()
	initJoin(t, first, ticket)
	startDaemon(t, first)

	second := t.TempDir()
	initJoin(t, second, ticket)
	if out := refusedJoin(t, second, "used ticket"); !strings.Contains(out, "already used") {
		t.Fatalf("the refusal does not say why: %s", out)
	}
	if ms := a.members(t); len(ms) != 2 {
		t.Fatalf("members after a refused join: %+v", ms)
	}
}

// refusedJoin starts the daemon of a repo made with `init --join` and
// checks that it gives up with an error and no API key, as a node whose
// join is refused must (what says what is wrong with it); it returns the
// daemon's output.
func refusedJoin(t *testing.T, repo, what string) string {
	t.Helper()
	d := exec.Command(binary, "daemon", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "error")
	d.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
	var out bytes.Buffer
	d.Stdout, d.Stderr = &out, &out
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("a node with a %s joined: %s", what, out.String())
		}
	case <-time.After(90 * time.Second):
		d.Process.Kill()
		<-done
		t.Fatalf("a node with a %s neither joined nor gave up", what)
	}
	if _, err := os.Stat(filepath.Join(repo, "api.key")); err == nil {
		t.Fatalf("the node with a %s got an API key", what)
	}
	return out.String()
}

// initJoin runs `artmesh init --join ticket` for repo.
func initJoin(t *testing.T, repo, ticket string) {
	t.Helper()
	cmd := exec.Command(binary, "init", "--join", ticket, "--listen", "/ip4/127.0.0.1/tcp/0")
	cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("artmesh init --join: %v\n%s", err, out)
	}
}

// decodeTicket returns a ticket's JSON.
func decodeTicket(t *testing.T, ticket string) string {
	t.Helper()
	data, err := decodeB64(strings.TrimPrefix(ticket, "artmesh1"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
