package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Members come back, removed members say so, and a mesh that lost most of
// its voters for good is recovered on a survivor.

// startUnready starts a daemon on an existing repo with d's address and
// flags, and returns once its API listens, ready or not (a removed node
// never is).
func startUnready(t *testing.T, d *daemon) *daemon {
	t.Helper()
	repo := d.repo
	os.Remove(filepath.Join(repo, "api.addr"))
	n := &daemon{t: t, repo: repo, args: d.args, done: make(chan struct{}), log: &bytes.Buffer{}, key: d.key}
	n.cmd = exec.Command(binary, append([]string{"daemon", "--api", strings.TrimPrefix(d.url, "http://"), "--listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "warn"}, d.args...)...)
	n.cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
	n.cmd.Stdout = io.Discard
	n.cmd.Stderr = &lockedWriter{w: n.log}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("the log of the daemon on %s:\n%s", repo, tail(n.logs(), logTail))
		}
	})
	waitFor(t, 30*time.Second, "the daemon's API listens", func() bool {
		select {
		case <-n.done:
			t.Fatalf("daemon exited at start: %s", n.logs())
		default:
		}
		addr, err := os.ReadFile(filepath.Join(repo, "api.addr"))
		if err != nil || len(bytes.TrimSpace(addr)) == 0 {
			return false
		}
		n.url = "http://" + strings.TrimSpace(string(addr))
		return true
	})
	return n
}

// metric returns the value of an unlabelled metric on d's /metrics, or
// "" when it has none.
func metric(t *testing.T, d *daemon, name string) string {
	t.Helper()
	_, body := d.status(t, "", "GET", "/metrics", nil)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// listed reports whether d's members (its local view) list id, and its
// role there.
func listed(t *testing.T, d *daemon, id string) (string, bool) {
	t.Helper()
	for _, m := range d.members(t) {
		if m.PeerID == id {
			return m.Role, true
		}
	}
	return "", false
}

// TestVoterComesBack: a voter killed with SIGKILL is demoted to nonvoter
// once it has been unreachable for --dead-voter-after (a nonvoter takes
// its vote) but stays a member all along; restarted, it catches up and is
// ready within 30 s. Then the same with the leader. (The acceptance's
// 60 s of downtime is scaled down with --dead-voter-after 2s: the node
// stays down until it was demoted.)
func TestVoterComesBack(t *testing.T) {
	ds := meshOf(t, 4, "--dead-voter-after", "2s")
	ids := map[*daemon]string{}
	for _, d := range ds {
		ids[d] = d.peerID(t)
	}
	if v, nv := roles(t, ds[0]); v != 3 || nv != 1 {
		t.Fatalf("%d voters and %d nonvoters, want 3 and 1", v, nv)
	}
	for _, round := range []string{"a voter", "the leader"} {
		leader := leaderOf(t, ds...)
		var victim *daemon
		for _, d := range ds {
			role, _ := listed(t, leader, ids[d])
			if round == "the leader" && d == leader || round == "a voter" && d != leader && role == "voter" {
				victim = d
				break
			}
		}
		var others []*daemon
		for _, d := range ds {
			if d != victim {
				others = append(others, d)
			}
		}
		victim.kill()
		downAt := time.Now()
		// Every survivor lists it all along; once it has been gone for
		// longer than --dead-voter-after it is a nonvoter and the mesh
		// has its three voters again.
		waitFor(t, 60*time.Second, round+" killed is demoted to nonvoter", func() bool {
			demoted := true
			for _, o := range others {
				role, ok := listed(t, o, ids[victim])
				if !ok {
					t.Fatalf("%s: %s lost the killed member %s", round, o.url, ids[victim])
				}
				demoted = demoted && role == "nonvoter"
			}
			if !demoted {
				return false
			}
			voters := 0
			for _, m := range others[0].members(t) {
				if m.Role == "voter" {
					voters++
				}
			}
			return voters == 3
		})
		t.Logf("%s was demoted %s after it was killed", round, time.Since(downAt).Round(100*time.Millisecond))
		start := time.Now()
		back := victim.restart(t) // fails the test unless ready within 30 s
		t.Logf("%s was ready %s after its start", round, time.Since(start).Round(100*time.Millisecond))
		for i, d := range ds {
			if d == victim {
				ds[i] = back
				ids[back] = ids[victim]
			}
		}
		waitFor(t, 30*time.Second, round+" restarted is a reachable member again, on every node", func() bool {
			for _, d := range ds {
				for _, m := range d.members(t) {
					if m.PeerID == ids[back] && (m.Role != "nonvoter" && m.Role != "voter" || !m.Reachable) {
						return false
					}
				}
				if len(d.members(t)) != 4 {
					return false
				}
			}
			return true
		})
		back.call(t, "POST", "/v1/snippets", map[string]any{"name": "back", "content": round}, 201, nil)
	}
}

// TestRemovedMemberSaysSo: a member removed by an operator while it was
// down, restarted, finds out, says so on /readyz, on every API call, in
// the CLI's exit message and at error in its log, with how to join
// again, and stops its elections; its next start knows at once.
func TestRemovedMemberSaysSo(t *testing.T) {
	ds := meshOf(t, 3)
	a, c := ds[0], ds[2]
	cID := c.peerID(t)
	if got := metric(t, c, "artmesh_catalog_raft_running"); got != "1" {
		t.Fatalf("artmesh_catalog_raft_running of a member = %q, want 1", got)
	}
	c.kill()
	a.cli(t, "mesh", "remove", cID)
	if _, ok := listed(t, a, cID); ok {
		t.Fatal("a removed member is still listed")
	}

	c = startUnready(t, c)
	var body []byte
	waitFor(t, 30*time.Second, "the removed node says so on /readyz", func() bool {
		var code int
		code, body = c.status(t, "", "GET", "/readyz", nil)
		return code == 409 && errorCode(body) == "conflict"
	})
	for _, want := range []string{"was removed from its mesh", "artmesh init --join"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Fatalf("/readyz of a removed node: %s; want %q in it", body, want)
		}
	}
	if code, data := c.status(t, c.key, "GET", "/v1/artifacts", nil); code != 409 || !bytes.Contains(data, []byte("was removed from its mesh")) {
		t.Fatalf("an API call on a removed node: %d %s", code, data)
	}
	_, errOut, err := c.cliRaw("mesh", "members")
	if err == nil || !strings.Contains(errOut, "was removed from its mesh") || !strings.Contains(errOut, "artmesh mesh invite") {
		t.Fatalf("`mesh members` on a removed node: %v\n%s", err, errOut)
	}
	logs := c.logs()
	if !strings.Contains(logs, `level=ERROR msg="this node was removed from its mesh`) {
		t.Fatalf("the removed node did not log its removal at error:\n%s", tail(logs, logTail))
	}
	// It stops its elections: its Raft no longer runs.
	if got := metric(t, c, "artmesh_catalog_raft_running"); got != "0" {
		t.Fatalf("artmesh_catalog_raft_running of a removed node = %q, want 0", got)
	}
	// The next start knows at once, without asking anyone.
	c.stop()
	a.stop()
	ds[1].stop()
	c = startUnready(t, c)
	waitFor(t, 10*time.Second, "the removed node says so at once after a restart", func() bool {
		code, body := c.status(t, "", "GET", "/readyz", nil)
		return code == 409 && bytes.Contains(body, []byte("was removed from its mesh"))
	})
	if !strings.Contains(c.logs(), `level=ERROR msg="this node was removed from its mesh`) {
		t.Fatalf("the removed node did not log its removal at error at its next start:\n%s", tail(c.logs(), logTail))
	}
	if got := metric(t, c, "artmesh_catalog_raft_running"); got != "0" {
		t.Fatalf("artmesh_catalog_raft_running of a node that knew it was removed = %q, want 0", got)
	}
}

