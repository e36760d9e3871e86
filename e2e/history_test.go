package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// A history checker for the catalog, in the manner of Jepsen and etcd's
// robustness tests. Clients run creates, updates, shares, deletes and
// consistent reads of a few artifacts through every node of a 3-node mesh
// whose leader is, again and again, killed (SIGKILL) and restarted, or
// cut off from the other two for a few seconds: where the test may make
// network namespaces (root, with ip and iptables), each node runs in one
// of its own and the leader is partitioned from the others while it goes
// on answering its clients; elsewhere it is stopped (SIGSTOP) instead. Each
// operation is recorded with the times it was invoked and answered and
// its outcome; porcupine then looks for an order of the operations,
// consistent with those times, in which a single copy of the catalog gives
// every answer that was seen. A write answered outcome_unknown, or not
// answered at all, may or may not have taken effect: its end is open, and
// the model lets it apply or not. A write answered with a definite refusal
// did not take effect.
//
// `make test` runs one short seed; `make test-history` runs
// HISTORY_SEEDS seeds (20 by default) of HISTORY_DURATION (60s) each.

// histInput is an operation on one artifact (a slot).
type histInput struct {
	Slot  int
	Op    string // create, update, share, delete, read (version and value), access (who it is shared with)
	Value string // update: the new value; share: the agent
}

// histOutput is what the operation was answered.
type histOutput struct {
	Unknown  bool   // no answer, or outcome_unknown: it may or may not have taken effect
	Refused  bool   // a definite refusal that changed nothing (unavailable, or another 4xx/5xx but 404)
	NotFound bool   // 404: the artifact does not exist (not yet, or any more)
	Version  int    // update, read: the version answered
	Value    string // read: the value of the version
	Shared   string // access: the agents it is shared with, sorted, comma-separated
}

// histState is one artifact as the model holds it.
type histState struct {
	Exists, Deleted bool
	Version         int
	Value           string
	Shared          string
}

