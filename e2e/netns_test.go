package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// netNode is a network namespace of its own for one node: a veth pair
// joins it to a bridge in the test's namespace, which has the subnet's
// .254, so that the test reaches every node's API and can cut any node off
// from the others alone (partition) while its API still answers the test.
type netNode struct {
	ns, ip string
	subnet string // a.b.c.0/24
	bridge string // a.b.c.254
}

// newNetNodes makes n namespaces on a bridge, or returns false where the
// test cannot (not root, no ip or iptables, no namespaces); they are
// removed when t ends.
func newNetNodes(t *testing.T, n int) ([]netNode, bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, false
	}
	for _, cmd := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return nil, false
		}
	}
	tag := fmt.Sprintf("am%d", os.Getpid()%100000)
	third := 10 + os.Getpid()%200
	prefix := fmt.Sprintf("10.231.%d.", third)
	br := tag + "b"
	var undo []func()
	t.Cleanup(func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	})
	ip := func(args ...string) error {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	fail := func(err error) ([]netNode, bool) {
		t.Logf("no network namespaces here: %v", err)
		return nil, false
	}
	if err := ip("link", "add", br, "type", "bridge"); err != nil {
		return fail(err)
	}
	undo = append(undo, func() { _ = ip("link", "del", br) })
	for _, args := range [][]string{{"addr", "add", prefix + "254/24", "dev", br}, {"link", "set", br, "up"}} {
		if err := ip(args...); err != nil {
			return fail(err)
		}
	}
	var nodes []netNode
	for i := range n {
		ns, host, peer := fmt.Sprintf("%sn%d", tag, i), fmt.Sprintf("%sv%d", tag, i), fmt.Sprintf("%sp%d", tag, i)
		if err := ip("netns", "add", ns); err != nil {
			return fail(err)
		}
		undo = append(undo, func() { _ = ip("netns", "del", ns) })
		addr := fmt.Sprintf("%s%d", prefix, i+1)
		for _, args := range [][]string{
			{"link", "add", host, "type", "veth", "peer", "name", peer},
			{"link", "set", peer, "netns", ns},
			{"link", "set", host, "master", br},
			{"link", "set", host, "up"},
			{"netns", "exec", ns, "ip", "addr", "add", addr + "/24", "dev", peer},
			{"netns", "exec", ns, "ip", "link", "set", peer, "up"},
			{"netns", "exec", ns, "ip", "link", "set", "lo", "up"},
		} {
			if err := ip(args...); err != nil {
				return fail(err)
			}
		}
		nodes = append(nodes, netNode{ns: ns, ip: addr, subnet: prefix + "0/24", bridge: prefix + "254"})
	}
	return nodes, true
}

// cut drops, in the node's namespace, every packet to or from the other
// nodes (the test's address on the bridge excepted: the node's API still
// answers the test's clients); heal undoes it.
func (nn netNode) cut(t *testing.T) (heal func()) {
	t.Helper()
	// Inserted in this order, each at the top: the test's address is
	// let through before the rest of the subnet is dropped.
	rules := [][]string{
		{"INPUT", "-s", nn.subnet, "-j", "DROP"},
		{"INPUT", "-s", nn.bridge, "-j", "ACCEPT"},
		{"OUTPUT", "-d", nn.subnet, "-j", "DROP"},
		{"OUTPUT", "-d", nn.bridge, "-j", "ACCEPT"},
	}
	ipt := func(op string, r []string) error {
		args := append([]string{"netns", "exec", nn.ns, "iptables", "-w", op}, r...)
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables %s %v: %w: %s", op, r, err, out)
		}
		return nil
	}
	for _, r := range rules {
		if err := ipt("-I", r); err != nil {
			t.Fatal(err)
		}
	}
	var once sync.Once
	heal = func() {
		once.Do(func() {
			for _, r := range rules {
				if err := ipt("-D", r); err != nil {
					t.Error(err)
				}
			}
		})
	}
	t.Cleanup(heal)
	return heal
}
