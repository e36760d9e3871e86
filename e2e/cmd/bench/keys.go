package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	apiclient "github.com/artmesh/artmesh/api/client"
)

// What idempotency keys cost (issue 18): the scale section's creates
// carry keys, as every client write does, so the node ends that run
// holding one key record per create. keyCost then runs batches of creates
// without keys and with keys, alternating, on the same node at the same
// catalog size, and compares their rates, the catalog file's growth and
// the node's RSS growth per create.

// targetKeyedRatio is the least keyed create rate over the unkeyed one.
const targetKeyedRatio = 0.9

// keyCostResult is keyCost's measure.
type keyCostResult struct {
	plain, keyed       float64 // creates/s
	plainDisk, keyDisk int64   // catalog file growth per create, bytes
	plainRSS, keyRSS   int64   // RSS growth per create, bytes
	kept               int64   // key records the catalog holds at the end
}

// keyCost runs rounds of m unkeyed then m keyed snippet creates from
// clients concurrent clients.
func keyCost(ctx context.Context, n *node, repo string, m, clients, rounds int) (keyCostResult, error) {
	plain := apiclient.New(n.url, n.key, apiclient.WithHTTPClient(client), apiclient.WithoutIdempotencyKeys())
	keyed := apiOf(n)
	dbPath := filepath.Join(repo, "raft", "catalog.db")
	var res keyCostResult
	var plainTime, keyedTime time.Duration
	for r := range rounds {
		for _, k := range []bool{false, true} {
			c := plain
			if k {
				c = keyed
			}
			disk0, _ := fileSize(dbPath)
			mem0, err := memoryOf(n)
			if err != nil {
				return res, err
			}
			cr, err := createSnippets(ctx, c, m, clients, func() costSample { return costSample{} }, func(int) {})
			if err != nil {
				return res, fmt.Errorf("round %d (keys %v): %w", r, k, err)
			}
			took := cr.took
			disk1, _ := fileSize(dbPath)
			mem1, err := memoryOf(n)
			if err != nil {
				return res, err
			}
			if k {
				keyedTime += took
				res.keyDisk += disk1 - disk0
				res.keyRSS += int64(mem1.rss) - int64(mem0.rss)
			} else {
				plainTime += took
				res.plainDisk += disk1 - disk0
				res.plainRSS += int64(mem1.rss) - int64(mem0.rss)
			}
		}
	}
	total := float64(m * rounds)
	res.plain, res.keyed = total/plainTime.Seconds(), total/keyedTime.Seconds()
	res.plainDisk, res.keyDisk = res.plainDisk/int64(total), res.keyDisk/int64(total)
	res.plainRSS, res.keyRSS = res.plainRSS/int64(total), res.keyRSS/int64(total)
	kept, err := metricValue(ctx, n, "artmesh_catalog_idempotency_keys")
	if err != nil {
		return res, err
	}
	res.kept = int64(kept)
	return res, nil
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// metricValue reads one unlabelled metric from the node's /metrics.
func metricValue(ctx context.Context, n *node, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("/metrics has no %s", name)
}
