package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The wide section (issue 17, "a wide mesh costs what it must"): N nodes
// on 127.0.0.1 in one mesh (3 voters, the rest nonvoters), left idle for
// a while, then writing. It measures the idle CPU of every daemon from
// /proc/PID/stat (the mesh's total, the leader's and the busiest
// follower's, each as a share of one core), every daemon's resident set,
// and creates of small snippets from concurrent clients spread over the
// nodes, next to the same creates on a 3-node mesh. With -wide-pprof the
// leader and the last node serve Go's profiling endpoints, and CPU
// profiles of the idle window are saved for `go tool pprof -top`.

// wideConfig is what a wide run does.
type wideConfig struct {
	nodes    int           // members of the wide mesh
	idle     time.Duration // the idle window
	creates  time.Duration // how long the clients create
	clients  int           // concurrent creators
	pprof    int           // first of two ports for --pprof (0: none)
	profiles string        // where the idle CPU profiles go (default: the work folder)
	churn    time.Duration // how long the churn phase runs (0: none)
}

// The acceptance targets of the wide section.
const (
	targetWideIdleCPU   = 25.0 // % of one core, the whole mesh
	targetWideRateRatio = 0.7  // wide creates/s over a 3-node mesh's
	targetWideRSS       = 150 << 20
	targetWideReady     = 15 * time.Second
)

// Bounds on the section's waits.
const (
	wideStartWait = 60 * time.Second // one daemon until its API listens
	wideMeshWait  = 4 * time.Minute  // the whole mesh until every node is ready
	wideSettle    = 5 * time.Second  // after ready, before the idle window
	wideJoiners   = 3                // joins at once
)

// benchWide runs the wide section in work.
func benchWide(ctx context.Context, bin, work string, cfg wideConfig) error {
	fmt.Printf("\nwide: %d nodes in one mesh on 127.0.0.1: idle CPU for %s, RSS, creates from %d clients for %s against a 3-node mesh\n",
		cfg.nodes, cfg.idle, cfg.clients, cfg.creates)
	var v scaleVerdicts
	nodes, took, err := startMesh(ctx, bin, filepath.Join(work, "wide"), cfg.nodes, cfg.pprof)
	defer func() { stopAll(nodes) }()
	if err != nil {
		return fmt.Errorf("wide: %w", err)
	}
	report(fmt.Sprintf("wide: %d nodes started, joined and ready", cfg.nodes), took.Round(time.Second).String(), "")
	leader, err := leaderOf(nodes)
	if err != nil {
		return fmt.Errorf("wide: %w", err)
	}
	time.Sleep(wideSettle)

	// 1. Idle CPU, with profiles of the leader and the last node.
	var profWG sync.WaitGroup
	profiles(ctx, cfg, leader, "idle", cfg.idle, &profWG)
	cpu0 := cpuOf(nodes)
	t0 := time.Now()
	time.Sleep(cfg.idle)
	cpu1 := cpuOf(nodes)
	secs := time.Since(t0).Seconds()
	profWG.Wait()
	var total, follower float64
	busiest := 0
	for i := range nodes {
		d := cpu1[i] - cpu0[i]
		total += d
		if i != leader && d > follower {
			follower, busiest = d, i
		}
	}
	share := func(s float64) float64 { return 100 * s / secs }
	v.check("wide: idle CPU of the whole mesh", fmt.Sprintf("%.1f %% of one core", share(total)), fmt.Sprintf("< %.0f %%", targetWideIdleCPU), share(total) < targetWideIdleCPU)
	report("wide: idle CPU of the leader", fmt.Sprintf("%.1f %% of one core", share(cpu1[leader]-cpu0[leader])), "")
	report("wide: idle CPU of the busiest follower", fmt.Sprintf("%.1f %% of one core (node %d)", share(follower), busiest), "")

	// 2. Memory.
	wideRSS(&v, nodes, leader, "idle")

	// 3. Creates on the wide mesh, then on a 3-node one.
	if cfg.creates <= 0 {
		if cfg.churn > 0 {
			return wideChurn(ctx, &v, bin, work, nodes, leader, cfg)
		}
		return nil
	}
	profiles(ctx, cfg, leader, "creates", cfg.creates, &profWG)
	wide, wideLeaderMs, err := createsWithCPU(ctx, nodes, leader, cfg.clients, cfg.creates, fmt.Sprintf("%d nodes", cfg.nodes))
	if err != nil {
		return err
	}
	profWG.Wait()
	wideRSS(&v, nodes, leader, "after the creates")

	// 4. Churn, when asked for.
	if cfg.churn > 0 {
		if err := wideChurn(ctx, &v, bin, work, nodes, leader, cfg); err != nil {
			return fmt.Errorf("wide: churn: %w", err)
		}
	}
	stopAll(nodes)
	nodes = nil

	small, _, err := startMesh(ctx, bin, filepath.Join(work, "wide3"), 3, 0)
	defer func() { stopAll(small) }()
	if err != nil {
		return fmt.Errorf("wide: the 3-node mesh: %w", err)
	}
	smallLeader, err := leaderOf(small)
	if err != nil {
		return fmt.Errorf("wide: the 3-node mesh: %w", err)
	}
	three, threeLeaderMs, err := createsWithCPU(ctx, small, smallLeader, cfg.clients, cfg.creates, "3 nodes")
	if err != nil {
		return err
	}
	report(fmt.Sprintf("wide: the leader's CPU per create, %d nodes / 3 nodes", cfg.nodes), fmt.Sprintf("%.2f", wideLeaderMs/threeLeaderMs), "")
	ratio := wide.rate() / three.rate()
	v.check(fmt.Sprintf("wide: creates/s on %d nodes over 3 nodes", cfg.nodes), fmt.Sprintf("%.2f", ratio), fmt.Sprintf(">= %.1f", targetWideRateRatio), ratio >= targetWideRateRatio)
	if len(v.misses) == 0 {
		fmt.Println("wide: every figure met its target")
	} else {
		fmt.Printf("wide: %d figure(s) missed their target: %s\n", len(v.misses), strings.Join(v.misses, "; "))
	}
	return nil
}

