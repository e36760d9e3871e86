package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestJoinDuringElection starts a join while the mesh has no leader (two
// of its three voters stopped: no election can succeed), and lets the
// election happen once the joiner has been told so: the join waits for
// the new leader and the node is ready within 30 s of its start, where it
// used to exit with "no catalog leader now; try again".
func TestJoinDuringElection(t *testing.T) {
	a, b, c := newMesh3(t)
	ticket := strings.TrimSpace(a.cli(t, "mesh", "invite", "--expires", "10m"))
	repo := t.TempDir()
	cmd := exec.Command(binary, "init", "--join", ticket, "--listen", "/ip4/127.0.0.1/tcp/0")
	cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("artmesh init --join: %v\n%s", err, out)
	}

	b.pause()
	c.pause()
	waitFor(t, 15*time.Second, "the first node has no leader", func() bool {
		code, _ := a.status(t, "", "GET", "/readyz", nil)
		return code != 200
	})
	start := time.Now()
	d := spawn(t, repo, "127.0.0.1:0")
	waitFor(t, 20*time.Second, "the joiner was told the mesh cannot take it now", func() bool {
		select {
		case <-d.done:
			t.Fatalf("the joiner exited: %s", d.logs())
		default:
		}
		return strings.Contains(d.logs(), "the mesh cannot take the join now")
	})
	b.resume()
	c.resume()
	d.attach(t, 30*time.Second-time.Since(start))
	waitReady(t, d, 30*time.Second-time.Since(start))
	took := time.Since(start)
	if took > 30*time.Second {
		t.Fatalf("the joiner was ready after %s, want within 30 s", took)
	}
	t.Logf("joined during the election and ready after %s", took.Round(100*time.Millisecond))
	if ms := a.members(t); len(ms) != 4 {
		t.Errorf("members after the join: %+v", ms)
	}
}
