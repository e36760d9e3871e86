package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The keep-up scenario: five nodes on 127.0.0.1 with the default policy
// (factor 2, one synchronous copy) take a mixed stream of creates spread
// over the nodes, with some deletes, for a while. It samples the mesh's
// under-replicated count from /metrics, and times each version from its
// acknowledgement until its placement shows as many holders as its
// factor. The acceptance: the count never exceeds 2 x (writes/s x 10 s),
// and every version reaches its factor within 30 s (p99 under 10 s).

// keepupConfig is what a keep-up run does.
type keepupConfig struct {
	nodes    int
	rate     float64       // creates per second, spread over the nodes
	duration time.Duration // of the writes
	drain    time.Duration // after the writes, to let the last versions reach their factor
}

// keepupSize picks a size from the mix: 60 % 64 B-4 KiB, 25 % 4-256 KiB,
// 15 % 256 KiB-1.5 MB.
func keepupSize(r *rand.Rand) int {
	switch p := r.IntN(100); {
	case p < 60:
		return 64 + r.IntN(4096-64)
	case p < 85:
		return 4096 + r.IntN(256<<10-4096)
	default:
		return 256<<10 + r.IntN(1_500_000-256<<10)
	}
}

// keepupWrite is one acknowledged create the scenario follows.
type keepupWrite struct {
	id      string
	node    int
	size    int
	ackAt   time.Time
	next    time.Time     // when to look at its placement next
	every   time.Duration // between looks, doubling up to a cap
	deleted bool
}

// keepupSample is one look at the mesh's under-replicated count.
type keepupSample struct {
	at      time.Duration // since the writes began
	under   int           // from /metrics of the first node
	pending int           // the scenario's writes not yet at their factor
	writes  int64
}

