package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// joinDaemonArgs is joinDaemon with extra daemon flags.
func joinDaemonArgs(t *testing.T, inviter *daemon, repo string, args ...string) *daemon {
	t.Helper()
	// Only a mesh admin invites: the inviter's key, which is its repo's
	// own for the first node and a mesh admin's once a test set one.
	ticket := strings.TrimSpace(inviter.cliAs(t, inviter.key, "mesh", "invite", "--expires", "10m"))
	cmd := exec.Command(binary, "init", "--join", ticket, "--listen", "/ip4/127.0.0.1/tcp/0")
	cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("artmesh init --join: %v\n%s", err, out)
	}
	return startDaemonArgs(t, repo, "127.0.0.1:0", args...)
}

// meshOf starts a first node and joins n-1 more, each with args.
func meshOf(t *testing.T, n int, args ...string) []*daemon {
	t.Helper()
	ds := []*daemon{startDaemonArgs(t, t.TempDir(), "127.0.0.1:0", args...)}
	for len(ds) < n {
		ds = append(ds, joinDaemonArgs(t, ds[0], t.TempDir(), args...))
	}
	// Every node, not only the first: a test may write with replicas=n
	// through any of them (TestOutageRecovery failed once when the second
	// node did not reach the third yet).
	waitFor(t, 30*time.Second, "every node is ready and reaches every member", func() bool {
		for _, d := range ds {
			if code, _ := d.status(t, "", "GET", "/readyz", nil); code != 200 {
				return false
			}
			var ms struct {
				Items []memberInfo `json:"items"`
			}
			if code, data := d.status(t, d.key, "GET", "/v1/mesh/members", nil); code != 200 || json.Unmarshal(data, &ms) != nil {
				return false
			}
			reach := 0
			for _, m := range ms.Items {
				if m.Reachable {
					reach++
				}
			}
			if reach != n {
				return false
			}
		}
		return true
	})
	shareAdmin(t, ds...)
	return ds
}

