// Command bench measures this machine's ceilings and an artmesh node
// against them, in one run, and prints the figures and ratios the issues
// ask for. It builds and runs the real binary as a separate process on
// 127.0.0.1, and talks to it over HTTP only. Run it with `make bench`.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/artmesh/artmesh/acl"
)

func main() {
	size := flag.Int64("size", 1<<30, "bytes of the large file to ingest and download")
	listN := flag.Int("list-artifacts", 100_000, "artifacts to create for the listing benchmark")
	flag.BoolVar(&meshBench, "mesh", true, "also measure a mesh of several nodes")
	flag.BoolVar(&fanoutOnly, "fanout-only", false, "measure only the fan-out under capped links")
	flag.BoolVar(&meshOnly, "mesh-only", false, "measure only the mesh (transfers, replication, fan-out)")
	keepupDefault := 5 * time.Minute
	if v, err := time.ParseDuration(os.Getenv("BENCH_KEEPUP")); err == nil {
		keepupDefault = v
	}
	flag.DurationVar(&keepup.duration, "keepup", keepupDefault, "how long the keep-up scenario writes (0: skip it; env BENCH_KEEPUP)")
	flag.Float64Var(&keepup.rate, "keepup-rate", 50, "creates per second of the keep-up scenario")
	flag.BoolVar(&keepupOnly, "keepup-only", false, "measure only the keep-up scenario (replication under a mixed write load)")
	scaleDefault := defaultScale
	if env := os.Getenv("SCALE"); env != "" {
		v, err := strconv.Atoi(env)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: SCALE=%q: want a whole number of artifacts, such as 1000000\n", env)
			os.Exit(2)
		}
		scaleDefault = v
	}
	flag.IntVar(&scale.artifacts, "scale", scaleDefault, "snippets the scale section creates on one node (0: skip it; env SCALE)")
	flag.BoolVar(&scaleOnly, "scale-only", false, "measure only the scale section (one node holding many artifacts)")
	flag.IntVar(&scale.pprof, "scale-pprof", 0, "with a port P: the scale node serves --pprof on P, and CPU profiles of the first and last tenth of its creates are saved")
	flag.StringVar(&scale.profiles, "scale-profiles", "", "folder for the scale section's CPU profiles (default: the system's temporary folder)")
	flag.IntVar(&wide.nodes, "wide", 0, "measure only the wide section, with this many nodes in one mesh (make bench-wide: env WIDE, default 30)")
	flag.DurationVar(&wide.idle, "wide-idle", 30*time.Second, "the wide section's idle window")
	flag.DurationVar(&wide.creates, "wide-creates", 20*time.Second, "how long the wide section's clients create, on each mesh (0: only the idle figures)")
	flag.DurationVar(&wide.churn, "wide-churn", 0, "how long the wide section kills and restarts 10 % of its followers (0: no churn)")
	flag.IntVar(&wide.pprof, "wide-pprof", 0, "with a port P: the wide mesh's first node serves --pprof on P and its last on P+1, and CPU profiles of the idle window are saved")
	flag.StringVar(&wide.profiles, "wide-profiles", "", "folder for the wide section's CPU profiles (default: the system's temporary folder)")
	flag.Parse()
	scale.clients, scale.lists, scale.metrics = 16, 200, 10
	wide.clients = 8
	keepup.nodes, keepup.drain = 5, 60*time.Second
	if err := run(*size, *listN); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// meshBench says whether to measure the mesh too; fanoutOnly, whether
// to measure the fan-out alone.
var meshBench, fanoutOnly, meshOnly, keepupOnly, scaleOnly bool

// scale is the scale section's settings.
var scale scaleConfig

// keepup is the keep-up scenario's settings.
var keepup keepupConfig

// wide is the wide section's settings.
var wide wideConfig

// deadHolderAfter is the bench daemons' --dead-holder-after: short, so
// that repair starts soon after a holder is killed.
const deadHolderAfter = 3 * time.Second

type result struct {
	name, figure, target string
}

var results []result

func report(name, figure, target string) {
	results = append(results, result{name, figure, target})
	fmt.Printf("%-58s %-34s %s\n", name, figure, target)
}