// createsWithCPU runs createFor on nodes and reports the rate, the CPU
// that the mesh and its leader spent per create, and how busy the whole
// machine was meanwhile (every process, the clients' included): a mesh
// that has the machine's cores to itself is measured, one that shares
// them with its clients at 100 % measures the machine. It returns the
// run and the leader's CPU milliseconds per create.
func createsWithCPU(ctx context.Context, nodes []*node, leader, clients int, d time.Duration, what string) (createRun, float64, error) {
	cpu0, busy0 := cpuOf(nodes), machineBusy()
	run, err := createFor(ctx, nodes, clients, d)
	if err != nil {
		return run, 0, fmt.Errorf("wide: creates on %s: %w", what, err)
	}
	cpu1, busy1 := cpuOf(nodes), machineBusy()
	report(fmt.Sprintf("wide: creates on %s, %d clients", what, clients), run.String(), "")
	var total float64
	for i := range nodes {
		total += cpu1[i] - cpu0[i]
	}
	lead := cpu1[leader] - cpu0[leader]
	n := float64(len(run.lat))
	secs := run.took.Seconds()
	report("wide: CPU while creating on "+what, fmt.Sprintf("mesh %.0f %% of one core, %.1f ms a create; leader %.0f %%, %.2f ms a create; machine %.0f %% busy (%d cores)",
		100*total/secs, 1000*total/n, 100*lead/secs, 1000*lead/n, 100*(busy1.busy-busy0.busy)/max(busy1.all-busy0.all, 1), runtime.NumCPU()), "")
	return run, 1000 * lead / max(n, 1), nil
}

// cpuTicks is the machine's CPU time from /proc/stat: busy and in all.
type cpuTicks struct{ busy, all float64 }

// machineBusy reads the machine's CPU time so far (zero if it cannot).
func machineBusy() cpuTicks {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTicks{}
	}
	var t cpuTicks
	for i, x := range f[1:] {
		v, _ := strconv.ParseFloat(x, 64)
		t.all += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	return t
}

// profiles takes CPU profiles of d from the first and the last node of
// the wide mesh, when they serve them, in the background (wg).
func profiles(ctx context.Context, cfg wideConfig, leader int, what string, d time.Duration, wg *sync.WaitGroup) {
	if cfg.pprof <= 0 {
		return
	}
	dir := cfg.profiles
	if dir == "" {
		dir = os.TempDir()
	}
	for i, name := range []string{"leader", "follower"} {
		port := cfg.pprof + i
		if name == "leader" && leader != 0 {
			name = "node0" // the leader moved: node 0 serves the first port
		}
		out := filepath.Join(dir, fmt.Sprintf("wide%d-%s-%s.pprof", cfg.nodes, what, name))
		wg.Go(func() {
			if err := saveProfile(ctx, port, d, out); err != nil {
				fmt.Println("  (profile:", err, ")")
				return
			}
			fmt.Println("  (CPU profile:", out, ")")
		})
	}
}