// shareAdmin makes every daemon's key one admin agent's, so that what is
// made through one node is the same agent's on all (each node's own
// admin agent is another agent).
func shareAdmin(t *testing.T, ds ...*daemon) {
	t.Helper()
	var ops struct {
		APIKey string `json:"api_key"`
	}
	ds[0].call(t, "POST", "/v1/agents", map[string]any{"id": "ops", "admin": true}, 201, &ops)
	for _, d := range ds {
		d.key = ops.APIKey
	}
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// peerID returns the daemon's peer id.
func (d *daemon) peerID(t testing.TB) string {
	t.Helper()
	var info struct {
		PeerID string `json:"peer_id"`
	}
	d.call(t, "GET", "/v1/node", nil, 200, &info)
	return info.PeerID
}

type versionPlacement struct {
	Version   int      `json:"version"`
	CID       string   `json:"cid"`
	Factor    int      `json:"factor"`
	Holders   []string `json:"holders"`
	Allocated []string `json:"allocated"`
	State     string   `json:"state"`
}

// placement returns an artifact's placement as d reports it.
func (d *daemon) placement(t testing.TB, id string) []versionPlacement {
	t.Helper()
	var p struct {
		Items []versionPlacement `json:"items"`
	}
	d.call(t, "GET", "/v1/artifacts/"+id+"/placement", nil, 200, &p)
	return p.Items
}

// contentSum downloads an artifact's content from d and returns its
// SHA-256 and the status. id may carry its own path and query
// ("ID/content?consistent=true").
func (d *daemon) contentSum(t testing.TB, id string) (int, [32]byte) {
	t.Helper()
	path := "/v1/artifacts/" + id
	if !strings.Contains(id, "/") {
		path += "/content"
	}
	resp := d.do(t, d.key, "GET", path, nil)
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		t.Fatalf("download %s from %s: %v", id, d.url, err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return resp.StatusCode, sum
}

// stat returns the daemon's block store statistics.
func (d *daemon) stat(t testing.TB) repoStat {
	t.Helper()
	var st repoStat
	d.call(t, "GET", "/v1/repo/stat", nil, 200, &st)
	return st
}

func patternDigest(seed uint64, n int64) [32]byte {
	h := sha256.New()
	io.Copy(h, &patterned{n: n, seed: seed})
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestReplicasSurviveWriterCrash: a write with replicas=2 is on two members
// when it is acknowledged; the writer dies at once; a third node reads
// identical bytes, and the mesh rebuilds the second copy on it.
func TestReplicasSurviveWriterCrash(t *testing.T) {
	ds := meshOf(t, 3, "--dead-holder-after", "5s")
	a, b, c := ds[0], ds[1], ds[2]
	const size = 30 << 20
	var art artifact
	a.call(t, "POST", "/v1/artifacts?name=weights.bin&replicas=2", &patterned{n: size, seed: 7}, 201, &art)
	a.kill()
	want := patternDigest(7, size)
	// C may not have applied the create yet, and the mesh elects a new
	// leader first: a consistent read is a 503 until it can be served.
	var code int
	var got [32]byte
	waitFor(t, 30*time.Second, "C serves the content (not 503)", func() bool {
		code, got = c.contentSum(t, art.ID+"/content?consistent=true")
		return code != 503
	})
	if code != 200 || got != want {
		t.Fatalf("download on C after the writer died: status %d, identical %v", code, got == want)
	}
	bID, cID := b.peerID(t), c.peerID(t)
	wantHolders := sortedCopy([]string{bID, cID})
	var last []versionPlacement
	waitFor(t, 120*time.Second, "B's placement shows exactly B and C holding it", func() bool {
		code, data := b.status(t, b.key, "GET", "/v1/artifacts/"+art.ID+"/placement", nil)
		if code != 200 {
			return false
		}
		var p struct {
			Items []versionPlacement `json:"items"`
		}
		if json.Unmarshal(data, &p) != nil || len(p.Items) != 1 {
			return false
		}
		last = p.Items
		return slices.Equal(sortedCopy(p.Items[0].Holders), wantHolders) && p.Items[0].State == "ok"
	})
	if last[0].Factor != 2 {
		t.Fatalf("factor %d, want 2", last[0].Factor)
	}
	// B alone can serve it too.
	if code, got := b.contentSum(t, art.ID); code != 200 || got != want {
		t.Fatalf("download on B: status %d, identical %v", code, got == want)
	}
	// Deleting it frees the bytes on both holders, the one that took the
	// replicas=2 copy included, within 10 s.
	b.call(t, "DELETE", "/v1/artifacts/"+art.ID, nil, 204, nil)
	start := time.Now()
	for _, d := range []*daemon{b, c} {
		waitFor(t, 10*time.Second-time.Since(start), "the delete frees the bytes on "+d.url, func() bool {
			return d.stat(t).Bytes < size
		})
	}
}

// TestDefaultPolicyPlacesAndDeleteFrees: a plain create reaches the
// policy's 2 holders, and a delete frees its bytes on both.
func TestDefaultPolicyPlacesAndDeleteFrees(t *testing.T) {
	ds := meshOf(t, 3)
	a := ds[0]
	const size = 8 << 20
	before := map[string]int64{}
	for _, d := range ds {
		before[d.url] = d.stat(t).Bytes
	}
	var art artifact
	a.call(t, "POST", "/v1/artifacts?name=data.bin", &patterned{n: size, seed: 11}, 201, &art)
	var holders []string
	waitFor(t, 30*time.Second, "the default policy's 2 holders", func() bool {
		p := a.placement(t, art.ID)
		holders = p[0].Holders
		return len(p) == 1 && len(p[0].Holders) == 2 && p[0].State == "ok"
	})
	byPeer := map[string]*daemon{}
	for _, d := range ds {
		byPeer[d.peerID(t)] = d
	}
	for _, h := range holders {
		d := byPeer[h]
		if got := d.stat(t).Bytes - before[d.url]; got < size {
			t.Fatalf("holder %s stores %d more bytes, want at least %d", h, got, size)
		}
	}
	a.call(t, "DELETE", "/v1/artifacts/"+art.ID, nil, 204, nil)
	start := time.Now()
	for _, h := range holders {
		d := byPeer[h]
		waitFor(t, 10*time.Second-time.Since(start), "the delete frees the bytes on holder "+h, func() bool {
			return d.stat(t).Bytes <= before[d.url]
		})
	}
}

// TestReplicasAboveMembersRefused: replicas=3 on two nodes is a 503 with
// Retry-After, and nothing is recorded or left behind.
func TestReplicasAboveMembersRefused(t *testing.T) {
	ds := meshOf(t, 2)
	a := ds[0]
	var page artifactPage
	a.call(t, "GET", "/v1/artifacts?name=too-many", nil, 200, &page)
	before := []repoStat{ds[0].stat(t), ds[1].stat(t)}
	resp := a.do(t, a.key, "POST", "/v1/artifacts?name=too-many&replicas=3", bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20)))
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || errorCode(data) != "unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("replicas=3 on 2 nodes: %d %s (Retry-After %q), want 503 unavailable with Retry-After", resp.StatusCode, data, resp.Header.Get("Retry-After"))
	}
	code, data := a.status(t, a.key, "POST", "/v1/snippets?replicas=3", map[string]any{"name": "too-many", "content": map[string]int{"a": 1}})
	if code != 503 || errorCode(data) != "unavailable" {
		t.Fatalf("snippet with replicas=3: %d %s", code, data)
	}
	a.call(t, "GET", "/v1/artifacts?name=too-many", nil, 200, &page)
	if len(page.Items) != 0 {
		t.Fatalf("%d artifacts recorded by refused writes", len(page.Items))
	}
	for i, d := range ds {
		d.call(t, "POST", "/v1/repo/gc", nil, 200, nil)
		if st := d.stat(t); st.Bytes != before[i].Bytes || st.Blocks != before[i].Blocks {
			t.Fatalf("node %d after collection: %+v, before %+v", i, st, before[i])
		}
	}
	// replicas=2 on the same mesh is fine.
	a.call(t, "POST", "/v1/snippets?replicas=2", map[string]any{"name": "two", "content": 1}, 201, nil)
}

