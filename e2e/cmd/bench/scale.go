package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/artmesh/artmesh"
	apiclient "github.com/artmesh/artmesh/api/client"
)

// The scale section: one node on 127.0.0.1 takes many small snippet
// creates from 16 concurrent clients, and the section measures what
// issue 17 asks of a node holding that many artifacts: whether the
// create rate holds up to the end, the node's memory and CPU, the time a
// restart takes to be ready again (after SIGTERM and after SIGKILL),
// filtered list latency, /metrics latency, and how long a new member
// takes to join and catch up. The numbered comments in benchScale are
// the figures' numbers in the issue; the lists and /metrics run before
// the restarts, so that they see the process that made the artifacts.

// scaleConfig is what a scale run does.
type scaleConfig struct {
	artifacts int // snippets to create; at least scaleMinArtifacts
	clients   int // concurrent creators
	lists     int // sequential requests per list query
	metrics   int // sequential /metrics requests
	pprof     int // with a port: the node serves --pprof there and CPU profiles of the first and last tenth are saved
	profiles  string
}

// defaultScale is the quick size, which `make bench` runs; env SCALE
// (or -scale) sets another, SCALE=1000000 the full one.
const defaultScale = 20_000

// scaleMinArtifacts keeps the 1 % filter matching something.
const scaleMinArtifacts = 100

// Bounds on the waits of the section, generous next to the targets, so
// that a slow node gives a figure rather than a hang.
const (
	scaleRequestTimeout = 2 * time.Minute  // one API request
	scaleStartWait      = 5 * time.Minute  // a started daemon until it listens, then until ready
	scaleStopWait       = 60 * time.Second // SIGTERM until the process exits
	scaleJoinWait       = 10 * time.Minute // a joiner until it has caught up
)

// The acceptance targets.
const (
	targetRateRatio    = 0.8
	targetRSS          = 1 << 30
	targetRestart      = 10 * time.Second
	targetListP50      = 5 * time.Millisecond
	targetListP99      = 20 * time.Millisecond
	targetMetrics      = 100 * time.Millisecond
	targetJoinCaughtUp = 60 * time.Second
)

// scaleMetadata is the metadata of the i-th snippet: p1=yes on every
// 100th, p10=yes on every 10th (filters that match 1 % and 10 %), and
// an ordinary key, seq.
func scaleMetadata(i int) artmesh.Metadata {
	yes := func(every int) json.RawMessage {
		if i%every == 0 {
			return json.RawMessage(`"yes"`)
		}
		return json.RawMessage(`"no"`)
	}
	return artmesh.Metadata{"p1": yes(100), "p10": yes(10), "seq": json.RawMessage(strconv.Itoa(i))}
}

// matching returns how many of the first n snippets have their i
// divisible by every.
func matching(n, every int) int { return (n + every - 1) / every }

// scaleVerdicts collects the section's misses for its closing line.
type scaleVerdicts struct{ misses []string }

// check reports a figure and whether it met its target.
func (v *scaleVerdicts) check(name, figure, target string, ok bool) {
	verdict := "ok"
	if !ok {
		verdict = "MISS"
		v.misses = append(v.misses, name)
	}
	report(name, figure+" ["+verdict+"]", target)
}

// apiOf returns a typed client of n's API as n's agent.
func apiOf(n *node) *apiclient.Client {
	return apiclient.New(n.url, n.key, apiclient.WithHTTPClient(client))
}

