//go:build slow

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"
)

// The slow e2e suite: tests that take minutes by design (they wait out
// real downtimes). `make test-slow` runs them, and so does .ci/run after
// `make test`, which they would push past its ten minutes.

// TestFollowerRestartKeepsItsOnlyCopy: in a mesh of three (A first and
// leader, B and C joined with tickets) with replication factor 1, B holds
// the only copy of what was created through it. B is stopped for 5, 15
// and 30 s while writes go on, once with the leader up and once with the
// leader killed and restarted meanwhile (a new election; writes through
// the new leader). On its restart B answers every request with a valid
// key correctly or with 503 + Retry-After (never 401, never 404), /readyz
// is 503 until B has caught up, and after an explicit collection, with A
// and C paused, B serves every artifact created through it, byte for byte.
func TestFollowerRestartKeepsItsOnlyCopy(t *testing.T) {
	a, b, c := newMesh3(t)
	writer := a.addAgent(t, "writer")
	setFactor1(t, a)
	if l := leaderOf(t, a, b, c); l != a {
		t.Fatalf("the first node does not lead the new mesh")
	}
	cases := []struct {
		name         string
		down         time.Duration
		kill         bool // SIGKILL B rather than SIGTERM
		leaderChange bool
	}{
		{"down5s", 5 * time.Second, false, false},
		{"down15s-killed", 15 * time.Second, true, false},
		{"down30s", 30 * time.Second, false, false},
		{"down5s-new-leader", 5 * time.Second, false, true},
		{"down15s-killed-new-leader", 15 * time.Second, true, true},
		{"down30s-new-leader", 30 * time.Second, false, true},
	}
	all := map[string]blob{} // every acknowledged artifact of writer's
	var kept []blob          // B's artifacts B served alone in earlier cases
	seed := uint64(1000)
	for i, tc := range cases {
		ok := t.Run(tc.name, func(t *testing.T) {
			caseStart := time.Now()
			defer func() {
				if t.Failed() {
					t.Logf("B's log (tail):\n%s", tail(b.logs(), 5000))
				}
			}()
			// Start from a settled mesh in which B has applied everything,
			// whatever an earlier case left.
			waitMeshOf3(t, a, b, c)
			settled := time.Now().Add(60 * time.Second)
			for {
				st, _, body, err := httpDo(b, writer, "GET", "/v1/artifacts?consistent=true&limit=1", nil, 20*time.Second)
				if err == nil && st == 200 {
					break
				}
				if time.Now().After(settled) {
					t.Fatalf("B does not answer a consistent read: %d %s %v", st, short(body), err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			leader := leaderOf(t, a, b, c)
			if leader == b {
				// An earlier case's pause of A and C let B win an election
				// when they came back. Hand the lead back to A or C:
				// pause B until they elect one of themselves.
				t.Logf("B leads at the start of the case; pausing it until A or C leads")
				b.pause()
				leaderOf(t, a, c) // waits until A or C leads
				b.resume()
				waitMeshOf3(t, a, b, c)
				if leader = leaderOf(t, a, b, c); leader == b {
					t.Fatal("B leads the catalog at the start of the case; the scenario needs it to be a follower")
				}
			}
			var mine []blob
			for j := 0; j < 2; j++ {
				seed++
				x := createBlob(t, b, writer, fmt.Sprintf("%s-via-b-%d.bin", tc.name, j), 1<<20+int64(j)*(512<<10), seed, "B")
				mine = append(mine, x)
				all[x.art.ID] = x
			}
			stopped := time.Now()
			if tc.kill {
				b.kill()
			} else {
				b.stop()
			}
			// Writes while B is down.
			nodes := map[*daemon]string{a: "A", c: "C"}
			if tc.leaderChange {
				old := leader
				old.kill()
				restarted := relaunch(t, old)
				if old == a {
					a = restarted
				} else {
					c = restarted
				}
				waitReady(t, restarted, 60*time.Second)
				nodes = map[*daemon]string{a: "A", c: "C"}
			}
			lead := leaderOf(t, a, c)
			other := a
			if lead == a {
				other = c
			}
			seed++
			x := createBlob(t, lead, writer, tc.name+"-via-leader.bin", 256<<10, seed, nodes[lead])
			all[x.art.ID] = x
			x = createSnippet(t, other, writer, tc.name+"-via-other.json", map[string]any{"case": tc.name}, nodes[other])
			all[x.art.ID] = x
			lateKey := other.addAgent(t, fmt.Sprintf("late-%d", i))
			if took := time.Since(stopped); took < tc.down {
				time.Sleep(tc.down - took) // the scenario: B stays down
			}
			downFor := time.Since(stopped)
			restarted := time.Now()
			b = relaunch(t, b)
			listening := time.Since(restarted)
			readyIn, probes := probeCatchUp(t, b, writer, lateKey, all)
			probes.report(t)
			t.Logf("B was down %s; on restart its API listened after %s and /readyz said 200 %s later; meanwhile it answered %d probes correctly and %d with 503",
				downFor.Round(100*time.Millisecond), listening.Round(time.Millisecond), readyIn.Round(time.Millisecond), probes.ok, probes.unavail)
			checkCaughtUp(t, b, writer, all)

			var gc map[string]any
			b.call(t, "POST", "/v1/repo/gc", nil, 200, &gc)
			t.Logf("explicit collection on B: %v", gc)

			// B's copy is the only one: pause A and C and read from B.
			a.pause()
			c.pause()
			func() {
				defer c.resume()
				defer a.resume()
				// A copy B lost makes it wait for A or C, up to the client
				// timeout; after the first failure the rest are not tried,
				// so that A and C are not paused for long.
				earlier := kept
				for i, x := range mine {
					if !downloadExact(t, b, writer, x, 15*time.Second, "B alone, this case's artifact") {
						t.Errorf("B alone: %d more of this case's and %d of earlier cases' artifacts not tried", len(mine)-i-1, len(earlier))
						return
					}
					kept = append(kept, x)
				}
				for i, x := range earlier {
					if !downloadExact(t, b, writer, x, 15*time.Second, "B alone, an earlier case's artifact") {
						t.Errorf("B alone: %d more of earlier cases' artifacts not tried", len(earlier)-i-1)
						// Reported once: later cases check the rest.
						kept = append(earlier[:i:i], kept[i+1:]...)
						return
					}
				}
			}()
			waitMeshOf3(t, a, b, c)
			t.Logf("case took %s", time.Since(caseStart).Round(100*time.Millisecond))
		})
		if !ok {
			// Keep going with the next case only if the mesh is whole.
			select {
			case <-b.done:
				t.Fatalf("B is not running after case %s", tc.name)
			default:
			}
		}
	}
}

// probeLog tallies the answers a catching-up node gave: each must be the
// correct answer or 503 with Retry-After.
type probeLog struct {
	bad     map[string]int
	first   map[string]string
	unavail int
	ok      int
}

func newProbeLog() *probeLog {
	return &probeLog{bad: map[string]int{}, first: map[string]string{}}
}

func (p *probeLog) fail(kind, msg string) {
	p.bad[kind]++
	if _, ok := p.first[kind]; !ok {
		p.first[kind] = msg
	}
}

// check classifies one answer; correct says what is wrong with a 200 body
// ("" when it is right).
func (p *probeLog) check(kind string, st int, h http.Header, body []byte, err error, correct func([]byte) string) {
	switch {
	case err != nil:
		p.fail(kind, "no answer: "+err.Error())
	case st == 503:
		if h.Get("Retry-After") == "" || errorCode(body) != "unavailable" {
			p.fail(kind, fmt.Sprintf("503 without Retry-After or code unavailable: Retry-After %q, %s", h.Get("Retry-After"), short(body)))
			return
		}
		p.unavail++
	case st == 200:
		if msg := correct(body); msg != "" {
			p.fail(kind, "200 with a wrong answer: "+msg)
			return
		}
		p.ok++
	default:
		p.fail(kind, fmt.Sprintf("%d %s", st, short(body)))
	}
}

func (p *probeLog) report(t *testing.T) {
	t.Helper()
	kinds := keysOf(p.bad)
	sort.Strings(kinds)
	for _, k := range kinds {
		t.Errorf("while catching up, %s: %d bad answers (want the correct answer or 503 with Retry-After); first: %s", k, p.bad[k], p.first[k])
	}
}

// probeCatchUp hammers a node that was just started, until its /readyz
// answers 200, with requests whose correct answers are known: every one
// must be correct or a 503 with Retry-After. /readyz itself must answer
// 503 until then. It returns how long the node took to be ready.
func probeCatchUp(t *testing.T, d *daemon, key, lateKey string, all map[string]blob) (time.Duration, *probeLog) {
	t.Helper()
	start := time.Now()
	p := newProbeLog()
	ids := keysOf(all)
	sort.Strings(ids)
	var withData []blob
	for _, id := range ids {
		if all[id].data != nil {
			withData = append(withData, all[id])
		}
	}
	const timeout = 20 * time.Second
	for round := 0; ; round++ {
		st, _, body, err := httpDo(d, "", "GET", "/readyz", nil, timeout)
		if err == nil && st == 200 {
			return time.Since(start), p
		}
		if err != nil || st != 503 {
			p.fail("GET /readyz", fmt.Sprintf("%d %s %v, want 503 until caught up", st, short(body), err))
		}
		if time.Since(start) > 90*time.Second {
			p.report(t)
			t.Fatalf("not ready 90s after its restart (last /readyz %d %s)\nlog:\n%s", st, body, tail(d.logs(), 4000))
		}
		// One artifact's object.
		want := all[ids[round%len(ids)]].art
		st, h, body, err := httpDo(d, key, "GET", "/v1/artifacts/"+want.ID, nil, timeout)
		p.check("GET /v1/artifacts/{id}", st, h, body, err, func(b []byte) string {
			var got artifact
			if json.Unmarshal(b, &got) != nil || got.ID != want.ID || got.CID != want.CID || got.Version != want.Version {
				return fmt.Sprintf("%s, want id %s cid %s version %d", b, want.ID, want.CID, want.Version)
			}
			return ""
		})
		// One artifact's bytes.
		bl := withData[round%len(withData)]
		st, h, body, err = httpDo(d, key, "GET", "/v1/artifacts/"+bl.art.ID+"/content", nil, timeout)
		p.check("GET /v1/artifacts/{id}/content", st, h, body, err, func(b []byte) string {
			if string(b) != string(bl.data) {
				return fmt.Sprintf("%d bytes that differ from the %d created", len(b), len(bl.data))
			}
			return ""
		})
		// The whole list.
		st, h, body, err = httpDo(d, key, "GET", "/v1/artifacts?limit=1000", nil, timeout)
		p.check("GET /v1/artifacts", st, h, body, err, func(b []byte) string {
			var pg artifactPage
			if json.Unmarshal(b, &pg) != nil || pg.total() != len(all) || len(idSet(pg)) != len(all) {
				return fmt.Sprintf("total %d, %d items; want %d", pg.total(), len(pg.Items), len(all))
			}
			for id := range all {
				if !idSet(pg)[id] {
					return "missing " + id
				}
			}
			return ""
		})
		// The node's own admin key.
		st, h, body, err = httpDo(d, d.key, "GET", "/v1/repo/stat", nil, timeout)
		p.check("GET /v1/repo/stat (the node's admin key)", st, h, body, err, func(b []byte) string {
			var rs repoStat
			if json.Unmarshal(b, &rs) != nil {
				return string(b)
			}
			return ""
		})
		// A key made while the node was down.
		st, h, body, err = httpDo(d, lateKey, "GET", "/v1/artifacts", nil, timeout)
		p.check("GET /v1/artifacts (a key made while the node was down)", st, h, body, err, func(b []byte) string {
			var pg artifactPage
			if json.Unmarshal(b, &pg) != nil || pg.total() != 0 {
				return fmt.Sprintf("%s, want an empty list", b)
			}
			return ""
		})
		time.Sleep(10 * time.Millisecond)
	}
}

// checkCaughtUp checks, right after /readyz said 200, that d's local
// (non-consistent) reads show every acknowledged artifact.
func checkCaughtUp(t *testing.T, d *daemon, key string, all map[string]blob) {
	t.Helper()
	var pg artifactPage
	st, _, body, err := httpDo(d, key, "GET", "/v1/artifacts?limit=1000", nil, 20*time.Second)
	if err != nil || st != 200 || json.Unmarshal(body, &pg) != nil {
		t.Fatalf("right after /readyz answered 200: GET /v1/artifacts: %d %s %v, want 200 listing the %d acknowledged artifacts", st, short(body), err, len(all))
	}
	got := idSet(pg)
	var missing []string
	for id, b := range all {
		if !got[id] {
			missing = append(missing, id+" ("+b.art.Name+")")
		}
	}
	if pg.total() != len(all) || len(missing) > 0 {
		t.Errorf("right after /readyz answered 200, the node lists %d artifacts, want %d; missing %v", pg.total(), len(all), missing)
	}
	for _, b := range all {
		var got artifact
		st, _, body, err := httpDo(d, key, "GET", "/v1/artifacts/"+b.art.ID, nil, 20*time.Second)
		if err != nil || st != 200 || json.Unmarshal(body, &got) != nil || got.CID != b.art.CID {
			t.Errorf("after ready, GET /v1/artifacts/%s (%s): %d %s %v, want 200 with cid %s", b.art.ID, b.art.Name, st, short(body), err, b.art.CID)
		}
	}
}

// idSet is the ids of a page's items.
func idSet(p artifactPage) map[string]bool {
	out := map[string]bool{}
	for _, a := range p.Items {
		out[a.ID] = true
	}
	return out
}