func addShared(shared, agent string) string {
	var s []string
	if shared != "" {
		s = strings.Split(shared, ",")
	}
	if !slices.Contains(s, agent) {
		s = append(s, agent)
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}

// histModel is the catalog as a single copy: each slot an artifact.
var histModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[int][]porcupine.Operation{}
		for _, op := range history {
			s := op.Input.(histInput).Slot
			by[s] = append(by[s], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() []any { return []any{histState{}} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(histState), input.(histInput), output.(histOutput)
		applied := st
		switch in.Op {
		case "create":
			if st.Exists {
				return nil // a slot is created once (its key makes retries one write)
			}
			applied = histState{Exists: true, Version: 1, Value: in.Value}
		case "update":
			if !st.Exists || st.Deleted {
				if out.NotFound || out.Unknown || out.Refused {
					return []any{st}
				}
				return nil
			}
			applied.Version, applied.Value = st.Version+1, in.Value
			if !out.Unknown && !out.Refused && out.Version != applied.Version {
				return nil
			}
		case "share":
			if !st.Exists || st.Deleted {
				if out.NotFound || out.Unknown || out.Refused {
					return []any{st}
				}
				return nil
			}
			applied.Shared = addShared(st.Shared, in.Value)
		case "delete":
			if !st.Exists || st.Deleted {
				if out.NotFound || out.Unknown || out.Refused {
					return []any{st}
				}
				return nil
			}
			applied.Deleted = true
		case "read", "access":
			if out.NotFound {
				if !st.Exists || st.Deleted {
					return []any{st}
				}
				return nil
			}
			if !st.Exists || st.Deleted {
				return nil
			}
			if in.Op == "read" && out.Version == st.Version && out.Value == st.Value ||
				in.Op == "access" && out.Shared == st.Shared {
				return []any{st}
			}
			return nil
		}
		switch {
		case out.Unknown:
			return []any{st, applied}
		case out.Refused:
			return []any{st}
		case out.NotFound:
			return nil // the write said not found where the artifact exists
		}
		return []any{applied}
	},
	Equal: func(a, b any) bool { return a.(histState) == b.(histState) },
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%+v -> %+v", input, output)
	},
}

// historyConfig is one run of the checker.
type historyConfig struct {
	seed     uint64
	duration time.Duration
	slots    int
	clients  int
	kills    bool // kill the leader again and again
	// nets, when the nodes run in network namespaces of their own (in
	// the order a, b, c), lets the run cut the leader off by a partition.
	nets []netNode
}

// histRecorder collects the operations of a run.
type histRecorder struct {
	mu    sync.Mutex
	start time.Time
	ops   []porcupine.Operation
}

func (r *histRecorder) now() int64 { return int64(time.Since(r.start)) }

// since is how long the run has been going, for logs.
func (r *histRecorder) since() time.Duration { return time.Since(r.start).Round(time.Millisecond) }

func (r *histRecorder) add(client int, in histInput, call int64, out histOutput) {
	ret := r.now()
	if out.Unknown {
		ret = 1 << 62 // open: it may take effect at any time after its call
	}
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
}

// runHistory runs a workload on the mesh a, b, c and returns its history.
func runHistory(t *testing.T, cfg historyConfig, a, b, c *daemon) []porcupine.Operation {
	nodes := []*daemon{a, b, c}
	writer := a.addAgent(t, "hist-writer")
	for i := range 3 {
		a.addAgent(t, fmt.Sprintf("hist-reader-%d", i))
	}
	rec := &histRecorder{start: time.Now()}
	ids := make([]string, cfg.slots)
	var idsMu sync.RWMutex
	node := func(i int) *daemon {
		idsMu.RLock()
		defer idsMu.RUnlock()
		return nodes[i%len(nodes)]
	}

	// Each slot is created once, with a key: sent again until answered.
	for s := range cfg.slots {
		call := rec.now()
		in := histInput{Slot: s, Op: "create", Value: fmt.Sprintf("s%d-v0", s)}
		ids[s] = createSlot(t, node(s), writer, in, time.Now().Add(60*time.Second))
		rec.add(0, in, call, histOutput{})
	}

	stop := make(chan struct{})
	deletesFrom := time.Now().Add(cfg.duration * 7 / 10) // late, so that most of the run has artifacts to change
	var wg sync.WaitGroup
	for cl := range cfg.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.seed, uint64(cl)+1))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				s := rng.IntN(cfg.slots)
				d := node(rng.IntN(len(nodes)))
				in := histInput{Slot: s}
				switch r := rng.IntN(200); {
				case r < 80:
					in.Op = "read"
				case r < 100:
					in.Op = "access"
				case r < 175:
					in.Op, in.Value = "update", fmt.Sprintf("s%d-c%d-%d", s, cl, n)
				case r < 198 || time.Now().Before(deletesFrom):
					in.Op, in.Value = "share", fmt.Sprintf("hist-reader-%d", rng.IntN(3))
				default:
					in.Op = "delete"
				}
				call := rec.now()
				out, keep := histDo(d, writer, ids[s], in)
				if keep {
					rec.add(cl+1, in, call, out)
				}
				time.Sleep(time.Duration(5+rng.IntN(15)) * time.Millisecond)
			}
		}()
	}

	// Chaos: kill the leader (SIGKILL), or cut it off (SIGSTOP: it stops
	// answering anyone, as behind a partition, while the rest elect a
	// leader), then bring it back.
	if cfg.kills {
		rng := rand.New(rand.NewPCG(cfg.seed, 0))
		end := time.Now().Add(cfg.duration)
		for round := 0; time.Now().Before(end); round++ {
			time.Sleep(time.Duration(2000+rng.IntN(3000)) * time.Millisecond)
			i := histLeader(nodes)
			if i < 0 {
				continue
			}
			if round%2 == 1 {
				cut := time.Duration(3000+rng.IntN(2000)) * time.Millisecond
				if cfg.nets != nil {
					// The leader goes on taking its clients' writes, alone.
					heal := cfg.nets[i].cut(t)
					time.Sleep(cut)
					others := slices.Delete(slices.Clone(nodes), i, i+1)
					during := histLeader(others)
					heal()
					t.Logf("%s: cut the leader, node %d, off from the others for %s (their leader then: %d of the two)", rec.since(), i, cut, during)
					continue
				}
				nodes[i].pause()
				time.Sleep(cut)
				nodes[i].resume()
				t.Logf("%s: stopped the leader, node %d, for %s", rec.since(), i, cut)
				continue
			}
			nodes[i].kill()
			t.Logf("%s: killed the leader, node %d", rec.since(), i)
			time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
			d := relaunch(t, nodes[i])
			idsMu.Lock()
			nodes[i] = d
			idsMu.Unlock()
		}
	} else {
		time.Sleep(cfg.duration)
	}
	close(stop)
	wg.Wait()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.ops
}