// benchScale runs the scale section on a fresh node in work/scale.
func benchScale(ctx context.Context, bin, work string, cfg scaleConfig) error {
	if cfg.artifacts < scaleMinArtifacts {
		return fmt.Errorf("scale: %d artifacts is too few to filter on 1 %% of them (at least %d)", cfg.artifacts, scaleMinArtifacts)
	}
	fmt.Printf("\nscale: %d snippets (3 metadata keys each) from %d clients on one node, then restarts, lists, /metrics and a joining member\n",
		cfg.artifacts, cfg.clients)
	repo := filepath.Join(work, "scale")
	var extra []string
	if cfg.pprof > 0 {
		extra = []string{"--pprof", "127.0.0.1:" + strconv.Itoa(cfg.pprof)}
	}
	n, err := startWait(bin, repo, "", "warn", scaleStartWait, extra...)
	if err != nil {
		return fmt.Errorf("scale: start the node: %w", err)
	}
	// n changes with each restart: stop whichever runs at the end.
	defer func() { n.stop() }()
	if _, err := waitReady(ctx, n, scaleStartWait); err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	var v scaleVerdicts

	// 1. Creates, with their rate by tenth of the run.
	cpu0 := cpuSeconds([]*node{n})
	var profWG sync.WaitGroup
	cr, err := createSnippets(ctx, apiOf(n), cfg.artifacts, cfg.clients, func() costSample { return costOf(n) },
		func(tenth int) { scaleProfile(ctx, cfg, tenth, &profWG) })
	profWG.Wait()
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	cpu := cpuSeconds([]*node{n}) - cpu0
	rates := make([]string, len(cr.rates))
	for i, r := range cr.rates {
		rates[i] = fmt.Sprintf("%.0f", r)
	}
	report(fmt.Sprintf("scale: %d creates, %d clients", cfg.artifacts, cfg.clients),
		fmt.Sprintf("%.0f creates/s in %s", float64(cfg.artifacts)/cr.took.Seconds(), cr.took.Round(time.Millisecond)), "")
	report("scale: creates/s by tenth of the run", strings.Join(rates, " "), "")
	cpuMs, writtenKB := make([]string, len(cr.costs)), make([]string, len(cr.costs))
	for i, c := range cr.costs {
		cpuMs[i], writtenKB[i] = fmt.Sprintf("%.2f", 1000*c.cpu), fmt.Sprintf("%.1f", float64(c.written)/1024)
	}
	report("scale: node CPU-ms per create by tenth", strings.Join(cpuMs, " "), "")
	report("scale: KiB written to disk per create by tenth", strings.Join(writtenKB, " "), "")
	ratio := cr.rates[len(cr.rates)-1] / cr.rates[0]
	v.check("scale: creates/s, last tenth / first tenth", fmt.Sprintf("%.2f", ratio), fmt.Sprintf(">= %.1f", targetRateRatio), ratio >= targetRateRatio)

	// 2. Memory and CPU after the creates.
	mem, err := memoryOf(n)
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	v.check("scale: node RSS after the creates (VmRSS)", mib(mem.rss), "< 1 GiB", mem.rss < targetRSS)
	report("scale: of which RssAnon, RssFile", mib(mem.anon)+", "+mib(mem.file), "")
	if byFile, err := fileResidency(n.cmd.Process.Pid); err == nil {
		report("scale: RssFile by file", byFile, "")
	}
	report("scale: node CPU during the creates", fmt.Sprintf("%.2f CPU-s per 1,000 creates (%.1f CPU-s)", cpu/float64(cfg.artifacts)*1000, cpu), "")

	// 4. List latency, on the node that made the artifacts.
	c := apiOf(n)
	for _, q := range []struct {
		name string
		meta []artmesh.MetaMatch
		want int
	}{
		{"unfiltered", nil, cfg.artifacts},
		{"metadata.p10=yes (10 %)", []artmesh.MetaMatch{{Key: "p10", Value: "yes"}}, matching(cfg.artifacts, 10)},
		{"metadata.p1=yes (1 %)", []artmesh.MetaMatch{{Key: "p1", Value: "yes"}}, matching(cfg.artifacts, 100)},
	} {
		lat, err := listLatency(ctx, c, artmesh.Filter{Meta: q.meta, Limit: 50}, q.want, cfg.lists)
		if err != nil {
			return fmt.Errorf("scale: list %s: %w", q.name, err)
		}
		p50, p99 := pct(lat, 50), pct(lat, 99)
		v.check(fmt.Sprintf("scale: list %s, limit=50, x%d", q.name, cfg.lists), fmt.Sprintf("p50 %s, p99 %s", p50, p99),
			"p50 < 5ms, p99 < 20ms", p50 < targetListP50 && p99 < targetListP99)
	}

	// 5. /metrics.
	lat, err := metricsLatency(ctx, n, cfg.metrics)
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	worst := pct(lat, 100)
	v.check(fmt.Sprintf("scale: GET /metrics, x%d", cfg.metrics), fmt.Sprintf("p50 %s, max %s", pct(lat, 50), worst), "< 100ms", worst < targetMetrics)

	// 7. Idempotency keys (issue 18): each create above left one. After the
	// lists, which count the artifacts.
	m := min(max(cfg.artifacts/20, 1000), 10_000)
	kc, err := keyCost(ctx, n, repo, m, cfg.clients, 2)
	if err != nil {
		return fmt.Errorf("scale: keys: %w", err)
	}
	keyRatio := kc.keyed / kc.plain
	v.check(fmt.Sprintf("scale: creates/s with an Idempotency-Key / without (2 x %d each, alternating)", m),
		fmt.Sprintf("%.2f (%.0f / %.0f)", keyRatio, kc.keyed, kc.plain), fmt.Sprintf(">= %.1f", targetKeyedRatio), keyRatio >= targetKeyedRatio)
	report("scale: key records the catalog keeps", fmt.Sprintf("%d", kc.kept), "")
	report("scale: per create without / with a key: catalog file growth (in steps), RSS growth",
		fmt.Sprintf("%d / %d bytes, %d / %d bytes", kc.plainDisk, kc.keyDisk, kc.plainRSS, kc.keyRSS), "")

	// 3. Restarts: after SIGTERM, then after SIGKILL.
	for _, kill := range []bool{false, true} {
		rs, err := restart(ctx, bin, repo, n, kill)
		if rs.node != nil {
			n = rs.node
		}
		if err != nil {
			return fmt.Errorf("scale: %w", err)
		}
		how := fmt.Sprintf("SIGTERM (stopped in %s)", rs.stop.Round(time.Millisecond))
		if kill {
			how = "SIGKILL"
		}
		v.check("scale: restart to ready after "+how, rs.ready.Round(time.Millisecond).String()+fmt.Sprintf(" (listening after %s)", rs.listen.Round(time.Millisecond)),
			"< 10s", rs.ready < targetRestart)
		// What was acknowledged before the restart is still there.
		if _, err := apiOf(n).Artifact(ctx, cr.last); err != nil {
			return fmt.Errorf("scale: the last artifact after the restart: %w", err)
		}
	}

	// 6. A new member.
	js, err := joinAndCatchUp(ctx, bin, filepath.Join(work, "scale-joiner"), n, cr.last)
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	if js.caughtUp == 0 {
		v.check("scale: new member, join until ready and caught up", fmt.Sprintf("not within %s (ready after %s)", scaleJoinWait, js.ready.Round(time.Millisecond)), "< 60s", false)
	} else {
		v.check("scale: new member, join until ready and caught up", fmt.Sprintf("%s (ready after %s)", js.caughtUp.Round(time.Millisecond), js.ready.Round(time.Millisecond)),
			"< 60s", js.caughtUp < targetJoinCaughtUp)
	}
	if js.rss > 0 {
		report("scale: the new member's RSS once caught up", mib(js.rss), "")
	}

	verdict := "PASS"
	if len(v.misses) > 0 {
		verdict = fmt.Sprintf("FAIL (%d missed)", len(v.misses))
	}
	report(fmt.Sprintf("scale: acceptance at %d artifacts", cfg.artifacts), verdict, "PASS")
	return nil
}