func run(size int64, listN int) error {
	work, err := os.MkdirTemp("", "artmesh-bench")
	if err != nil {
		return err
	}
	if os.Getenv("BENCH_KEEP") == "" {
		defer os.RemoveAll(work)
	} else {
		fmt.Println("keeping the bench's folder (BENCH_KEEP):", work)
	}
	bin := os.Getenv("BENCH_BIN") // a binary built before, to compare with
	if bin == "" {
		bin = filepath.Join(work, "artmesh")
		build := exec.Command("go", "build", "-o", bin, "./cmd/artmesh")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build: %w", err)
		}
	} else {
		fmt.Println("measuring the binary in BENCH_BIN:", bin)
	}
	if fanoutOnly {
		return benchFanout(bin, work)
	}
	if keepupOnly {
		return benchKeepup(bin, work, keepup)
	}
	if scaleOnly {
		return benchScale(context.Background(), bin, work, scale)
	}
	if wide.nodes > 0 {
		return benchWide(context.Background(), bin, work, wide)
	}
	fmt.Printf("artmesh bench: %d-byte file, %d artifacts for listing; figures measured now, on this machine\n\n", size, listN)

	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		return err
	}
	if meshOnly {
		if err := benchMesh(bin, work, size, data); err != nil {
			return err
		}
		return benchFanout(bin, work)
	}

	// The machine's ceilings.
	shaRate := measureSHA256(data)
	report("sha256, one core", gbps(shaRate), "")
	diskRate, err := measureWriteFsync(filepath.Join(work, "fsync-probe"), data)
	if err != nil {
		return err
	}
	report("write+fsync of the file to the repo's disk", gbps(diskRate), "")
	ceiling := min(shaRate, diskRate)
	report("ingest ceiling = min(sha256, write+fsync)", gbps(ceiling), "")

	repo := filepath.Join(work, "repo")
	d, err := start(bin, repo)
	if err != nil {
		return err
	}
	defer d.stop()

	// Ingest, durable, through the HTTP API.
	t0 := time.Now()
	var a struct {
		ID string `json:"id"`
	}
	if err := d.post("/v1/artifacts?name=big.bin", bytes.NewReader(data), "application/octet-stream", &a); err != nil {
		return err
	}
	ingest := float64(size) / time.Since(t0).Seconds()
	rss := d.peakRSS()
	report("ingest through the HTTP API (durable)", fmt.Sprintf("%s = %.2f x ceiling", gbps(ingest), ingest/ceiling), ">= 0.5 x ceiling")
	report("daemon peak RSS while ingesting", fmt.Sprintf("%.0f MiB", float64(rss)/(1<<20)), "< 200 MiB")

	// Downloads with a warm page cache, through /content and through a
	// signed URL (no API key), interleaved so that neither gets a warmer
	// machine than the other; best of 3 each.
	var su struct {
		URL string `json:"url"`
	}
	if err := d.post("/v1/artifacts/"+a.ID+"/signed-url", strings.NewReader(`{"expires_in": 3600}`), "application/json", &su); err != nil {
		return err
	}
	capPath := strings.TrimPrefix(su.URL, d.url)
	var dl, capRate float64
	for i := 0; i < 4; i++ {
		order := []string{"/v1/artifacts/" + a.ID + "/content", capPath}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, p := range order {
			t0 = time.Now()
			n, err := d.download(p)
			if err != nil {
				return err
			}
			if n != size {
				return fmt.Errorf("downloaded %d bytes of %d", n, size)
			}
			rate := float64(size) / time.Since(t0).Seconds()
			if p == capPath {
				capRate = max(capRate, rate)
			} else {
				dl = max(dl, rate)
			}
		}
	}
	report("download through the HTTP API (warm cache, best of 4)", gbps(dl), ">= 1.0 GB/s")
	if err := benchReadChecks(d, work, repo, "/v1/artifacts/"+a.ID+"/content", size, dl); err != nil {
		return err
	}
	report("download through /v1/cap/{token} (best of 4, alternating)", fmt.Sprintf("%s = %.2f x /content", gbps(capRate), capRate/dl), "within 5% of /content")
	report("token verifications, one core", fmt.Sprintf("%.0f /s", measureVerify()), "")

	// Snippet creates.
	snippet := func() []byte {
		pad := strings.Repeat("x", 1000)
		b, _ := json.Marshal(map[string]any{"name": "s.json", "content": map[string]any{"pad": pad}, "metadata": map[string]any{"k": "v"}})
		return b
	}()
	lat, err := d.snippets(1, 500, snippet)
	if err != nil {
		return err
	}
	report("snippet create (1 KiB JSON), one client", fmt.Sprintf("p50 %s, p99 %s", pct(lat, 50), pct(lat, 99)), "")
	t0 = time.Now()
	const burst = 8000
	if _, err := d.snippets(16, burst, snippet); err != nil {
		return err
	}
	rate := burst / time.Since(t0).Seconds()
	report("snippet creates, 16 concurrent clients", fmt.Sprintf("%.0f creates/s", rate), ">= 2,000 creates/s")

	// Listing with a metadata filter and paging over many artifacts.
	if err := d.fill(listN); err != nil {
		return err
	}
	// Ten buckets, 20 pages of each by cursor.
	var listLat []time.Duration
	for bucket := 0; bucket < 10; bucket++ {
		cursor := ""
		for i := 0; i < 20; i++ {
			t0 := time.Now()
			var page struct {
				Items      []json.RawMessage `json:"items"`
				NextCursor string            `json:"next_cursor"`
			}
			if err := d.get(fmt.Sprintf("/v1/artifacts?metadata.bucket=%d&limit=50&cursor=%s", bucket, url.QueryEscape(cursor)), &page); err != nil {
				return err
			}
			listLat = append(listLat, time.Since(t0))
			if len(page.Items) != 50 || page.NextCursor == "" {
				return fmt.Errorf("metadata filter page %d of bucket %d: %d items, cursor %q; want 50 and a cursor", i, bucket, len(page.Items), page.NextCursor)
			}
			cursor = page.NextCursor
		}
	}
	report(fmt.Sprintf("list, metadata filter (1 in 10), cursor paging, %d artifacts", listN), fmt.Sprintf("p50 %s, p99 %s", pct(listLat, 50), pct(listLat, 99)), "p50 < 20 ms")

	if meshBench {
		d.stop() // the mesh gets fresh nodes of its own, on a quiet machine
		if err := benchMesh(bin, work, size, data); err != nil {
			return err
		}
		if err := benchFanout(bin, work); err != nil {
			return err
		}
		if keepup.duration > 0 {
			if err := benchKeepup(bin, work, keepup); err != nil {
				return err
			}
		}
	}

	if scale.artifacts > 0 {
		d.stop() // the scale section starts a fresh node of its own
		if err := benchScale(context.Background(), bin, work, scale); err != nil {
			return err
		}
	}

	fmt.Println("\ncommand: make bench (go run ./e2e/cmd/bench)")
	return nil
}