func benchKeepup(bin, work string, cfg keepupConfig) error {
	fmt.Printf("\nkeep-up: %d nodes, %.0f creates/s (64 B-1.5 MB) spread over them, 1 delete per 10 creates, for %s; default policy\n",
		cfg.nodes, cfg.rate, cfg.duration)
	var nodes []*node
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	first, err := startLevel(bin, filepath.Join(work, "keepup-0"), "", "warn")
	if err != nil {
		return err
	}
	nodes = append(nodes, first)
	for i := 1; i < cfg.nodes; i++ {
		n, err := joinLevel(bin, filepath.Join(work, fmt.Sprintf("keepup-%d", i)), first, "warn")
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	if err := first.put("/v1/mesh/policy", `{"replication_factor": 2, "write_replicas": 1}`); err != nil {
		return err
	}
	// Every node caught up and knowing every member.
	deadline := time.Now().Add(60 * time.Second)
	for _, n := range nodes {
		for {
			var ms struct {
				Items []struct {
					Reachable bool `json:"reachable"`
				} `json:"items"`
			}
			err := n.get("/v1/mesh/members", &ms)
			reach := 0
			for _, m := range ms.Items {
				if m.Reachable {
					reach++
				}
			}
			// Followers connect to each other only once they have a
			// reason to: the first node (the leader) reaches them all.
			if err == nil && len(ms.Items) == cfg.nodes && (n != first || reach == cfg.nodes) && n.get("/v1/artifacts?limit=1&consistent=true", new(json.RawMessage)) == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("keep-up: the %d nodes did not all know each other within 60 s (last: %v, %d members, %d reachable)", cfg.nodes, err, len(ms.Items), reach)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	cpu0 := cpuSeconds(nodes)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu       sync.Mutex
		writes   []*keepupWrite
		pending  = map[string]*keepupWrite{}
		ages     []time.Duration
		lats     []time.Duration
		failures int
		firstErr error
		created  atomic.Int64
		deletes  atomic.Int64
	)
	t0 := time.Now()
	writeEnd := t0.Add(cfg.duration)

	// The writers: a pacer hands out jobs at the rate; a bounded pool
	// runs them.
	type job struct {
		seed uint64
		del  bool
	}
	jobs := make(chan job, 64)
	var wg sync.WaitGroup
	for w := 0; w < 48; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1_500_000)
			for j := range jobs {
				r := rand.New(rand.NewPCG(j.seed, 42))
				if j.del {
					mu.Lock()
					var victim *keepupWrite
					if len(writes) > 0 {
						victim = writes[r.IntN(len(writes))]
					}
					if victim != nil && victim.deleted {
						victim = nil
					}
					if victim != nil {
						victim.deleted = true
						delete(pending, victim.id)
					}
					mu.Unlock()
					if victim != nil {
						resp, err := nodes[r.IntN(len(nodes))].req("DELETE", "/v1/artifacts/"+victim.id, nil, "")
						if err == nil {
							resp.Body.Close()
							deletes.Add(1)
						}
					}
					continue
				}
				size := keepupSize(r)
				fillRandom(buf[:size], j.seed)
				ni := int(j.seed % uint64(len(nodes)))
				var art struct {
					ID string `json:"id"`
				}
				start := time.Now()
				err := nodes[ni].post(fmt.Sprintf("/v1/artifacts?name=k%d.bin", j.seed), bytes.NewReader(buf[:size]), "application/octet-stream", &art)
				now := time.Now()
				mu.Lock()
				if err != nil {
					failures++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					w := &keepupWrite{id: art.ID, node: ni, size: size, ackAt: now, next: now, every: 250 * time.Millisecond}
					writes = append(writes, w)
					pending[w.id] = w
					lats = append(lats, now.Sub(start))
					created.Add(1)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() { // the pacer
		defer wg.Done()
		defer close(jobs)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		// Jobs as due by the clock, so that a slow moment is made up.
		for seq := uint64(1); time.Now().Before(writeEnd); {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for due := uint64(time.Since(t0).Seconds() * cfg.rate); seq <= due; seq++ {
				jobs <- job{seed: seq<<1 | 1}
				if seq%10 == 0 {
					jobs <- job{seed: seq << 1, del: true}
				}
			}
		}
	}()

	// The checker: looks at the placement of each pending write, soon
	// after its acknowledgement, then less and less often (up to every
	// 2 s), at most 8 looks at once.
	checkDone := make(chan struct{})
	go func() {
		defer close(checkDone)
		sem := make(chan struct{}, 8)
		var cwg sync.WaitGroup
		defer cwg.Wait()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			now := time.Now()
			mu.Lock()
			var due []*keepupWrite
			for _, w := range pending {
				if !w.next.After(now) {
					w.next = now.Add(time.Hour) // taken
					due = append(due, w)
				}
			}
			mu.Unlock()
			for _, w := range due {
				sem <- struct{}{}
				cwg.Add(1)
				go func() {
					defer cwg.Done()
					defer func() { <-sem }()
					var pl struct {
						Items []struct {
							Factor  int      `json:"factor"`
							Holders []string `json:"holders"`
						} `json:"items"`
					}
					err := nodes[w.node].get("/v1/artifacts/"+w.id+"/placement", &pl)
					at := time.Now()
					mu.Lock()
					defer mu.Unlock()
					if _, ok := pending[w.id]; !ok {
						return // deleted meanwhile
					}
					if err == nil && len(pl.Items) > 0 && len(pl.Items[0].Holders) >= pl.Items[0].Factor {
						delete(pending, w.id)
						ages = append(ages, at.Sub(w.ackAt))
						return
					}
					w.every = min(2*w.every, 2*time.Second)
					w.next = at.Add(w.every)
				}()
			}
		}
	}()

	// The sampler, until the writes end and then until every version has
	// its factor or the drain time is over.
	var samples []keepupSample
	fmt.Printf("%8s %8s %8s %8s\n", "t", "writes", "under", "pending")
	sampleTick := time.NewTicker(2 * time.Second)
	defer sampleTick.Stop()
	for {
		<-sampleTick.C
		under, err := underReplicated(nodes[0])
		if err != nil {
			under = -1
		}
		mu.Lock()
		s := keepupSample{at: time.Since(t0), under: under, pending: len(pending), writes: created.Load()}
		mu.Unlock()
		samples = append(samples, s)
		if len(samples)%5 == 0 {
			fmt.Printf("%8s %8d %8d %8d\n", s.at.Round(time.Second), s.writes, s.under, s.pending)
		}
		if time.Now().After(writeEnd) && s.pending == 0 && s.under == 0 {
			break
		}
		if time.Now().After(writeEnd.Add(cfg.drain)) {
			break
		}
	}
	wg.Wait() // the writers are done by now: the pacer stopped at writeEnd
	cancel()
	<-checkDone
	cpu := cpuSeconds(nodes) - cpu0
	var held []string
	for _, n := range nodes {
		mb, err := gaugeOf(n, "artmesh_replication_held_bytes")
		if err != nil {
			held = append(held, "?")
			continue
		}
		held = append(held, fmt.Sprintf("%.0f", mb/1e6))
	}
	elapsed := time.Since(t0)

	mu.Lock()
	defer mu.Unlock()
	// Versions still below their factor at the end count as older than
	// the drain allowed.
	for _, w := range pending {
		ages = append(ages, time.Since(w.ackAt))
	}
	rate := float64(created.Load()) / cfg.duration.Seconds()
	bound := int(2 * rate * 10)
	maxUnder, maxPending := 0, 0
	for _, s := range samples {
		maxUnder, maxPending = max(maxUnder, s.under), max(maxPending, s.pending)
	}
	slices.Sort(ages)
	var maxAge time.Duration
	if len(ages) > 0 {
		maxAge = ages[len(ages)-1]
	}
	warns := countLogLines(work, cfg.nodes, "fetching an allocated copy failed")
	report("keep-up: creates acknowledged (failed)", fmt.Sprintf("%d (%d) = %.1f/s; %d deletes", created.Load(), failures, rate, deletes.Load()), ">= 50/s")
	if firstErr != nil {
		fmt.Println("  first failed create:", firstErr)
	}
	report("keep-up: create latency", fmt.Sprintf("p50 %s, p99 %s", pct(lats, 50).Round(time.Millisecond), pct(lats, 99).Round(time.Millisecond)), "")
	report("keep-up: max under-replicated (metrics; bench's own)", fmt.Sprintf("%d; %d (bound %d)", maxUnder, maxPending, bound), "<= 2 x (writes/s x 10 s)")
	report("keep-up: age until the factor (from the ack)", fmt.Sprintf("p50 %s, p99 %s, max %s", pct(ages, 50).Round(time.Millisecond), pct(ages, 99).Round(time.Millisecond), maxAge.Round(time.Millisecond)), "p99 < 10 s, max < 30 s")
	report("keep-up: still below the factor at the end", fmt.Sprintf("%d of %d", len(pending), len(ages)), "0")
	report("keep-up: daemons' CPU", fmt.Sprintf("%.0f CPU-s in %s = %.2f cores", cpu, elapsed.Round(time.Second), cpu/elapsed.Seconds()), "")
	report("keep-up: MB each node holds at the end", strings.Join(held, " "), "")
	report("keep-up: 'fetching an allocated copy failed' log lines", fmt.Sprintf("%v", warns), "")
	pass := rate >= 50 && maxUnder <= bound && maxPending <= bound && pct(ages, 99) < 10*time.Second && maxAge < 30*time.Second && len(pending) == 0
	verdict := "PASS"
	if !pass {
		verdict = "FAIL"
	}
	report("keep-up: acceptance", verdict, "PASS")
	return nil
}

// underReplicated reads artmesh_replication_under_replicated_versions
// from a node's /metrics.
func underReplicated(n *node) (int, error) {
	v, err := gaugeOf(n, "artmesh_replication_under_replicated_versions")
	return int(v), err
}

// gaugeOf reads an unlabelled gauge from a node's /metrics.
func gaugeOf(n *node, name string) (float64, error) {
	resp, err := n.req("GET", "/metrics", nil, "")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}

// cpuSeconds sums the user and system CPU time of the daemons.
func cpuSeconds(nodes []*node) float64 {
	var ticks int64
	for _, n := range nodes {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
		if err != nil {
			continue
		}
		// The fields after the command name, which is in parentheses.
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			k, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + k
		}
	}
	return float64(ticks) / 100 // USER_HZ
}

// countLogLines counts the lines of each keep-up node's log that contain
// s.
func countLogLines(work string, nodes int, s string) []int {
	out := make([]int, nodes)
	for i := range out {
		data, err := os.ReadFile(filepath.Join(work, fmt.Sprintf("keepup-%d.log", i)))
		if err == nil {
			out[i] = bytes.Count(data, []byte(s))
		}
	}
	return out
}
