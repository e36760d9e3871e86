package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The fan-out bench models hosts with capped uplinks: each node runs in a
// network namespace of its own, joined to the others by a bridge, and
// its side of the link is shaped by tc to fanoutRate. One node holds a
// 256 MiB artifact; first one other node fetches it alone (a pin), then
// four fetch another 256 MiB artifact at once. One source feeding four
// would take four times as long; nodes that serve each other what they
// have verified take far less.

const (
	fanoutSize   = 256 << 20
	fanoutRate   = "200mbit" // 25 MB/s per uplink
	fanoutNodes  = 5         // one holder, four fetchers
	fanoutBridge = "amfanbr"
	fanoutNet    = "10.231.7."
)

// benchFanout runs the fan-out bench where the machine allows network
// namespaces (root, iproute2), and says so where it does not.
func benchFanout(bin, work string) error {
	const name = "fan-out: 4 nodes fetch one 256 MiB artifact, uplinks " + fanoutRate
	if os.Geteuid() != 0 {
		report(name, "skipped: needs root for network namespaces", "")
		return nil
	}
	if _, err := exec.LookPath("ip"); err != nil {
		report(name, "skipped: no ip command (iproute2)", "")
		return nil
	}
	if _, err := exec.LookPath("tc"); err != nil {
		report(name, "skipped: no tc command (iproute2)", "")
		return nil
	}
	fanoutTeardown()
	defer fanoutTeardown()
	if err := fanoutSetup(); err != nil {
		report(name, "skipped: network namespaces unavailable here ("+err.Error()+")", "")
		return nil
	}
	var nodes []*node
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	src, err := startInNS(bin, filepath.Join(work, "fan-0"), 0, nil)
	if err != nil {
		return err
	}
	nodes = append(nodes, src)
	// One copy per version: no replication competes for the links.
	if err := src.put("/v1/mesh/policy", `{"replication_factor": 1, "write_replicas": 1}`); err != nil {
		return err
	}
	for i := 1; i < fanoutNodes; i++ {
		n, err := startInNS(bin, filepath.Join(work, fmt.Sprintf("fan-%d", i)), i, src)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	data := make([]byte, fanoutSize)
	ids := make([]string, 2)
	for k := range ids {
		fillRandom(data, uint64(k+1))
		var a struct {
			ID string `json:"id"`
		}
		if err := src.post("/v1/artifacts?name=weights.bin", bytes.NewReader(data), "application/octet-stream", &a); err != nil {
			return err
		}
		ids[k] = a.ID
		// The source pins what it serves: with a factor of 1, the first
		// fetcher to hold a copy would otherwise let it give its own up.
		if _, err := pinAll([]*node{src}, a.ID); err != nil {
			return err
		}
	}
	fetchers := nodes[1:]
	for _, n := range fetchers {
		if err := n.get("/v1/artifacts?limit=1&consistent=true", new(struct{})); err != nil {
			return err
		}
	}
	alone, err := pinAll(fetchers[:1], ids[0])
	if err != nil {
		return err
	}
	// The first fetcher holds it now too: a second one fetches it from
	// two holders.
	if err := fetchers[1].get("/v1/artifacts?limit=1&consistent=true", new(struct{})); err != nil {
		return err
	}
	two, err := pinAll(fetchers[1:2], ids[0])
	if err != nil {
		return err
	}
	report("fetch of 256 MiB from two holders, uplinks "+fanoutRate, fmt.Sprintf("%s = %.2f x faster than one holder (%s)", two.Round(10*time.Millisecond), alone.Seconds()/two.Seconds(), alone.Round(10*time.Millisecond)), "> 1 x (two holders faster than one)")
	together, err := pinAll(fetchers, ids[1])
	if err != nil {
		return err
	}
	ratio := together.Seconds() / alone.Seconds()
	report(name, fmt.Sprintf("one alone %s, four at once %s = %.2f x", alone.Round(10*time.Millisecond), together.Round(10*time.Millisecond), ratio), "<= 1.6 x alone (one source alone: 4 x)")
	return nil
}

// pinAll pins an artifact on every node at once and waits until each has
// it, verified and durable; it returns how long the slowest took.
func pinAll(nodes []*node, id string) (time.Duration, error) {
	t0 := time.Now()
	for _, n := range nodes {
		if err := n.put("/v1/pins/"+id, "", 202); err != nil {
			return 0, err
		}
	}
	deadline := t0.Add(5 * time.Minute)
	left := append([]*node(nil), nodes...)
	for len(left) > 0 {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d nodes had not pinned %s after 5 minutes", len(left), id)
		}
		time.Sleep(20 * time.Millisecond)
		var still []*node
		for _, n := range left {
			var pins struct {
				Items []struct {
					ArtifactID string `json:"artifact_id"`
					State      string `json:"state"`
					Error      string `json:"error"`
				} `json:"items"`
			}
			if err := n.get("/v1/pins", &pins); err != nil {
				return 0, err
			}
			pinned := false
			for _, p := range pins.Items {
				if p.ArtifactID != id {
					continue
				}
				if p.State == "failed" {
					return 0, fmt.Errorf("the pin of %s failed: %s", id, p.Error)
				}
				pinned = p.State == "pinned"
			}
			if !pinned {
				still = append(still, n)
			}
		}
		left = still
	}
	return time.Since(t0), nil
}

