package e2e

// Helpers for the safety tests (safety_test.go): nodes on fixed mesh
// ports, so that a whole mesh can be restarted and still find itself;
// starting a node without waiting for /readyz, so that the catch-up window
// can be probed; pausing processes; requests with client timeouts.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// p2pListen is a fixed mesh address on loopback.
func p2pListen(t testing.TB) string {
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t))
}

// spawn starts `artmesh daemon` on repo with its API on apiAddr and the
// given flags (which carry the fixed --listen), without waiting for
// anything. owner is the test that owns the process: its cleanup resumes
// and stops it.
func spawn(owner testing.TB, repo, apiAddr string, args ...string) *daemon {
	owner.Helper()
	return spawnBin(owner, binary, "", repo, apiAddr, args...)
}

// spawnBin is spawn with another binary (a test build), in network
// namespace ns ("": the test's own).
func spawnBin(owner testing.TB, bin, ns, repo, apiAddr string, args ...string) *daemon {
	owner.Helper()
	os.Remove(filepath.Join(repo, "api.addr"))
	d := &daemon{t: owner, repo: repo, args: args, bin: bin, ns: ns, done: make(chan struct{}), log: &bytes.Buffer{}}
	d.url = "http://" + apiAddr // replaced by attach when the port was 0
	d.cmd = inNS(ns, bin, append([]string{"daemon", "--init", "--api", apiAddr, "--log-level", "info"}, args...)...)
	d.cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
	d.cmd.Stdout = io.Discard
	d.cmd.Stderr = &lockedWriter{w: d.log}
	// If the test binary dies without its cleanups (a timeout, a signal),
	// the node dies with it rather than running on.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		owner.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	owner.Cleanup(func() {
		d.resume()
		d.stop()
	})
	return d
}

// attach waits until the spawned daemon's API listens (api.addr written)
// and reads its admin key. It does not wait for /readyz.
func (d *daemon) attach(t testing.TB, within time.Duration) *daemon {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if addr, err := os.ReadFile(filepath.Join(d.repo, "api.addr")); err == nil && len(bytes.TrimSpace(addr)) > 0 {
			d.url = "http://" + strings.TrimSpace(string(addr))
			break
		}
		select {
		case <-d.done:
			t.Fatalf("daemon %s exited at start: %s", d.repo, d.logs())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon %s did not listen within %s: %s", d.repo, within, d.logs())
		}
	}
	key, err := os.ReadFile(filepath.Join(d.repo, "api.key"))
	if err != nil {
		t.Fatal(err)
	}
	d.key = strings.TrimSpace(string(key))
	return d
}

// relaunch starts d's repo again with the same API address and flags
// (the same fixed mesh port), once d has exited; it does not wait for
// /readyz. The new process belongs to d's owner (it may outlive t, a
// subtest); t is the test that fails if it does not come up.
func relaunch(t testing.TB, d *daemon) *daemon {
	t.Helper()
	select {
	case <-d.done:
	default:
		t.Fatalf("relaunch of %s while it runs", d.repo)
	}
	bin := d.bin
	if bin == "" {
		bin = binary // a daemon started by startDaemon
	}
	return spawnBin(d.t, bin, d.ns, d.repo, strings.TrimPrefix(d.url, "http://"), d.args...).attach(t, 60*time.Second)
}