// createResult is what createSnippets measured.
type createResult struct {
	took  time.Duration
	rates []float64          // creates/s in each tenth of the run, by order of acknowledgement
	costs []costSample       // what the node spent in each tenth, per create
	last  artmesh.ArtifactID // the artifact acknowledged last
}

// costSample is what a node has spent: CPU seconds and bytes written to
// its disk (/proc/PID/io write_bytes).
type costSample struct {
	cpu     float64
	written int64
}

// costOf reads what n has spent so far.
func costOf(n *node) costSample {
	c := costSample{cpu: cpuSeconds([]*node{n})}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", n.cmd.Process.Pid))
	if err != nil {
		return c
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			c.written, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return c
}

// createSnippets creates total snippets with scaleMetadata from clients
// concurrent clients. It stops at the first failed create.
func createSnippets(ctx context.Context, c *apiclient.Client, total, clients int, cost func() costSample, began func(tenth int)) (createResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	const parts = 10
	var (
		next, done atomic.Int64
		mu         sync.Mutex
		marks      [parts + 1]time.Time // marks[k]: when the k*total/parts-th create was acknowledged
		spent      [parts + 1]costSample
		last       artmesh.ArtifactID
		wg         sync.WaitGroup
	)
	start := time.Now()
	marks[0] = start
	spent[0] = cost()
	began(0)
	progress := max(total/10, 1)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, scaleRequestTimeout)
				content := json.RawMessage(fmt.Sprintf(`{"i": %d, "text": "snippet number %d of the scale bench"}`, i, i))
				a, err := c.CreateSnippet(rctx, fmt.Sprintf("scale-%d.json", i), content, scaleMetadata(i))
				rcancel()
				if err != nil {
					cancel(fmt.Errorf("create %d: %w", i, err))
					return
				}
				d := int(done.Add(1))
				now := time.Now()
				mu.Lock()
				last = a.ID
				for k := 1; k <= parts; k++ {
					if d == k*total/parts {
						marks[k], spent[k] = now, cost()
						if k < parts {
							began(k)
						}
					}
				}
				mu.Unlock()
				if d%progress == 0 {
					fmt.Printf("  (%d created, %s)\n", d, now.Sub(start).Round(time.Second))
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return createResult{}, err
	}
	res := createResult{took: marks[parts].Sub(start), last: last}
	for k := 1; k <= parts; k++ {
		n := k*total/parts - (k-1)*total/parts
		res.rates = append(res.rates, float64(n)/marks[k].Sub(marks[k-1]).Seconds())
		res.costs = append(res.costs, costSample{
			cpu:     (spent[k].cpu - spent[k-1].cpu) / float64(n),
			written: (spent[k].written - spent[k-1].written) / int64(n),
		})
	}
	return res, nil
}