// TestCacheBudget: a node that downloads content it is not allocated
// keeps no more of it than its cache budget.
func TestCacheBudget(t *testing.T) {
	a := startDaemon(t, t.TempDir())
	b := joinDaemon(t, a, t.TempDir())
	shareAdmin(t, a, b)
	const size = 50 << 20
	var ids []string
	for i := range 4 {
		// Two copies on A and B, made before C joins, so that the factor
		// of 2 is met without C.
		var art artifact
		a.call(t, "POST", "/v1/artifacts?name=big&replicas=2", &patterned{n: size, seed: uint64(100 + i)}, 201, &art)
		ids = append(ids, art.ID)
	}
	c := joinDaemonArgs(t, a, t.TempDir(), "--cache-size", "64MiB")
	c.key = a.key
	cID := c.peerID(t)
	for i, id := range ids {
		if code, got := c.contentSum(t, id); code != 200 || got != patternDigest(uint64(100+i), size) {
			t.Fatalf("download %d on C: status %d", i, code)
		}
	}
	for _, id := range ids {
		for _, p := range a.placement(t, id) {
			if slices.Contains(p.Allocated, cID) || slices.Contains(p.Holders, cID) {
				t.Fatalf("C was allocated %s (%+v): the test needs it to be a cache only", id, p)
			}
		}
	}
	waitFor(t, 20*time.Second, "C keeps at most 64 MiB of what it read", func() bool {
		return c.stat(t).Bytes <= 64<<20
	})
}