// createSlot creates a slot's artifact with an idempotency key, sending it
// again until it is answered, and returns its id.
func createSlot(t *testing.T, d *daemon, key string, in histInput, deadline time.Time) string {
	t.Helper()
	for {
		st, _, body, err := httpDo(d, key, "POST", "/v1/artifacts?name="+fmt.Sprintf("slot-%d", in.Slot), in.Value, 10*time.Second,
			"Idempotency-Key", fmt.Sprintf("slot-%d", in.Slot), "Artifact-Metadata", `{"v":"`+in.Value+`"}`, "Content-Type", "text/plain")
		if err == nil && st == 201 {
			var a artifact
			if err := json.Unmarshal(body, &a); err != nil {
				t.Fatal(err)
			}
			return a.ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("creating slot %d: %d %s %v", in.Slot, st, short(body), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// histDo performs one operation and classifies its answer; keep is false
// for a read that was not answered (it changed nothing and says nothing).
func histDo(d *daemon, key, id string, in histInput) (out histOutput, keep bool) {
	const timeout = 10 * time.Second
	var st int
	var body []byte
	var err error
	switch in.Op {
	case "update":
		st, _, body, err = httpDo(d, key, "PUT", "/v1/artifacts/"+id+"/content", in.Value, timeout,
			"Artifact-Metadata", `{"v":"`+in.Value+`"}`)
	case "share":
		st, _, body, err = httpDo(d, key, "POST", "/v1/artifacts/"+id+"/share", map[string]any{"agents": []string{in.Value}}, timeout)
	case "delete":
		st, _, body, err = httpDo(d, key, "DELETE", "/v1/artifacts/"+id, nil, timeout)
	case "read":
		st, _, body, err = httpDo(d, key, "GET", "/v1/artifacts/"+id+"?consistent=true", nil, timeout)
		if err != nil || st != 200 && st != 404 {
			return out, false
		}
		if st == 404 {
			return histOutput{NotFound: true}, true
		}
		var a struct {
			Version  int               `json:"version"`
			Metadata map[string]string `json:"metadata"`
		}
		if json.Unmarshal(body, &a) != nil {
			return out, false
		}
		return histOutput{Version: a.Version, Value: a.Metadata["v"]}, true
	case "access":
		st, _, body, err = httpDo(d, key, "GET", "/v1/artifacts/"+id+"/access?consistent=true", nil, timeout)
		if err != nil || st != 200 && st != 404 {
			return out, false
		}
		if st == 404 {
			return histOutput{NotFound: true}, true
		}
		var acc struct {
			Agents []string `json:"agents"`
		}
		if json.Unmarshal(body, &acc) != nil {
			return out, false
		}
		slices.Sort(acc.Agents)
		return histOutput{Shared: strings.Join(acc.Agents, ",")}, true
	}
	switch {
	case err != nil:
		return histOutput{Unknown: true}, true
	case st == 404:
		return histOutput{NotFound: true}, true
	case st == 503 && errorCode(body) == "outcome_unknown":
		return histOutput{Unknown: true}, true
	case st >= 300:
		return histOutput{Refused: true}, true
	}
	if in.Op == "update" {
		var a struct {
			Version int `json:"version"`
		}
		if json.Unmarshal(body, &a) != nil {
			return histOutput{Unknown: true}, true
		}
		return histOutput{Version: a.Version}, true
	}
	return histOutput{}, true
}

// histLeader returns the index of the node that leads, or -1.
func histLeader(nodes []*daemon) int {
	for _, d := range nodes {
		var ms struct {
			Items []memberInfo `json:"items"`
		}
		st, _, body, err := httpDo(d, d.key, "GET", "/v1/mesh/members", nil, 3*time.Second)
		if err != nil || st != 200 || json.Unmarshal(body, &ms) != nil {
			continue
		}
		for _, m := range ms.Items {
			if !m.Leader {
				continue
			}
			for i, x := range nodes {
				var info struct {
					PeerID string `json:"peer_id"`
				}
				st, _, body, err := httpDo(x, x.key, "GET", "/v1/node", nil, 3*time.Second)
				if err == nil && st == 200 && json.Unmarshal(body, &info) == nil && info.PeerID == m.PeerID {
					return i
				}
			}
		}
	}
	return -1
}

// checkHistory checks a history and reports what it found.
func checkHistory(t *testing.T, ops []porcupine.Operation) porcupine.CheckResult {
	t.Helper()
	counts := map[string]int{}
	for _, op := range ops {
		out := op.Output.(histOutput)
		k := op.Input.(histInput).Op
		switch {
		case out.Unknown:
			k += " unknown"
		case out.Refused:
			k += " refused"
		case out.NotFound:
			k += " not found"
		}
		counts[k]++
	}
	res, info := porcupine.CheckOperationsVerbose(histModel.ToModel(), ops, 2*time.Minute)
	t.Logf("%d operations %v: %s", len(ops), counts, res)
	if res == porcupine.Illegal {
		if f, err := os.CreateTemp("", "artmesh-history-*.html"); err == nil {
			if porcupine.Visualize(histModel.ToModel(), info, f) == nil {
				t.Logf("the history, drawn: %s", f.Name())
			}
			f.Close()
		}
	}
	return res
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestHistoryLinearizable runs the workload with leader kills and checks
// that the history is linearizable: HISTORY_SEEDS seeds (1 by default) of
// HISTORY_DURATION (15s by default) each.
func TestHistoryLinearizable(t *testing.T) {
	seeds := envInt("HISTORY_SEEDS", 1)
	duration := 15 * time.Second
	if d, err := time.ParseDuration(os.Getenv("HISTORY_DURATION")); err == nil && d > 0 {
		duration = d
	}
	first := uint64(envInt("HISTORY_FIRST_SEED", 1))
	for seed := first; seed < first+uint64(seeds); seed++ {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			nets, _ := newNetNodes(t, 3) // nil where namespaces cannot be made: no partitions then
			a, b, c := newMesh3In(t, binary, nets)
			ops := runHistory(t, historyConfig{seed: seed, duration: duration, slots: 4, clients: 6, kills: true, nets: nets}, a, b, c)
			if res := checkHistory(t, ops); res != porcupine.Ok {
				t.Fatalf("seed %d: the history is %s", seed, res)
			}
		})
	}
}

// TestHistoryCheckerCatchesStaleReads runs the workload on nodes of a test
// build whose read path is broken (ARTMESH_TEST_STALE_READS: an artifact's
// info is served as it was read up to 3s ago), and checks that the checker
// finds the history not linearizable: a checker that cannot fail proves
// nothing.
func TestHistoryCheckerCatchesStaleReads(t *testing.T) {
	bin := testBinary(t)
	t.Setenv("ARTMESH_TEST_STALE_READS", "3s")
	a, b, c := newMesh3Bin(t, bin)
	ops := runHistory(t, historyConfig{seed: 7, duration: 8 * time.Second, slots: 2, clients: 4}, a, b, c)
	if res := checkHistory(t, ops); res != porcupine.Illegal {
		t.Fatalf("with stale reads the checker found the history %s, want Illegal", res)
	}
}