// xorAll changes every byte of b: content that shares no block with b's.
func xorAll(b []byte, k byte) {
	for i := range b {
		b[i] ^= k
	}
}

func gbps(bytesPerSec float64) string { return fmt.Sprintf("%.2f GB/s", bytesPerSec/1e9) }

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := len(s) * p / 100
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i].Round(10 * time.Microsecond)
}

// measureVerify runs token verification on one goroutine for a second.
func measureVerify() float64 {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	tok, err := acl.Mint(acl.Claims{ID: acl.NewTokenID(), Action: acl.ActionRead, Agent: "bench", Target: "art_01JD0000000000000000000000", NotBefore: now, Expires: now.Add(time.Hour)}, key)
	if err != nil {
		panic(err)
	}
	issuer := acl.PeerIDFromPublicKey(key.Public().(ed25519.PublicKey))
	opts := acl.VerifyOptions{Now: now, IsMember: func(s string) bool { return s == issuer }, Revoked: func(acl.TokenID) bool { return false }}
	n := 0
	t0 := time.Now()
	for time.Since(t0) < time.Second {
		if _, err := acl.Verify(tok, opts); err != nil {
			panic(err)
		}
		n++
	}
	return float64(n) / time.Since(t0).Seconds()
}

func measureSHA256(data []byte) float64 {
	h := sha256.New()
	t0 := time.Now()
	h.Write(data)
	h.Sum(nil)
	return float64(len(data)) / time.Since(t0).Seconds()
}