// TestCollectorUnderLoad: collections run all the time (after every
// delete) while creates and uploads run on three nodes and the followers
// restart; every acknowledged artifact stays fully retrievable.
func TestCollectorUnderLoad(t *testing.T) {
	ds := meshOf(t, 3, "--log-level", "info")
	type acked struct {
		id  string
		sum [32]byte
		via string
	}
	var mu sync.Mutex
	var got []acked
	var failures []string
	const ops = 200
	const workers = 8
	var restarts atomic.Int32
	stopRestarts := make(chan struct{})
	restartsDone := make(chan struct{})
	go func() {
		// Restart the followers one after the other while the load runs.
		defer close(restartsDone)
		for i := 0; ; i++ {
			select {
			case <-stopRestarts:
				return
			case <-time.After(1500 * time.Millisecond):
			}
			k := 1 + i%2
			mu.Lock()
			old := ds[k]
			mu.Unlock()
			restarts.Add(1)
			next := old.restart(t)
			next.key = old.key
			mu.Lock()
			ds[k] = next
			mu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				mu.Lock()
				d := ds[i%3]
				mu.Unlock()
				size := int64(64<<10 + (i%7)*(300<<10))
				seed := uint64(1000 + i)
				var id string
				var err error
				if i%4 == 0 {
					id, err = uploadURL(d, fmt.Sprintf("up-%d", i), size, seed)
				} else {
					id, err = createRaw(d, fmt.Sprintf("cr-%d", i), size, seed)
				}
				mu.Lock()
				if err != nil {
					failures = append(failures, err.Error())
				} else {
					got = append(got, acked{id, patternDigest(seed, size), fmt.Sprintf("job %d on %s", i, d.url)})
				}
				// Delete every fifth acknowledged artifact, so that the
				// collector has work all the time.
				if err == nil && i%5 == 0 {
					go httpDo(d, d.key, "DELETE", "/v1/artifacts/"+id, nil, 30*time.Second)
					got = got[:len(got)-1]
				}
				mu.Unlock()
			}
		}()
	}
	// Spread the writes over about 10 s, so that several restarts happen
	// while they run.
	for i := range ops {
		jobs <- i
		time.Sleep(50 * time.Millisecond)
	}
	close(jobs)
	wg.Wait()
	close(stopRestarts)
	<-restartsDone
	if len(got) < ops/2 {
		t.Fatalf("only %d of %d writes were acknowledged; failures: %v", len(got), ops, failures[:min(5, len(failures))])
	}
	for _, d := range ds {
		waitFor(t, 60*time.Second, "every node ready", func() bool {
			code, _ := d.status(t, "", "GET", "/readyz", nil)
			return code == 200
		})
		d.call(t, "POST", "/v1/repo/gc", nil, 200, nil)
	}
	// Reads right after the restarts may find a holder not yet reachable
	// (a restarted node listens on a new port until the others learn it):
	// that is a 503 to retry, never a wrong byte or a lost artifact.
	readDeadline := time.Now().Add(90 * time.Second)
	for _, a := range got {
		d := ds[0]
		code, sum := d.contentSum(t, a.id)
		for code == 503 && time.Now().Before(readDeadline) {
			time.Sleep(500 * time.Millisecond)
			code, sum = d.contentSum(t, a.id)
		}
		if code != 200 || sum != a.sum {
			for i, x := range ds {
				c, body := x.status(t, x.key, "GET", "/v1/artifacts/"+a.id+"?consistent=true", nil)
				t.Logf("node %d (%s): GET artifact: %d %s", i, x.url, c, body)
			}
			for i, x := range ds {
				t.Logf("node %d log:\n%s", i, x.logs())
			}
			t.Fatalf("acknowledged artifact %s (%s): status %d, identical %v", a.id, a.via, code, sum == a.sum)
		}
		ok := false
		for _, p := range d.placement(t, a.id) {
			ok = len(p.Holders) > 0
		}
		if !ok {
			t.Fatalf("acknowledged artifact %s has no holder", a.id)
		}
	}
	if restarts.Load() < 3 {
		t.Fatalf("only %d follower restarts happened during the load", restarts.Load())
	}
	t.Logf("%d acknowledged, %d refused, while followers restarted %d times", len(got), len(failures), restarts.Load())
}

// createRaw creates an artifact of patterned bytes on d, retrying 503s
// and broken connections (a node restarting or catching up) a few times.
func createRaw(d *daemon, name string, size int64, seed uint64) (string, error) {
	for try := 0; ; try++ {
		code, _, body, err := httpDo(d, d.key, "POST", "/v1/artifacts?name="+name, &patterned{n: size, seed: seed}, 60*time.Second)
		if err == nil && code == 201 {
			var a artifact
			err := json.Unmarshal(body, &a)
			return a.ID, err
		}
		if try == 20 || (err == nil && code != 503) {
			return "", fmt.Errorf("create %s: %v %d %s", name, err, code, body)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// uploadURL stores patterned bytes through an upload URL and confirms,
// retrying the whole exchange on 503s and broken connections.
func uploadURL(d *daemon, name string, size int64, seed uint64) (string, error) {
	for try := 0; ; try++ {
		id, retry, err := uploadOnce(d, name, size, seed)
		if err == nil || !retry || try == 20 {
			return id, err
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func uploadOnce(d *daemon, name string, size int64, seed uint64) (string, bool, error) {
	retryable := func(code int, err error) bool { return err != nil || code == 503 }
	code, _, body, err := httpDo(d, d.key, "POST", "/v1/uploads", map[string]any{"name": name, "size_bytes": size}, 30*time.Second)
	if err != nil || code != 201 {
		return "", retryable(code, err), fmt.Errorf("open upload: %v %d %s", err, code, body)
	}
	var up struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}
	if err := json.Unmarshal(body, &up); err != nil {
		return "", false, err
	}
	path := up.URL[strings.Index(up.URL, "/v1/"):]
	code, _, body, err = httpDo(d, "", "PUT", path, &patterned{n: size, seed: seed}, 60*time.Second)
	if err != nil || (code != 200 && code != 201) {
		return "", retryable(code, err), fmt.Errorf("put upload: %v %d %s", err, code, body)
	}
	code, _, body, err = httpDo(d, d.key, "POST", "/v1/uploads/"+up.ID+"/confirm", nil, 60*time.Second)
	if err != nil || code != 201 {
		return "", retryable(code, err), fmt.Errorf("confirm: %v %d %s", err, code, body)
	}
	var a artifact
	err = json.Unmarshal(body, &a)
	return a.ID, false, err
}