// scaleProfile saves a CPU profile of the scale node while the first and
// the last tenth of the creates run (when cfg.pprof is set), in the
// background (wg), for `go tool pprof -top`: what grows with the catalog.
func scaleProfile(ctx context.Context, cfg scaleConfig, tenth int, wg *sync.WaitGroup) {
	if cfg.pprof <= 0 || (tenth != 0 && tenth != 9) {
		return
	}
	dir := cfg.profiles
	if dir == "" {
		dir = os.TempDir()
	}
	out := filepath.Join(dir, fmt.Sprintf("scale%d-tenth%d.pprof", cfg.artifacts, tenth+1))
	wg.Go(func() {
		if err := saveProfile(ctx, cfg.pprof, scaleProfileFor, out); err != nil {
			fmt.Println("  (profile:", err, ")")
			return
		}
		fmt.Println("  (CPU profile:", out, ")")
	})
}

// scaleProfileFor is how long each of scaleProfile's profiles runs:
// short enough to fit in a tenth of the quick size.
const scaleProfileFor = 10 * time.Second

// listLatency lists one page with f count times in a row and returns each
// request's latency. Every answer must hold min(want, limit) matches, say
// whether there are more, and give the total only where it is want.
func listLatency(ctx context.Context, c *apiclient.Client, f artmesh.Filter, want, count int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, count)
	for range count {
		rctx, cancel := context.WithTimeout(ctx, scaleRequestTimeout)
		t0 := time.Now()
		page, err := c.ListArtifacts(rctx, f)
		d := time.Since(t0)
		cancel()
		if err != nil {
			return nil, err
		}
		// A filtered list has no total (it would cost every match); an
		// unfiltered one has the exact count.
		if len(page.Items) != min(want, f.Limit) || (page.Total != nil && *page.Total != want) {
			return nil, fmt.Errorf("%d items (total %v), want %d of %d", len(page.Items), page.Total, min(want, f.Limit), want)
		}
		if (page.NextCursor != "") != (want > f.Limit) {
			return nil, fmt.Errorf("next cursor %q with %d matches and a limit of %d", page.NextCursor, want, f.Limit)
		}
		lat = append(lat, d)
	}
	return lat, nil
}