func measureWriteFsync(path string, data []byte) (float64, error) {
	defer os.Remove(path)
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	t0 := time.Now()
	for off := 0; off < len(data); off += 1 << 20 {
		if _, err := f.Write(data[off:min(off+1<<20, len(data))]); err != nil {
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return float64(len(data)) / time.Since(t0).Seconds(), nil
}

// node is the daemon under test.
type node struct {
	cmd  *exec.Cmd
	url  string
	key  string
	done chan struct{}
}

func start(bin, repo string) (*node, error) {
	return startWith(bin, repo, "")
}

// join initialises repo with a ticket from inviter and starts the node.
func join(bin, repo string, inviter *node) (*node, error) {
	return joinLevel(bin, repo, inviter, "error")
}

func startWith(bin, repo, key string) (*node, error) {
	return startLevel(bin, repo, key, "error")
}

// joinLevel is join with the daemon's log level.
func joinLevel(bin, repo string, inviter *node, level string) (*node, error) {
	return joinWait(bin, repo, inviter, level, 30*time.Second)
}

// joinWait is joinLevel that waits up to wait for the daemon's API; extra
// are more daemon flags.
func joinWait(bin, repo string, inviter *node, level string, wait time.Duration, extra ...string) (*node, error) {
	var inv struct {
		Ticket string `json:"ticket"`
	}
	if err := inviter.post("/v1/mesh/invites", strings.NewReader(`{"expires_in": 600}`), "application/json", &inv); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "init", "--join", inv.Ticket, "--listen", "/ip4/127.0.0.1/tcp/0")
	cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("init --join: %v: %s", err, out)
	}
	return startWait(bin, repo, inviter.key, level, wait, extra...)
}

// startLevel starts a daemon on repo that logs at level to repo.log.
func startLevel(bin, repo, key, level string) (*node, error) {
	return startWait(bin, repo, key, level, 30*time.Second)
}

// startWait is startLevel that waits up to wait for the daemon to write
// the address its API listens on. It returns once the API listens, not
// once the node is ready. extra are more daemon flags.
func startWait(bin, repo, key, level string, wait time.Duration, extra ...string) (*node, error) {
	// A daemon killed with SIGKILL leaves its api.addr behind, naming a
	// port nothing listens on any more.
	if err := os.Remove(filepath.Join(repo, "api.addr")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	args := []string{"daemon", "--init", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--log-level", level,
		"--dead-holder-after", deadHolderAfter.String()}
	// More flags for every daemon, such as --eager-copy-max 0 to measure
	// repair alone.
	args = append(args, strings.Fields(os.Getenv("BENCH_DAEMON_ARGS"))...)
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
	logf, err := os.Create(repo + ".log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &node{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(n.done) }()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		select {
		case <-n.done:
			return nil, fmt.Errorf("the daemon on %s exited at start (%v); see %s.log", repo, cmd.ProcessState, repo)
		default:
		}
		addr, err := os.ReadFile(filepath.Join(repo, "api.addr"))
		if err == nil && len(bytes.TrimSpace(addr)) > 0 {
			n.url = "http://" + strings.TrimSpace(string(addr))
			n.key = key
			if key == "" {
				k, err := os.ReadFile(filepath.Join(repo, "api.key"))
				if err != nil {
					return nil, err
				}
				n.key = strings.TrimSpace(string(k))
			}
			return n, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.stop()
	return nil, errors.New("daemon did not start")
}

func (n *node) stop() {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(20 * time.Second):
		n.cmd.Process.Kill()
	}
}

// peakRSS is the daemon's high-water resident set size.
func (n *node) peakRSS() int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	return -1
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}

func (n *node) req(method, path string, body io.Reader, ct string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(context.Background(), method, n.url+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+n.key)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	return client.Do(req)
}

