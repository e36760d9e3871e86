package e2e

// Safety under restarts: no acknowledged artifact, and no node's only copy
// of one, is lost when nodes stop, crash, pause or lose their Raft folder,
// and a node that is catching up says so (503 + Retry-After) instead of
// answering wrongly (401, 404, a short list).

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// createSnippet creates a snippet through d, requiring 201.
func createSnippet(t testing.TB, d *daemon, key, name string, content any, via string) blob {
	t.Helper()
	var a artifact
	d.callAs(t, key, "POST", "/v1/snippets", map[string]any{"name": name, "content": content}, 201, &a)
	return blob{art: a, via: via}
}

// TestIsolatedLeaderWritesRejected pauses both followers of a mesh of
// three: writes to the isolated leader fail with 503. Then the leader is
// paused and the followers resumed: they elect a leader and take a write.
// The old leader, resumed, stopped and restarted, catches up and lists the
// acknowledged write, and none of its unacknowledged writes appear
// anywhere.
func TestIsolatedLeaderWritesRejected(t *testing.T) {
	a, b, c := newMesh3(t)
	writer := a.addAgent(t, "writer")
	leader := leaderOf(t, a, b, c)
	var followers []*daemon
	for _, d := range []*daemon{a, b, c} {
		if d != leader {
			followers = append(followers, d)
		}
	}
	createSnippet(t, leader, writer, "before", map[string]any{"x": 0}, "leader")

	followers[0].pause()
	followers[1].pause()
	// Wait until the leader has noticed that it is alone (it no longer
	// names a leader). A write sent in the moment after the pause may be
	// appended and sent on: a paused process's kernel still takes its TCP
	// data, so the followers would get the entry when resumed and commit
	// it, an outcome the leader cannot know (a real partition drops those
	// packets). Once the leader has stepped down it appends nothing.
	leaderID := peerIDOf(t, leader)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ms struct {
			Items []memberInfo `json:"items"`
		}
		st, _, body, err := httpDo(leader, leader.key, "GET", "/v1/mesh/members", nil, 5*time.Second)
		if err != nil || st != 200 || json.Unmarshal(body, &ms) != nil {
			t.Fatalf("the isolated leader's members: %d %s %v", st, short(body), err)
		}
		still := false
		for _, m := range ms.Items {
			still = still || (m.Leader && m.PeerID == leaderID)
		}
		if !still {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the isolated leader still leads 10s after both followers were paused: %s", short(body))
		}
		time.Sleep(50 * time.Millisecond)
	}
	const unacked = 3
	for i := 1; i <= unacked; i++ {
		start := time.Now()
		st, h, body, err := httpDo(leader, writer, "POST", "/v1/snippets", map[string]any{"name": fmt.Sprintf("unacked-%d", i), "content": map[string]any{"i": i}}, 20*time.Second)
		if err != nil {
			t.Errorf("write %d to the isolated leader: no answer within 20s: %v", i, err)
			continue
		}
		if st != 503 || h.Get("Retry-After") == "" {
			t.Errorf("write %d to the isolated leader: %d %s (Retry-After %q), want 503 with Retry-After", i, st, short(body), h.Get("Retry-After"))
		}
		t.Logf("write %d to the isolated leader answered %d after %s", i, st, time.Since(start).Round(time.Millisecond))
	}

	leader.pause()
	followers[0].resume()
	followers[1].resume()
	// The two elect a leader between them.
	var newLeader *daemon
	ids := map[string]*daemon{peerIDOf(t, followers[0]): followers[0], peerIDOf(t, followers[1]): followers[1]}
	deadline = time.Now().Add(30 * time.Second)
	for newLeader == nil {
		for _, f := range followers {
			var ms struct {
				Items []memberInfo `json:"items"`
			}
			st, _, body, err := httpDo(f, f.key, "GET", "/v1/mesh/members", nil, 5*time.Second)
			if err == nil && st == 200 && json.Unmarshal(body, &ms) == nil {
				for _, m := range ms.Items {
					if m.Leader && ids[m.PeerID] != nil {
						newLeader = ids[m.PeerID]
					}
				}
			}
		}
		if newLeader == nil && time.Now().After(deadline) {
			t.Fatal("the two followers did not elect a leader within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A write through a follower of the new leader (or the new leader);
	// 503 unavailable records nothing, so it is sent again; after 503
	// outcome_unknown the write may have happened, so look before.
	var acked artifact
	deadline = time.Now().Add(30 * time.Second)
	for {
		st, _, body, err := httpDo(followers[0], writer, "POST", "/v1/snippets", map[string]any{"name": "acked", "content": map[string]any{"ok": true}}, 20*time.Second)
		if err != nil {
			t.Fatalf("a write to the new majority: %v", err)
		}
		if st == 201 {
			mustJSON(t, string(body), &acked)
			break
		}
		if st != 503 || time.Now().After(deadline) {
			t.Fatalf("a write to the new majority: %d %s, want 201", st, short(body))
		}
		if errorCode(body) == "outcome_unknown" {
			if pg := listByName(t, followers[0], writer, "acked", true); len(pg.Items) == 1 {
				acked = pg.Items[0]
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}

	leader.resume()
	leader.stop()
	old := relaunch(t, leader)
	start := time.Now()
	waitReady(t, old, 60*time.Second)
	t.Logf("the old leader was ready %s after its restart", time.Since(start).Round(time.Millisecond))
	if pg := listByName(t, old, writer, "acked", false); len(pg.Items) != 1 || pg.Items[0].ID != acked.ID {
		t.Errorf("right after /readyz, the old leader lists %+v for the acknowledged write %s, want it alone", pg.Items, acked.ID)
	}
	for _, d := range []*daemon{old, followers[0], followers[1]} {
		for _, consistent := range []bool{false, true} {
			for i := 1; i <= unacked; i++ {
				if pg := listByName(t, d, writer, fmt.Sprintf("unacked-%d", i), consistent); len(pg.Items) != 0 {
					t.Errorf("%s (consistent %v): the unacknowledged write unacked-%d is visible: %+v", d.url, consistent, i, pg.Items)
				}
			}
			if pg := listByName(t, d, writer, "acked", consistent); len(pg.Items) != 1 || pg.Items[0].ID != acked.ID {
				t.Errorf("%s (consistent %v): the acknowledged write: %+v", d.url, consistent, pg.Items)
			}
		}
	}
}

// version is one version of an artifact and its bytes.
type version struct {
	id   string
	name string
	n    int
	data []byte
	via  string
}

// testWholeMeshRestart creates artifacts of a few MiB through each node
// of a mesh of three (one with a second version), restarts the whole mesh
// with restart, and checks that every node serves every acknowledged
// version byte for byte and that the placement of each version has a
// holder.
func testWholeMeshRestart(t *testing.T, restart func(a, b, c *daemon) (*daemon, *daemon, *daemon)) {
	a, b, c := newMesh3(t)
	writer := a.addAgent(t, "writer")
	var versions []version
	versionsOf := map[string]int{}
	seed := uint64(2000)
	for i, d := range []*daemon{a, b, c} {
		via := string(rune('A' + i))
		for j := 0; j < 2; j++ {
			seed++
			x := createBlob(t, d, writer, fmt.Sprintf("whole-%s-%d.bin", via, j), int64(2+j)<<20, seed, via)
			versions = append(versions, version{x.art.ID, x.art.Name, 1, x.data, via})
			versionsOf[x.art.ID] = 1
		}
	}
	// A second version, through C, of an artifact created through A.
	seed++
	v2 := patternBytes(3<<20, seed)
	var up artifact
	c.callAs(t, writer, "PUT", "/v1/artifacts/"+versions[0].id+"/content", v2, 201, &up, "Content-Type", "application/octet-stream")
	if up.Version != 2 {
		t.Fatalf("update answered version %d", up.Version)
	}
	versions = append(versions, version{up.ID, up.Name, 2, v2, "C"})
	versionsOf[up.ID] = 2

	start := time.Now()
	a, b, c = restart(a, b, c)
	for _, d := range []*daemon{a, b, c} {
		waitReady(t, d, 90*time.Second)
	}
	t.Logf("the mesh was ready %s after the restart began", time.Since(start).Round(100*time.Millisecond))

	// Placement first: downloads would make every node a holder.
	missing := map[int]int{}
	for i, d := range []*daemon{a, b, c} {
		for id, n := range versionsOf {
			st, _, body, err := httpDo(d, writer, "GET", "/v1/artifacts/"+id+"/placement", nil, 20*time.Second)
			var pl struct {
				Items []struct {
					Version int      `json:"version"`
					CID     string   `json:"cid"`
					Factor  int      `json:"factor"`
					Holders []string `json:"holders"`
					State   string   `json:"state"`
				} `json:"items"`
			}
			if err != nil || st != 200 || json.Unmarshal(body, &pl) != nil {
				if missing[i]++; missing[i] == 1 {
					t.Errorf("node %c: GET /v1/artifacts/%s/placement: %d %s %v, want 200 (further failures of this call on this node are counted, not shown)", 'A'+i, id, st, short(body), err)
				}
				continue
			}
			if len(pl.Items) != n {
				t.Errorf("node %c: placement of %s has %d versions, want %d: %s", 'A'+i, id, len(pl.Items), n, body)
			}
			for _, it := range pl.Items {
				if len(it.Holders) == 0 {
					t.Errorf("node %c: version %d of %s has no holder after the restart: %s", 'A'+i, it.Version, id, body)
				}
			}
		}
	}
	for i, n := range missing {
		if n > 1 {
			t.Errorf("node %c: GET placement failed for %d of %d artifacts", 'A'+i, n, len(versionsOf))
		}
	}
	for i, d := range []*daemon{a, b, c} {
		for _, v := range versions {
			path := fmt.Sprintf("/v1/artifacts/%s/content?version=%d", v.id, v.n)
			st, _, body, err := httpDo(d, writer, "GET", path, nil, 60*time.Second)
			if err != nil || st != 200 || string(body) != string(v.data) {
				t.Errorf("node %c: GET %s (%s v%d, created through %s): %d, %d bytes, identical %v, err %v; want 200 and the %d bytes: %s\nits log:\n%s",
					'A'+i, path, v.name, v.n, v.via, st, len(body), string(body) == string(v.data), err, len(v.data), short(body), tail(d.logs(), 6000))
			}
		}
		if pg := listAll(t, d, writer, false); pg.total() != len(versionsOf) {
			t.Errorf("node %c lists %d artifacts, want %d", 'A'+i, pg.total(), len(versionsOf))
		}
	}
}

// TestWholeMeshKilledAtOnce kills all three nodes with SIGKILL at once,
// right after the last acknowledged write, and starts them together.
func TestWholeMeshKilledAtOnce(t *testing.T) {
	testWholeMeshRestart(t, func(a, b, c *daemon) (*daemon, *daemon, *daemon) {
		killAll(a, b, c)
		ds := []*daemon{
			spawn(t, a.repo, strings.TrimPrefix(a.url, "http://"), a.args...),
			spawn(t, b.repo, strings.TrimPrefix(b.url, "http://"), b.args...),
			spawn(t, c.repo, strings.TrimPrefix(c.url, "http://"), c.args...),
		}
		for _, d := range ds {
			d.attach(t, 60*time.Second)
		}
		return ds[0], ds[1], ds[2]
	})
}

// TestWholeMeshStaggeredRestart stops all three nodes with SIGTERM, then
// starts them one by one, 4 s apart.
func TestWholeMeshStaggeredRestart(t *testing.T) {
	testWholeMeshRestart(t, func(a, b, c *daemon) (*daemon, *daemon, *daemon) {
		a.stop()
		b.stop()
		c.stop()
		var ds []*daemon
		for i, d := range []*daemon{a, b, c} {
			if i > 0 {
				time.Sleep(4 * time.Second) // the scenario: one by one
			}
			ds = append(ds, spawn(t, d.repo, strings.TrimPrefix(d.url, "http://"), d.args...))
		}
		for _, d := range ds {
			d.attach(t, 60*time.Second)
		}
		return ds[0], ds[1], ds[2]
	})
}

// TestEmptiedRaftDirRejoins stops follower B, deletes its Raft folder and
// starts it: B must not bootstrap a catalog of its own but get the mesh's
// back, keep its blocks, and serve the artifacts only it holds.
func TestEmptiedRaftDirRejoins(t *testing.T) {
	a, b, c := newMesh3(t)
	writer := a.addAgent(t, "writer")
	setFactor1(t, a)
	if l := leaderOf(t, a, b, c); l == b {
		t.Fatal("B leads; the scenario needs it to be a follower")
	}
	peers := map[string]string{peerIDOf(t, a): "A", peerIDOf(t, b): "B", peerIDOf(t, c): "C"}
	var onB []blob
	for j := 0; j < 2; j++ {
		onB = append(onB, createBlob(t, b, writer, fmt.Sprintf("only-on-b-%d.bin", j), int64(2+j)<<20, uint64(3001+j), "B"))
	}
	createBlob(t, a, writer, "on-a.bin", 1<<20, 3010, "A")
	createSnippet(t, c, writer, "on-c.json", map[string]any{"c": true}, "C")
	listAll(t, b, writer, true) // B has applied everything
	var before repoStat
	b.call(t, "GET", "/v1/repo/stat", nil, 200, &before)
	wantList := listAll(t, a, writer, true)

	b.stop()
	raftDir := filepath.Join(b.repo, "raft")
	if _, err := os.Stat(raftDir); err != nil {
		t.Fatalf("B's Raft folder: %v", err)
	}
	if err := os.RemoveAll(raftDir); err != nil {
		t.Fatal(err)
	}
	b = relaunch(t, b)
	start := time.Now()
	waitReady(t, b, 60*time.Second)
	t.Logf("B with an empty Raft folder was ready after %s", time.Since(start).Round(time.Millisecond))

	// The mesh's catalog, not a new one.
	var ms struct {
		Items []memberInfo `json:"items"`
	}
	st, _, body, err := httpDo(b, b.key, "GET", "/v1/mesh/members", nil, 20*time.Second)
	if err != nil || st != 200 || json.Unmarshal(body, &ms) != nil {
		t.Errorf("B: GET /v1/mesh/members with its admin key: %d %s %v, want 200", st, short(body), err)
	} else {
		seen := map[string]bool{}
		for _, m := range ms.Items {
			if peers[m.PeerID] == "" || m.Role != "voter" {
				t.Errorf("B lists member %+v, want the three voters A, B, C", m)
			}
			seen[m.PeerID] = true
		}
		if len(ms.Items) != 3 || len(seen) != 3 {
			t.Errorf("B lists %d members, want A, B and C: %s", len(ms.Items), body)
		}
	}
	st, _, body, err = httpDo(b, writer, "GET", "/v1/artifacts?limit=1000", nil, 20*time.Second)
	var got artifactPage
	if err != nil || st != 200 || json.Unmarshal(body, &got) != nil {
		t.Errorf("B: GET /v1/artifacts: %d %s %v, want 200", st, short(body), err)
	} else if got.total() != wantList.total() || fmt.Sprint(ids(got.Items)) != fmt.Sprint(ids(wantList.Items)) {
		t.Errorf("B lists %d artifacts %s, A lists %d %s", got.total(), ids(got.Items), wantList.total(), ids(wantList.Items))
	}

	var after repoStat
	st, _, body, err = httpDo(b, b.key, "GET", "/v1/repo/stat", nil, 20*time.Second)
	if err != nil || st != 200 || json.Unmarshal(body, &after) != nil {
		t.Errorf("B: GET /v1/repo/stat: %d %s %v, want 200", st, short(body), err)
	} else if after.Blocks < before.Blocks || after.Bytes < before.Bytes {
		t.Errorf("B's block store shrank: %d blocks, %d bytes before; %d blocks, %d bytes after", before.Blocks, before.Bytes, after.Blocks, after.Bytes)
	}
	st, _, body, err = httpDo(b, b.key, "POST", "/v1/repo/gc", nil, 60*time.Second)
	if err != nil || st != 200 {
		t.Errorf("B: POST /v1/repo/gc: %d %s %v, want 200", st, short(body), err)
	}
	st, _, body, err = httpDo(b, b.key, "GET", "/v1/repo/stat", nil, 20*time.Second)
	if err != nil || st != 200 || json.Unmarshal(body, &after) != nil {
		t.Errorf("B: GET /v1/repo/stat: %d %s %v, want 200", st, short(body), err)
	} else if after.Blocks < before.Blocks || after.Bytes < before.Bytes {
		t.Errorf("after an explicit collection B's block store shrank: %d blocks, %d bytes before; %d blocks, %d bytes after", before.Blocks, before.Bytes, after.Blocks, after.Bytes)
	}

	// A write through B lands in the mesh's catalog.
	st, _, body, err = httpDo(b, writer, "POST", "/v1/snippets", map[string]any{"name": "after-wipe", "content": 1}, 20*time.Second)
	var aw artifact
	if err != nil || st != 201 || json.Unmarshal(body, &aw) != nil {
		t.Errorf("B: a write after the wipe: %d %s %v, want 201", st, short(body), err)
	} else {
		a.callAs(t, writer, "GET", "/v1/artifacts/"+aw.ID+"?consistent=true", nil, 200, nil)
	}

	a.pause()
	c.pause()
	defer c.resume()
	defer a.resume()
	for _, x := range onB {
		downloadExact(t, b, writer, x, 15*time.Second, "B alone, after its Raft folder was emptied")
	}
}