// waitReady polls GET /readyz until it answers 200.
func waitReady(t testing.TB, d *daemon, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := "no answer"
	for {
		st, _, body, err := httpDo(d, "", "GET", "/readyz", nil, 3*time.Second)
		if err == nil && st == 200 {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d %s", st, body)
		}
		select {
		case <-d.done:
			t.Fatalf("daemon %s exited: %s", d.repo, d.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s (last /readyz: %s)\nlog:\n%s", d.url, within, last, tail(d.logs(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// pause stops the process (SIGSTOP); resume continues it (SIGCONT).
func (d *daemon) pause() {
	select {
	case <-d.done:
	default:
		d.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

func (d *daemon) resume() {
	select {
	case <-d.done:
	default:
		d.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// httpDo sends one request with a client timeout and returns the status,
// headers and body, or the transport error.
func httpDo(d *daemon, key, method, path string, body any, timeout time.Duration, headers ...string) (int, http.Header, []byte, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	case io.Reader:
		r = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return 0, nil, nil, err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, d.url+path, r)
	if err != nil {
		return 0, nil, nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{Timeout: timeout}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, resp.Header, data, err
	}
	return resp.StatusCode, resp.Header, data, nil
}

// peerIDOf is the node's libp2p peer id.
func peerIDOf(t testing.TB, d *daemon) string {
	t.Helper()
	var info struct {
		PeerID string `json:"peer_id"`
	}
	d.call(t, "GET", "/v1/node", nil, 200, &info)
	return info.PeerID
}

// newMesh3 starts a node and joins two more with invite tickets, each on
// a fixed mesh port, and waits until every node sees three reachable
// voters and one leader.
func newMesh3(owner *testing.T, extra ...string) (a, b, c *daemon) {
	owner.Helper()
	return newMesh3Bin(owner, binary, extra...)
}

// newMesh3Bin is newMesh3 with another binary (a test build).
func newMesh3Bin(owner *testing.T, bin string, extra ...string) (a, b, c *daemon) {
	owner.Helper()
	return newMesh3In(owner, bin, nil, extra...)
}

// newMesh3In is newMesh3Bin with each node in a network namespace of its
// own (nets; nil: all on the test's loopback).
func newMesh3In(owner *testing.T, bin string, nets []netNode, extra ...string) (a, b, c *daemon) {
	owner.Helper()
	where := func(i int) (ns, api, listen string) {
		if nets == nil {
			return "", "127.0.0.1:0", p2pListen(owner)
		}
		return nets[i].ns, nets[i].ip + ":7480", "/ip4/" + nets[i].ip + "/tcp/4001"
	}
	launch := func(ns, repo, apiAddr string, args ...string) *daemon {
		return spawnBin(owner, bin, ns, repo, apiAddr, args...).attach(owner, 60*time.Second)
	}
	ns, api, listen := where(0)
	a = launch(ns, owner.TempDir(), api, append([]string{"--listen", listen}, extra...)...)
	waitReady(owner, a, 60*time.Second)
	join := func(i int) *daemon {
		repo := owner.TempDir()
		ns, api, listen := where(i)
		ticket := strings.TrimSpace(a.cli(owner, "mesh", "invite", "--expires", "10m"))
		cmd := inNS(ns, bin, "init", "--join", ticket, "--listen", listen)
		cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
		if out, err := cmd.CombinedOutput(); err != nil {
			owner.Fatalf("artmesh init --join: %v\n%s", err, out)
		}
		d := launch(ns, repo, api, append([]string{"--listen", listen}, extra...)...)
		waitReady(owner, d, 60*time.Second)
		return d
	}
	b = join(1)
	c = join(2)
	waitMeshOf3(owner, a, b, c)
	return a, b, c
}

// inNS is exec.Command run in network namespace ns ("": here).
func inNS(ns, bin string, args ...string) *exec.Cmd {
	if ns == "" {
		return exec.Command(bin, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
}

// waitMeshOf3 waits until each node sees three voters and the same one
// leader, and the leader reaches all three (followers need not be
// connected to each other).
func waitMeshOf3(t testing.TB, ds ...*daemon) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		leaders := map[string]bool{}
		good := true
		var last string
		for _, d := range ds {
			var ms struct {
				Items []struct {
					memberInfo
					APIURL string `json:"api_url"`
				} `json:"items"`
			}
			st, _, body, err := httpDo(d, d.key, "GET", "/v1/mesh/members", nil, 5*time.Second)
			if err != nil || st != 200 || json.Unmarshal(body, &ms) != nil {
				good = false
				last = fmt.Sprintf("%s: %d %s %v", d.url, st, body, err)
				continue
			}
			voters, reachable, leader := 0, 0, ""
			for _, m := range ms.Items {
				if m.Role == "voter" {
					voters++
				}
				if m.Reachable {
					reachable++
				}
				if m.Leader {
					if leader != "" {
						good = false
					}
					leader = m.PeerID
				}
			}
			self := false
			for _, m := range ms.Items {
				self = self || (m.Leader && m.APIURL == d.url)
			}
			if voters != 3 || leader == "" || (self && reachable != 3) {
				good = false
				last = fmt.Sprintf("%s: %s", d.url, body)
			}
			leaders[leader] = true
		}
		if good && len(leaders) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mesh did not settle within 30s: leaders seen %v; last: %s", keysOf(leaders), last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// patternBytes is the patterned stream of n bytes with seed, in memory.
func patternBytes(n int64, seed uint64) []byte {
	b := make([]byte, n)
	io.ReadFull(&patterned{n: n, seed: seed}, b)
	return b
}

// blob is an acknowledged artifact and the bytes of its current version.
type blob struct {
	art  artifact
	data []byte
	via  string // the node it was created through
}

// createBlob creates an artifact of n patterned bytes through d as key,
// requiring 201.
func createBlob(t testing.TB, d *daemon, key, name string, n int64, seed uint64, via string) blob {
	t.Helper()
	data := patternBytes(n, seed)
	var a artifact
	d.callAs(t, key, "POST", "/v1/artifacts?name="+name, data, 201, &a, "Content-Type", "application/octet-stream")
	if a.SizeBytes != n || a.ID == "" {
		t.Fatalf("create %s answered %+v", name, a)
	}
	return blob{art: a, data: data, via: via}
}

// setFactor1 sets the mesh's replication factor to 1 (admin), so that an
// artifact created through a node lives only there. The route is being
// added; until it exists this records a failure and the test goes on.
func setFactor1(t testing.TB, d *daemon) {
	t.Helper()
	st, _, body, err := httpDo(d, d.key, "PUT", "/v1/mesh/policy", map[string]any{"replication_factor": 1}, 10*time.Second)
	if err != nil {
		t.Fatalf("PUT /v1/mesh/policy: %v", err)
	}
	var p struct {
		ReplicationFactor int `json:"replication_factor"`
	}
	if st != 200 || json.Unmarshal(body, &p) != nil || p.ReplicationFactor != 1 {
		t.Errorf("PUT /v1/mesh/policy {\"replication_factor\": 1}: %d %s, want 200 with replication_factor 1", st, body)
	}
}

// downloadExact GETs the artifact's current content from d as key with a
// client timeout and checks status 200 and identical bytes.
func downloadExact(t testing.TB, d *daemon, key string, b blob, timeout time.Duration, where string) bool {
	t.Helper()
	st, _, body, err := httpDo(d, key, "GET", "/v1/artifacts/"+b.art.ID+"/content", nil, timeout)
	if err != nil {
		t.Errorf("%s: GET %s/content (%s, created through %s): %v", where, b.art.ID, b.art.Name, b.via, err)
		return false
	}
	if st != 200 || !bytes.Equal(body, b.data) {
		t.Errorf("%s: GET %s/content (%s, created through %s): %d, %d bytes, identical %v; want 200 with the %d bytes created: %s",
			where, b.art.ID, b.art.Name, b.via, st, len(body), bytes.Equal(body, b.data), len(b.data), short(body))
		return false
	}
	return true
}

// short is body for a message: JSON as is, bytes as a count.
func short(body []byte) string {
	if len(body) > 0 && body[0] == '{' && len(body) < 2000 {
		return strings.TrimSpace(string(body))
	}
	if len(body) > 200 {
		return fmt.Sprintf("(%d bytes)", len(body))
	}
	return fmt.Sprintf("%q", body)
}

// listByName lists key's artifacts named name on d (consistent when asked)
// and returns the page, requiring 200.
func listByName(t testing.TB, d *daemon, key, name string, consistent bool) artifactPage {
	t.Helper()
	return listPage(t, d, key, "/v1/artifacts?limit=1000&name="+name, consistent)
}

// listAll lists all of key's artifacts on d.
func listAll(t testing.TB, d *daemon, key string, consistent bool) artifactPage {
	t.Helper()
	return listPage(t, d, key, "/v1/artifacts?limit=1000", consistent)
}

func listPage(t testing.TB, d *daemon, key, path string, consistent bool) artifactPage {
	t.Helper()
	if consistent {
		path += "&consistent=true"
	}
	st, _, body, err := httpDo(d, key, "GET", path, nil, 20*time.Second)
	if err != nil {
		t.Fatalf("%s GET %s: %v", d.url, path, err)
	}
	var p artifactPage
	if st != 200 || json.Unmarshal(body, &p) != nil {
		t.Fatalf("%s GET %s: %d %s, want 200", d.url, path, st, body)
	}
	return p
}

// killAll sends SIGKILL to every daemon at once, then waits for them.
func killAll(ds ...*daemon) {
	for _, d := range ds {
		d.resume()
		d.cmd.Process.Kill()
	}
	for _, d := range ds {
		<-d.done
	}
}
