package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// roles returns how many members are voters and nonvoters, as d sees it.
func roles(t *testing.T, d *daemon) (voters, nonvoters int) {
	t.Helper()
	var ms struct {
		Items []memberInfo `json:"items"`
	}
	d.call(t, "GET", "/v1/mesh/members?consistent=true", nil, 200, &ms)
	for _, m := range ms.Items {
		switch m.Role {
		case "voter":
			voters++
		case "nonvoter":
			nonvoters++
		}
	}
	return voters, nonvoters
}

// TestFiveVotersLoseTwo builds a mesh of five voters, kills two of them,
// and checks that writes still succeed.
func TestFiveVotersLoseTwo(t *testing.T) {
	repo := t.TempDir()
	cmd := exec.Command(binary, "init", "--voters", "5", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0")
	cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("init --voters 5: %v %s", err, out)
	}
	a := startDaemon(t, repo)
	nodes := []*daemon{a}
	for i := 0; i < 4; i++ {
		nodes = append(nodes, joinDaemon(t, a, t.TempDir()))
	}
	if v, nv := roles(t, a); v != 5 || nv != 0 {
		t.Fatalf("%d voters and %d nonvoters, want 5 and 0", v, nv)
	}
	leader := leaderOf(t, nodes...)
	killed := 0
	var alive []*daemon
	for _, d := range nodes {
		if d != leader && killed < 2 {
			d.kill()
			killed++
			continue
		}
		alive = append(alive, d)
	}
	// The leader keeps its quorum of 3 of 5; writes succeed on every
	// survivor.
	for i, d := range alive {
		d.call(t, "POST", "/v1/snippets", map[string]any{"name": "after", "content": i}, 201, nil)
	}
	// And if the leader is the one to go, the other two elect a new one
	// with the third... only while three voters live: kill the leader too
	// and writes must fail fast with 503, not hang.
	leader.kill()
	var rest []*daemon
	for _, d := range alive {
		if d != leader {
			rest = append(rest, d)
		}
	}
	start := time.Now()
	resp := rest[0].do(t, rest[0].key, "POST", "/v1/snippets", stringsReader(`{"name": "x", "content": 1}`))
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a write without quorum: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("a write without quorum took %s to fail", took)
	}
	// Reads keep working from the local copy.
	rest[0].call(t, "GET", "/v1/artifacts", nil, 200, nil)
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