// startMesh starts count nodes in folders under dir, the first one a new
// mesh and the others joining it, a few at a time, and waits until every
// node is ready and the first one reaches every member. With pprof > 0,
// the first node serves profiles on that port and the last on the next.
func startMesh(ctx context.Context, bin, dir string, count, pprof int) ([]*node, time.Duration, error) {
	t0 := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, err
	}
	flags := func(i int) []string {
		switch {
		case pprof > 0 && i == 0:
			return []string{"--pprof", "127.0.0.1:" + strconv.Itoa(pprof)}
		case pprof > 0 && i == count-1:
			return []string{"--pprof", "127.0.0.1:" + strconv.Itoa(pprof+1)}
		}
		return nil
	}
	first, err := startWait(bin, filepath.Join(dir, "n0"), "", "warn", wideStartWait, flags(0)...)
	if err != nil {
		return nil, 0, err
	}
	nodes := make([]*node, count)
	nodes[0] = first
	if _, err := waitReady(ctx, first, wideMeshWait); err != nil {
		return nodes[:1], 0, err
	}
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, wideJoiners)
	var wg sync.WaitGroup
	for i := 1; i < count; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			n, err := joinWait(bin, filepath.Join(dir, fmt.Sprintf("n%d", i)), first, "warn", wideStartWait, flags(i)...)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = firstOf(firstErr, fmt.Errorf("node %d: %w", i, err))
				return
			}
			nodes[i] = n
		})
	}
	wg.Wait()
	started := slices.DeleteFunc(slices.Clone(nodes), func(n *node) bool { return n == nil })
	if firstErr != nil {
		return started, 0, firstErr
	}
	deadline := time.Now().Add(wideMeshWait)
	for i, n := range nodes {
		if _, err := waitReady(ctx, n, time.Until(deadline)); err != nil {
			return nodes, 0, fmt.Errorf("node %d: %w", i, err)
		}
	}
	for {
		reach, err := reachable(first)
		if err == nil && reach == count {
			break
		}
		if time.Now().After(deadline) {
			return nodes, 0, fmt.Errorf("the first node reaches %d of %d members after %s (%v)", reach, count, wideMeshWait, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nodes, time.Since(t0), nil
}

// firstOf returns the first error that is not nil.
func firstOf(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// reachable returns how many members n lists as reachable.
func reachable(n *node) (int, error) {
	var ms struct {
		Items []struct {
			Reachable bool `json:"reachable"`
		} `json:"items"`
	}
	if err := n.get("/v1/mesh/members", &ms); err != nil {
		return 0, err
	}
	reach := 0
	for _, m := range ms.Items {
		if m.Reachable {
			reach++
		}
	}
	return reach, nil
}

// leaderOf returns the index of the node that leads the catalog.
func leaderOf(nodes []*node) (int, error) {
	var ms struct {
		Items []struct {
			PeerID string `json:"peer_id"`
			Leader bool   `json:"leader"`
		} `json:"items"`
	}
	if err := nodes[0].get("/v1/mesh/members", &ms); err != nil {
		return 0, err
	}
	for _, m := range ms.Items {
		if !m.Leader {
			continue
		}
		for i, n := range nodes {
			if peerOf(n) == m.PeerID {
				return i, nil
			}
		}
	}
	return 0, errors.New("no node leads the catalog")
}

// stopAll stops the nodes at once.
func stopAll(nodes []*node) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n != nil {
			wg.Go(n.stop)
		}
	}
	wg.Wait()
}

// cpuOf returns each daemon's user and system CPU seconds so far.
func cpuOf(nodes []*node) []float64 {
	out := make([]float64, len(nodes))
	for i, n := range nodes {
		out[i] = cpuSeconds([]*node{n})
	}
	return out
}

// wideRSS reports the leader's resident set and the followers' largest
// and median ones.
func wideRSS(v *scaleVerdicts, nodes []*node, leader int, when string) {
	var rss []int64
	var lead int64
	for i, n := range nodes {
		m, err := memoryOf(n)
		if err != nil {
			continue
		}
		if i == leader {
			lead = m.rss
			continue
		}
		rss = append(rss, m.rss)
	}
	if len(rss) == 0 {
		return
	}
	slices.Sort(rss)
	report("wide: RSS of the leader, "+when, mib(lead), "")
	v.check("wide: RSS of the largest follower, "+when, fmt.Sprintf("%s (median %s)", mib(rss[len(rss)-1]), mib(rss[len(rss)/2])),
		"< "+mib(targetWideRSS), rss[len(rss)-1] < targetWideRSS)
}

// saveProfile saves a CPU profile of secs from the daemon whose --pprof
// listens on port.
func saveProfile(ctx context.Context, port int, d time.Duration, out string) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// createRun is what createFor measured.
type createRun struct {
	took     time.Duration
	lat      []time.Duration // of the creates that succeeded, sorted
	failures int
	firstErr error
}

func (r createRun) rate() float64 { return float64(len(r.lat)) / r.took.Seconds() }

func (r createRun) String() string {
	s := fmt.Sprintf("%.0f/s, p50 %s, p99 %s", r.rate(), pct(r.lat, 50).Round(100*time.Microsecond), pct(r.lat, 99).Round(100*time.Microsecond))
	if r.failures > 0 {
		s += fmt.Sprintf(", %d failed (%v)", r.failures, r.firstErr)
	}
	return s
}

// createFor creates small snippets from clients concurrent clients for d,
// client c on node c*len(nodes)/clients, and returns the latencies.
func createFor(ctx context.Context, nodes []*node, clients int, d time.Duration) (createRun, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu  sync.Mutex
		run createRun
		seq atomic.Int64
		wg  sync.WaitGroup
	)
	t0 := time.Now()
	for c := range clients {
		api := apiOf(nodes[c*len(nodes)/clients])
		wg.Go(func() {
			for ctx.Err() == nil {
				i := seq.Add(1)
				content := json.RawMessage(fmt.Sprintf(`{"i": %d, "text": "a small snippet of the wide bench"}`, i))
				rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
				s := time.Now()
				_, err := api.CreateSnippet(rctx, fmt.Sprintf("wide-%d.json", i), content, nil)
				lat := time.Since(s)
				rcancel()
				mu.Lock()
				if err != nil {
					run.failures++
					run.firstErr = firstOf(run.firstErr, err)
				} else {
					run.lat = append(run.lat, lat)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	run.took = time.Since(t0)
	slices.Sort(run.lat)
	if len(run.lat) == 0 {
		return run, fmt.Errorf("no create succeeded: %w", run.firstErr)
	}
	return run, nil
}

// wideChurn kills 10 % of the followers with SIGKILL and starts them
// again, one round after another for cfg.churn, while clients create on
// the other nodes; it reports failed requests and how long each restarted
// member took to be ready.
func wideChurn(ctx context.Context, v *scaleVerdicts, bin, work string, nodes []*node, leader int, cfg wideConfig) error {
	var steady []*node // nodes never killed, which the clients use
	var victims []int
	per := max(1, len(nodes)/10)
	for i, n := range nodes {
		if i != leader && i != 0 && len(victims) < per && i%3 == 1 {
			victims = append(victims, i)
			continue
		}
		steady = append(steady, n)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type out struct {
		run createRun
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := createFor(cctx, steady, cfg.clients, cfg.churn)
		done <- out{r, err}
	}()
	var ready []time.Duration
	var failedStarts int
	end := time.Now().Add(cfg.churn)
	for round := 0; time.Now().Before(end); round++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, i := range victims {
			wg.Go(func() {
				n := nodes[i]
				_ = n.cmd.Process.Kill()
				<-n.done
				repo := filepath.Join(work, "wide", fmt.Sprintf("n%d", i))
				s := time.Now()
				nn, err := startWait(bin, repo, n.key, "warn", wideStartWait)
				if err == nil {
					_, err = waitReady(ctx, nn, wideMeshWait)
				}
				mu.Lock()
				defer mu.Unlock()
				if nn != nil {
					nodes[i] = nn
				}
				if err != nil {
					failedStarts++
					return
				}
				ready = append(ready, time.Since(s))
			})
		}
		wg.Wait()
		time.Sleep(5 * time.Second)
	}
	o := <-done
	if o.err != nil {
		return o.err
	}
	slices.Sort(ready)
	report(fmt.Sprintf("wide: creates on the steady nodes while %d of %d churn", len(victims), len(nodes)), o.run.String(), "0 failed")
	if o.run.failures > 0 {
		v.misses = append(v.misses, "wide: failed requests under churn")
	}
	worst := time.Duration(0)
	if len(ready) > 0 {
		worst = ready[len(ready)-1]
	}
	v.check("wide: restarted member ready (SIGKILL), slowest", fmt.Sprintf("%s (median %s, %d restarts, %d not ready)",
		worst.Round(100*time.Millisecond), pct(ready, 50).Round(100*time.Millisecond), len(ready), failedStarts),
		"< "+targetWideReady.String(), failedStarts == 0 && worst < targetWideReady)
	return nil
}