// metricsLatency reads n's /metrics count times in a row, each to its
// end, and returns each request's latency.
func metricsLatency(ctx context.Context, n *node, count int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, count)
	for range count {
		rctx, cancel := context.WithTimeout(ctx, scaleRequestTimeout)
		t0 := time.Now()
		err := getDiscard(rctx, n.url+"/metrics")
		d := time.Since(t0)
		cancel()
		if err != nil {
			return nil, err
		}
		lat = append(lat, d)
	}
	return lat, nil
}

// getDiscard GETs url with no key, reads the answer to its end and
// wants 200.
func getDiscard(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// waitReady polls n's /readyz until it answers 200, for at most wait, and
// returns when it did. It fails at once if the daemon exits.
func waitReady(ctx context.Context, n *node, wait time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c := apiOf(n)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.Ready(ctx)
		if err == nil {
			return time.Now(), nil
		}
		select {
		case <-n.done:
			return time.Time{}, fmt.Errorf("the daemon at %s exited before it was ready (%v)", n.url, n.cmd.ProcessState)
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("the daemon at %s was not ready within %s: %w", n.url, wait, err)
		case <-tick.C:
		}
	}
}

// restartResult is what one restart took.
type restartResult struct {
	node   *node         // the node started again; nil if it did not start
	stop   time.Duration // from SIGTERM until the process exited (0 for SIGKILL)
	listen time.Duration // from the start until the API listened
	ready  time.Duration // from the start until /readyz answered 200
}

// restart stops n, with SIGTERM or SIGKILL, and starts it again on repo,
// timing the stop and the start until ready.
func restart(ctx context.Context, bin, repo string, n *node, kill bool) (restartResult, error) {
	var res restartResult
	if kill {
		if err := n.cmd.Process.Kill(); err != nil {
			return res, fmt.Errorf("kill the node: %w", err)
		}
		<-n.done
	} else {
		t0 := time.Now()
		if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return res, fmt.Errorf("stop the node: %w", err)
		}
		select {
		case <-n.done:
			res.stop = time.Since(t0)
		case <-time.After(scaleStopWait):
			n.cmd.Process.Kill()
			<-n.done
			return res, fmt.Errorf("the node did not stop within %s of SIGTERM", scaleStopWait)
		}
	}
	t0 := time.Now()
	nn, err := startWait(bin, repo, n.key, "warn", scaleStartWait)
	if err != nil {
		return res, fmt.Errorf("start the node again: %w", err)
	}
	res.node = nn
	res.listen = time.Since(t0)
	at, err := waitReady(ctx, nn, scaleStartWait)
	if err != nil {
		return res, err
	}
	res.ready = at.Sub(t0)
	return res, nil
}