// fillRandom fills b with bytes from a seeded generator: content that
// shares no block with another seed's.
func fillRandom(b []byte, seed uint64) {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7})
	_, _ = r.Read(b)
}

func nsName(i int) string { return fmt.Sprintf("amfan%d", i) }
func nsAddr(i int) string { return fmt.Sprintf("%s%d", fanoutNet, 10+i) }

// fanoutSetup makes the bridge, one namespace per node with a veth pair
// to the bridge, and the uplink cap on each namespace's side.
func fanoutSetup() error {
	steps := [][]string{
		{"link", "add", fanoutBridge, "type", "bridge"},
		{"addr", "add", fanoutNet + "1/24", "dev", fanoutBridge},
		{"link", "set", fanoutBridge, "up"},
	}
	for i := range fanoutNodes {
		ns, host, peer := nsName(i), fmt.Sprintf("amfh%d", i), fmt.Sprintf("amfp%d", i)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"link", "add", host, "type", "veth", "peer", "name", peer},
			[]string{"link", "set", peer, "netns", ns},
			[]string{"link", "set", host, "master", fanoutBridge},
			[]string{"link", "set", host, "up"},
			[]string{"netns", "exec", ns, "ip", "addr", "add", nsAddr(i) + "/24", "dev", peer},
			[]string{"netns", "exec", ns, "ip", "link", "set", peer, "up"},
			[]string{"netns", "exec", ns, "ip", "link", "set", "lo", "up"},
			[]string{"netns", "exec", ns, "tc", "qdisc", "add", "dev", peer, "root", "tbf", "rate", fanoutRate, "burst", "256kb", "latency", "50ms"},
		)
	}
	for _, args := range steps {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// fanoutTeardown removes what fanoutSetup made, and what an earlier run
// that was killed left behind.
func fanoutTeardown() {
	for i := range fanoutNodes {
		_ = exec.Command("ip", "netns", "del", nsName(i)).Run()
		_ = exec.Command("ip", "link", "del", fmt.Sprintf("amfh%d", i)).Run()
	}
	_ = exec.Command("ip", "link", "del", fanoutBridge).Run()
}

// startInNS starts node i in its namespace, its API and libp2p on the
// namespace's address; with an inviter, it first joins the inviter's
// mesh.
func startInNS(bin, repo string, i int, inviter *node) (*node, error) {
	ns, addr := nsName(i), nsAddr(i)
	listen := "/ip4/" + addr + "/tcp/4001"
	key := ""
	if inviter != nil {
		var inv struct {
			Ticket string `json:"ticket"`
		}
		if err := inviter.post("/v1/mesh/invites", strings.NewReader(`{"expires_in": 600}`), "application/json", &inv); err != nil {
			return nil, err
		}
		cmd := exec.Command("ip", "netns", "exec", ns, bin, "init", "--join", inv.Ticket, "--listen", listen)
		cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("init --join in %s: %v: %s", ns, err, out)
		}
		key = inviter.key
	}
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "daemon", "--init", "--api", addr+":7480", "--listen", listen, "--log-level", cmp.Or(os.Getenv("BENCH_LOG_LEVEL"), "error"))
	cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
	// Its own process group: stop signals the daemon, not just ip.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(repo + ".log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &node{cmd: cmd, done: make(chan struct{}), url: "http://" + addr + ":7480", key: key}
	go func() { cmd.Wait(); close(n.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if n.key == "" {
			if k, err := os.ReadFile(filepath.Join(repo, "api.key")); err == nil {
				n.key = strings.TrimSpace(string(k))
			}
		}
		if n.key != "" {
			if resp, err := n.req("GET", "/readyz", nil, ""); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return n, nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.stop()
	return nil, errors.New("the daemon in " + ns + " did not become ready; see " + repo + ".log")
}