// TestOutageRecovery: of three voters two are destroyed for good; on the
// survivor, with its daemon stopped, `repo recover-catalog --sole-voter`
// makes it the only voter: every acknowledged artifact is readable, it
// takes writes, and a new node joins by invite.
func TestOutageRecovery(t *testing.T) {
	ds := meshOf(t, 3)
	a, b, c := ds[0], ds[1], ds[2]
	// Acknowledged writes: with replicas=3 every node holds them, with
	// the default one copy only on the node that took it (the survivor).
	type written struct {
		id  string
		sum [32]byte
	}
	var arts []written
	for i, d := range []*daemon{a, b, c, c} {
		body := []byte(strings.Repeat(fmt.Sprintf("artifact %d ", i), 1000+i))
		q := "&replicas=3"
		if i == 3 {
			q = ""
		}
		var art artifact
		d.call(t, "POST", fmt.Sprintf("/v1/artifacts?name=a%d%s", i, q), body, 201, &art)
		arts = append(arts, written{art.ID, sha256.Sum256(body)})
	}
	cID := c.peerID(t)
	// Destroyed for good: killed, their repos gone.
	for _, d := range []*daemon{a, b} {
		d.kill()
		os.RemoveAll(d.repo)
	}
	c.stop()

	out, errOut, err := c.cliRaw("repo", "recover-catalog", "--sole-voter")
	if err != nil {
		t.Fatalf("recover-catalog --sole-voter: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "is now the only voter") || strings.Count(out, "\n  ") != 2 {
		t.Fatalf("recover-catalog --sole-voter said:\n%s", out)
	}
	ops := c.key // meshOf's admin agent, which owns the artifacts
	c = c.restart(t)
	c.key = ops
	ms := c.members(t)
	if len(ms) != 1 || ms[0].PeerID != cID || ms[0].Role != "voter" || !ms[0].Leader {
		t.Fatalf("members after the recovery: %+v", ms)
	}
	for _, w := range arts {
		if code, sum := c.contentSum(t, w.id); code != 200 || sum != w.sum {
			t.Fatalf("artifact %s after the recovery: status %d, sum ok %v", w.id, code, sum == w.sum)
		}
	}
	c.call(t, "POST", "/v1/snippets", map[string]any{"name": "after", "content": 1}, 201, nil)

	d := joinDaemon(t, c, t.TempDir())
	d.key = ops
	waitFor(t, 30*time.Second, "the new node is a voter", func() bool {
		role, ok := listed(t, c, d.peerID(t))
		return ok && role == "voter"
	})
	if code, sum := d.contentSum(t, arts[0].id); code != 200 || sum != arts[0].sum {
		t.Fatalf("the new node reads an old artifact: %d", code)
	}
	d.call(t, "POST", "/v1/snippets", map[string]any{"name": "joined", "content": 2}, 201, nil)
	var names []string
	var page artifactPage
	c.call(t, "GET", "/v1/artifacts?consistent=true&limit=100", nil, 200, &page)
	for _, it := range page.Items {
		names = append(names, it.Name)
	}
	if !slices.Contains(names, "joined") || len(names) != len(arts)+2 {
		t.Fatalf("artifacts after the join: %v", names)
	}
}