// joinResult is what a new member's join took.
type joinResult struct {
	ready    time.Duration // from the invite until its /readyz answered 200
	caughtUp time.Duration // until it had applied the leader's index and served the last artifact; 0 if not within scaleJoinWait
	rss      int64         // its VmRSS then
}

// joinAndCatchUp joins a new node on repo to leader's mesh and times it,
// from the invite on, until it is ready and has caught up: its catalog
// has applied the index the leader had applied before the join, and it
// serves the artifact last. The new node is stopped before it returns.
func joinAndCatchUp(ctx context.Context, bin, repo string, leader *node, last artmesh.ArtifactID) (joinResult, error) {
	var res joinResult
	applied, err := gaugeOf(leader, "artmesh_catalog_applied_index")
	if err != nil {
		return res, fmt.Errorf("the leader's applied index: %w", err)
	}
	t0 := time.Now()
	j, err := joinWait(bin, repo, leader, "warn", scaleStartWait)
	if err != nil {
		return res, fmt.Errorf("join a new node: %w", err)
	}
	defer j.stop()
	at, err := waitReady(ctx, j, scaleJoinWait)
	if err != nil {
		return res, fmt.Errorf("the new node: %w", err)
	}
	res.ready = at.Sub(t0)
	c := apiOf(j)
	deadline := t0.Add(scaleJoinWait)
	for time.Now().Before(deadline) {
		idx, err := gaugeOf(j, "artmesh_catalog_applied_index")
		if err == nil && idx >= applied {
			rctx, cancel := context.WithTimeout(ctx, scaleRequestTimeout)
			_, err = c.Artifact(rctx, last)
			cancel()
			if err == nil {
				res.caughtUp = time.Since(t0)
				break
			}
		}
		select {
		case <-j.done:
			return res, fmt.Errorf("the new node exited while catching up (%v); see %s.log", j.cmd.ProcessState, repo)
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if mem, err := memoryOf(j); err == nil {
		res.rss = mem.rss
	}
	return res, nil
}

// memory is a process's resident set, from /proc/PID/status.
type memory struct {
	rss, anon, file int64 // VmRSS, RssAnon, RssFile in bytes
}

// memoryOf reads n's resident set sizes.
func memoryOf(n *node) (memory, error) {
	path := fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid)
	f, err := os.Open(path)
	if err != nil {
		return memory{}, fmt.Errorf("the node's memory: %w", err)
	}
	defer f.Close()
	var m memory
	fields := map[string]*int64{"VmRSS:": &m.rss, "RssAnon:": &m.anon, "RssFile:": &m.file}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, _ := strings.Cut(sc.Text(), "\t")
		if p, ok := fields[name]; ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return memory{}, fmt.Errorf("%s: %s: %w", path, name, err)
			}
			*p = kb << 10
			delete(fields, name)
		}
	}
	if err := sc.Err(); err != nil {
		return memory{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(fields) > 0 {
		return memory{}, errors.New(path + " lacks VmRSS, RssAnon or RssFile")
	}
	return m, nil
}

// fileResidency reads /proc/PID/smaps and names the files whose mapped
// pages are resident, largest first: "catalog.db 410 MiB, index.db 90
// MiB, ..." (the rest summed as "other").
func fileResidency(pid int) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	byName := map[string]int64{}
	var name string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			name = ""
			if len(fields) >= 6 && strings.HasPrefix(fields[5], "/") {
				name = filepath.Base(fields[5])
			}
			continue
		}
		if name == "" || !strings.HasPrefix(line, "Rss:") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(line, "Rss:")), " kB"), 10, 64)
		if err == nil {
			byName[name] += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(byName[b], byName[a]) })
	var parts []string
	var other int64
	for i, n := range names {
		if i < 4 {
			parts = append(parts, n+" "+mib(byName[n]))
		} else {
			other += byName[n]
		}
	}
	if other > 0 {
		parts = append(parts, "other "+mib(other))
	}
	return strings.Join(parts, ", "), nil
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
