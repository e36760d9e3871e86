package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReplicationKeepsUp is a short version of the bench's keep-up
// scenario: 5 nodes with the default policy (factor 2, one synchronous
// copy) take 20 mixed creates/s (64 B to 1.5 MB) for 15 s, spread over
// the nodes. Nearly every version has its factor when its write answers,
// the under-replicated count never exceeds 2 x (writes/s x 10 s), and
// every version has its factor within 30 s of its write.
func TestReplicationKeepsUp(t *testing.T) {
	const (
		rate     = 20
		duration = 15 * time.Second
		bound    = 2 * rate * 10
	)
	ds := meshOf(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), duration+time.Minute)
	defer cancel()

	type write struct {
		id    string
		node  *daemon // the writer, which has applied its write
		ackAt time.Time
	}
	var (
		mu        sync.Mutex
		writes    []write
		errs      []error
		fullAtAck int // versions with their factor when the write answered
	)
	// The writers: the pacer hands out one job per 1/rate s; 8 workers
	// run them.
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r := rand.New(rand.NewPCG(uint64(i), 15))
				var size int64
				switch p := r.IntN(100); {
				case p < 60:
					size = 64 + r.Int64N(4096)
				case p < 85:
					size = 4096 + r.Int64N(256<<10)
				default:
					size = 256<<10 + r.Int64N(1_500_000-256<<10)
				}
				d := ds[i%len(ds)]
				id, err := createOnce(d, fmt.Sprintf("k%d.bin", i), size, uint64(1000+i))
				ackAt := time.Now()
				var full bool
				if err == nil {
					full, err = atFactor(d, id)
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					writes = append(writes, write{id, d, ackAt})
					if full {
						fullAtAck++
					}
				}
				mu.Unlock()
			}
		}()
	}
	tick := time.NewTicker(time.Second / rate)
	maxUnder := 0
	lastSample := time.Time{}
	for i, end := 0, time.Now().Add(duration); time.Now().Before(end); i++ {
		<-tick.C
		jobs <- i
		if time.Since(lastSample) >= time.Second {
			lastSample = time.Now()
			if u, err := underReplicated(ctx, ds[0]); err == nil {
				maxUnder = max(maxUnder, u)
			}
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d creates failed; the first: %v", len(errs), errs[0])
	}
	if len(writes) < int(rate*duration.Seconds())*9/10 {
		t.Fatalf("only %d creates in %s", len(writes), duration)
	}
	// Every version has its factor within 30 s of its write.
	pending := writes
	for len(pending) > 0 {
		var still []write
		for _, w := range pending {
			p := w.node.placement(t, w.id)
			if len(p) != 1 || len(p[0].Holders) < p[0].Factor {
				still = append(still, w)
			}
		}
		if u, err := underReplicated(ctx, ds[0]); err == nil {
			maxUnder = max(maxUnder, u)
		}
		if len(still) > 0 && time.Since(still[0].ackAt) > 30*time.Second {
			t.Fatalf("%d of %d versions below their factor 30 s after their write (the first: %s)", len(still), len(writes), still[0].id)
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(500 * time.Millisecond) // a poll: the deadline above ends it
		}
	}
	// Writes of up to 16 MiB push their second copy while they are
	// written: nearly every version has its factor at once (an extra
	// copy that would make a write wait is left to repair).
	if fullAtAck < len(writes)*9/10 {
		t.Fatalf("%d of %d versions had their factor when their write answered, want at least 90 %%", fullAtAck, len(writes))
	}
	if maxUnder > bound {
		t.Fatalf("up to %d versions under-replicated, bound %d", maxUnder, bound)
	}
	t.Logf("%d creates in %s, %d with their factor at once, at most %d under-replicated (bound %d)", len(writes), duration, fullAtAck, maxUnder, bound)
}

// createOnce creates an artifact of patterned bytes on d, once, without
// failing the test (it runs on the writers' goroutines), and returns its
// id.
func createOnce(d *daemon, name string, size int64, seed uint64) (string, error) {
	code, _, body, err := httpDo(d, d.key, "POST", "/v1/artifacts?name="+name, &patterned{n: size, seed: seed}, 60*time.Second)
	if err != nil || code != 201 {
		return "", fmt.Errorf("create %s on %s: %v %d %s", name, d.url, err, code, body)
	}
	var a artifact
	err = json.Unmarshal(body, &a)
	return a.ID, err
}

// atFactor reports whether d's placement of artifact id shows as many
// holders as its factor.
func atFactor(d *daemon, id string) (bool, error) {
	code, _, body, err := httpDo(d, d.key, "GET", "/v1/artifacts/"+id+"/placement", nil, 10*time.Second)
	if err != nil || code != 200 {
		return false, fmt.Errorf("placement of %s on %s: %v %d %s", id, d.url, err, code, body)
	}
	var p struct {
		Items []versionPlacement `json:"items"`
	}
	if err := json.Unmarshal(body, &p); err != nil || len(p.Items) != 1 {
		return false, fmt.Errorf("placement of %s on %s: %v %s", id, d.url, err, body)
	}
	return len(p.Items[0].Holders) >= p.Items[0].Factor, nil
}

// underReplicated reads the mesh's under-replicated count from d's
// /metrics.
func underReplicated(ctx context.Context, d *daemon) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", d.url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "artmesh_replication_under_replicated_versions "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return int(v), err
		}
	}
	return 0, fmt.Errorf("no under-replicated gauge in /metrics of %s", d.url)
}