func (n *node) post(path string, body io.Reader, ct string, out any) error {
	resp, err := n.req("POST", path, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (n *node) get(path string, out any) error {
	resp, err := n.req("GET", path, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

func (n *node) download(path string) (int64, error) {
	resp, err := n.req("GET", path, nil, "")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("GET %s: %d", path, resp.StatusCode)
	}
	buf := make([]byte, 1<<20)
	return io.CopyBuffer(io.Discard, resp.Body, buf)
}

// snippets creates total snippets from clients concurrent clients and
// returns each create's latency.
func (n *node) snippets(clients, total int, body []byte) ([]time.Duration, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				t0 := time.Now()
				err := n.post("/v1/snippets", bytes.NewReader(body), "application/json", nil)
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return lat, firstErr
}

// fill creates count small artifacts with metadata {"i": n, "bucket": n%10}.
func (n *node) fill(count int) error {
	t0 := time.Now()
	var next atomic.Int64
	errc := make(chan error, 16)
	var wg sync.WaitGroup
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(count) {
					return
				}
				b, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("item-%d", i), "content": i, "metadata": map[string]any{"i": i, "bucket": i % 10, "year": 2025}})
				if err := n.post("/v1/snippets", bytes.NewReader(b), "application/json", nil); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	fmt.Printf("(created %d artifacts for the listing benchmark in %s)\n", count, time.Since(t0).Round(time.Millisecond))
	return nil
}

// benchMesh joins nodes to a, measures one raw libp2p stream between two
// of them, then the download on B of content only A holds, the latency of
// creates on a follower, and four nodes fetching one artifact at once.
func benchMesh(bin, work string, size int64, data []byte) error {
	a, err := start(bin, filepath.Join(work, "repo-a"))
	if err != nil {
		return err
	}
	defer a.stop()
	data[0] ^= 0xff // not the blocks the first node stored
	// One copy per version while the transfer figures are taken, so that
	// no background replication shares the wire; the replication figures
	// at the end set their own.
	if err := a.put("/v1/mesh/policy", `{"replication_factor": 1, "write_replicas": 1}`); err != nil {
		return err
	}
	var big struct {
		ID string `json:"id"`
	}
	if err := a.post("/v1/artifacts?name=big.bin", bytes.NewReader(data), "application/octet-stream", &big); err != nil {
		return err
	}
	bigID := big.ID
	b, err := join(bin, filepath.Join(work, "repo-b"), a)
	if err != nil {
		return err
	}
	defer b.stop()
	var info struct {
		PeerID string `json:"peer_id"`
	}
	if err := a.get("/v1/node", &info); err != nil {
		return err
	}
	var raw struct {
		BytesPerSecond float64 `json:"bytes_per_second"`
	}
	// A node that joined a moment ago may not admit the other yet (it
	// answers 503 until it has caught up): ask again for a while.
	body := fmt.Sprintf(`{"peer_id": %q, "bytes": %d}`, info.PeerID, size)
	for attempt := 0; raw.BytesPerSecond == 0; attempt++ {
		resp, err := b.req("POST", "/v1/mesh/stream-bench", strings.NewReader(body), "application/json")
		if err != nil {
			return err
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(data, &raw); err != nil {
				return fmt.Errorf("stream bench: %w", err)
			}
		}
		if raw.BytesPerSecond == 0 {
			if attempt == 20 {
				return fmt.Errorf("stream bench: %d %s", resp.StatusCode, data)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	report("one raw libp2p stream, A to B (TCP, TLS, yamux, no PSK)", gbps(raw.BytesPerSecond), "")
	if err := b.get("/v1/artifacts?limit=1&consistent=true", new(json.RawMessage)); err != nil {
		return err
	}
	// Written content still on its way to disk would share the CPU and
	// the disk with the transfer: flush it first, here and below.
	syscall.Sync()
	t0 := time.Now()
	n, err := b.download("/v1/artifacts/" + bigID + "/content")
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("the second node downloaded %d of %d bytes", n, size)
	}
	fetch := float64(size) / time.Since(t0).Seconds()
	report("download on B of a file only A holds", fmt.Sprintf("%s = %.2f x raw stream", gbps(fetch), fetch/raw.BytesPerSecond), ">= 0.5 x raw stream (moonshot 0.7)")

	c, err := join(bin, filepath.Join(work, "repo-c"), a)
	if err != nil {
		return err
	}
	defer c.stop()
	snippet := []byte(`{"name": "s.json", "content": {"k": "v"}}`)
	lat, err := b.snippets(1, 300, snippet)
	if err != nil {
		return err
	}
	report("create on a follower of a 3-voter mesh, one client", fmt.Sprintf("p50 %s, p99 %s", pct(lat, 50), pct(lat, 99)), "")

	// The same download with two holders: new content on A, pinned on C
	// (which then holds it too), downloaded on a fresh node D, whose
	// store, like B's before its download, holds nothing yet (B's cache
	// would be collected down to its budget during a second download).
	xorAll(data, 0xa5)
	var two struct {
		ID string `json:"id"`
	}
	err = a.post("/v1/artifacts?name=two.bin", bytes.NewReader(data), "application/octet-stream", &two)
	xorAll(data, 0xa5)
	if err != nil {
		return err
	}
	// Both pin it: with a factor of 1, a second holder would otherwise
	// let the first give its copy up.
	if _, err := pinAll([]*node{a, c}, two.ID); err != nil {
		return err
	}
	d4, err := join(bin, filepath.Join(work, "repo-d"), a)
	if err != nil {
		return err
	}
	defer d4.stop()
	if err := d4.get("/v1/artifacts?limit=1&consistent=true", new(json.RawMessage)); err != nil {
		return err
	}
	syscall.Sync()
	t0 = time.Now()
	if n, err = d4.download("/v1/artifacts/" + two.ID + "/content"); err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("the fourth node downloaded %d of %d bytes", n, size)
	}
	fetch2 := float64(size) / time.Since(t0).Seconds()
	report("the same download on D, two holders (A and C)", fmt.Sprintf("%s = %.2f x one holder", gbps(fetch2), fetch2/fetch), "> 1 x one holder")

	e5, err := join(bin, filepath.Join(work, "repo-e"), a)
	if err != nil {
		return err
	}
	defer e5.stop()
	const share = 256 << 20
	var shared struct {
		ID string `json:"id"`
	}
	if err := a.post("/v1/artifacts?name=shared.bin", bytes.NewReader(data[size-share:]), "application/octet-stream", &shared); err != nil {
		return err
	}
	fetchers := []*node{b, c, d4, e5}
	for _, x := range fetchers {
		if err := x.get("/v1/artifacts?limit=1&consistent=true", new(json.RawMessage)); err != nil {
			return err
		}
	}
	t0 = time.Now()
	errc := make(chan error, 4)
	for _, x := range fetchers {
		go func(x *node) {
			n, err := x.download("/v1/artifacts/" + shared.ID + "/content")
			if err == nil && n != share {
				err = fmt.Errorf("got %d of %d bytes", n, share)
			}
			errc <- err
		}(x)
	}
	for range fetchers {
		if err := <-errc; err != nil {
			return err
		}
	}
	took := time.Since(t0)
	report("4 nodes fetch one 256 MiB artifact from A at once", fmt.Sprintf("%s for all (%s together)", took.Round(time.Millisecond), gbps(4*float64(share)/took.Seconds())), "")
	return benchReplication(a, []*node{a, b, c, d4, e5}, size, data)
}

// benchReplication measures a create that waits for one and for two
// durable copies, and how fast a lost copy is rebuilt.
func benchReplication(a *node, all []*node, size int64, data []byte) error {
	create := func(replicas int, variant byte) (string, float64, error) {
		data[1] = variant // content no node stored yet
		var art struct {
			ID string `json:"id"`
		}
		t0 := time.Now()
		err := a.post(fmt.Sprintf("/v1/artifacts?name=r%d.bin&replicas=%d", replicas, replicas), bytes.NewReader(data), "application/octet-stream", &art)
		return art.ID, float64(size) / time.Since(t0).Seconds(), err
	}
	_, r1, err := create(1, 0x11)
	if err != nil {
		return err
	}
	id2, r2, err := create(2, 0x22)
	if err != nil {
		return err
	}
	report("create of the large file, replicas=1 (the node's own disk)", gbps(r1), "")
	report("create of the large file, replicas=2 (a second member too)", fmt.Sprintf("%s = %.2f x replicas=1", gbps(r2), r2/r1), ">= 0.6 x replicas=1")

	// Repair: the policy asks for 2 copies; kill the holder that is not
	// A and time the new copy.
	if err := a.put("/v1/mesh/policy", `{"replication_factor": 2, "write_replicas": 1}`); err != nil {
		return err
	}
	var pl struct {
		Items []struct {
			Holders   []string `json:"holders"`
			Allocated []string `json:"allocated"`
		} `json:"items"`
	}
	if err := a.get("/v1/artifacts/"+id2+"/placement", &pl); err != nil {
		return err
	}
	self := peerOf(a)
	var victim *node
	var victimID string
	for _, n := range all {
		if id := peerOf(n); id != self && slices.Contains(pl.Items[0].Holders, id) {
			victim, victimID = n, id
		}
	}
	if victim == nil {
		return fmt.Errorf("no second holder of the replicas=2 create: %+v", pl.Items)
	}
	victim.cmd.Process.Kill()
	<-victim.done
	killed := time.Now()
	var started, done time.Time
	for time.Since(killed) < 5*time.Minute {
		if err := a.get("/v1/artifacts/"+id2+"/placement", &pl); err != nil {
			return err
		}
		p := pl.Items[0]
		var fresh string
		for _, x := range p.Allocated {
			if x != self && x != victimID {
				fresh = x
			}
		}
		if fresh != "" && started.IsZero() {
			started = time.Now()
		}
		if fresh != "" && slices.Contains(p.Holders, fresh) {
			done = time.Now()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if done.IsZero() {
		return fmt.Errorf("the lost copy was not rebuilt within 5 minutes")
	}
	rate := float64(size) / done.Sub(started).Seconds()
	report("repair of the large file after its holder was killed", fmt.Sprintf("%.0f MB/s (%s after the kill; dead after %s)", rate/1e6, done.Sub(killed).Round(time.Millisecond), deadHolderAfter), "")
	return nil
}

// peerOf returns a node's peer id, or "" if it does not answer.
func peerOf(n *node) string {
	var info struct {
		PeerID string `json:"peer_id"`
	}
	if n.get("/v1/node", &info) != nil {
		return ""
	}
	return info.PeerID
}

// put sends a JSON body with PUT and expects 200.
// put sends a PUT and expects the status want (default 200).
func (n *node) put(path, body string, want ...int) error {
	resp, err := n.req("PUT", path, strings.NewReader(body), "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if code := append(want, 200)[0]; resp.StatusCode != code {
		return fmt.Errorf("PUT %s: %d %s", path, resp.StatusCode, data)
	}
	return nil
}

// benchReadChecks measures the warm download again on the same repo with a
// test build whose block store skips its read checks (as every read did
// before blocks were checked), and reports the checked rate next to it:
// it must stay at least 0.8 x the unchecked one. d is stopped and started
// again on repo.
func benchReadChecks(d *node, work, repo, path string, size int64, checked float64) error {
	bin := filepath.Join(work, "artmesh-nochecks")
	build := exec.Command("go", "build", "-tags", "artmeshtest", "-o", bin, "./cmd/artmesh")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build the test binary: %w", err)
	}
	d.stop()
	os.Setenv("ARTMESH_TEST_NO_READ_CHECKS", "1")
	u, err := startWith(bin, repo, "")
	os.Unsetenv("ARTMESH_TEST_NO_READ_CHECKS")
	if err != nil {
		return err
	}
	var unchecked float64
	for range 4 {
		t0 := time.Now()
		n, err := u.download(path)
		if err != nil {
			u.stop()
			return err
		}
		if n != size {
			u.stop()
			return fmt.Errorf("downloaded %d bytes of %d", n, size)
		}
		unchecked = max(unchecked, float64(size)/time.Since(t0).Seconds())
	}
	u.stop()
	report("the same download, no read checks (as before them)", gbps(unchecked), "")
	report("download with every read checked (CRC-32C per block)", fmt.Sprintf("%s = %.2f x unchecked", gbps(checked), checked/unchecked), ">= 0.8 x unchecked")
	nd, err := start(bin[:len(bin)-len("-nochecks")], repo)
	if err != nil {
		return err
	}
	*d = *nd
	return nil
}
