package e2e

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestIsolatedLeaderKeyedWrites: a leader whose followers stop answering
// (paused: their kernels still take its TCP data, so an entry it appended
// in time can still commit) takes 5 writes with Idempotency-Keys, spread
// over the moment it finds itself alone. Each answers 503: outcome_unknown
// when the leader may have appended it, unavailable when it certainly did
// not take it. After the mesh heals, no write answered unavailable exists;
// then every write is sent again with its key until it is answered, and
// each exists exactly once, with the id of any earlier answer.
func TestIsolatedLeaderKeyedWrites(t *testing.T) {
	a, b, c := newMesh3(t)
	writer := a.addAgent(t, "writer")
	leader := leaderOf(t, a, b, c)
	var followers []*daemon
	for _, d := range []*daemon{a, b, c} {
		if d != leader {
			followers = append(followers, d)
		}
	}
	// One copy: no eager copy to the followers holds a write back from
	// the log until they are found not to answer.
	setFactor1(t, leader)
	createSnippet(t, leader, writer, "before", map[string]any{"x": 0}, "leader")

	const writes = 5
	type answer struct {
		status int
		code   string
		body   string
		err    error
	}
	answers := make([]answer, writes)
	body := func(i int) map[string]any {
		return map[string]any{"name": fmt.Sprintf("iso-%d", i), "content": map[string]any{"i": i}}
	}
	keyOf := func(i int) string { return fmt.Sprintf("isolated-%d", i) }

	followers[0].pause()
	followers[1].pause()
	var wg sync.WaitGroup
	for i := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			st, _, data, err := httpDo(leader, writer, "POST", "/v1/snippets", body(i), 30*time.Second, "Idempotency-Key", keyOf(i))
			answers[i] = answer{st, errorCode(data), fmt.Sprintf("after %s: %s", time.Since(start).Round(time.Millisecond), short(data)), err}
		}()
		if i >= 2 {
			// Three at once as the followers stop, two later: across the
			// leader's step-down.
			time.Sleep(300 * time.Millisecond)
		}
	}
	wg.Wait()
	for i, an := range answers {
		t.Logf("write %d to the isolated leader: %d %s %v", i, an.status, an.body, an.err)
		if an.err != nil || an.status != 503 || (an.code != "outcome_unknown" && an.code != "unavailable") {
			t.Errorf("write %d to the isolated leader: %d %q %v, want 503 outcome_unknown or unavailable", i, an.status, an.code, an.err)
		}
	}

	followers[0].resume()
	followers[1].resume()
	waitMeshOf3(t, a, b, c)
	for i, an := range answers {
		if an.code != "unavailable" {
			continue
		}
		if pg := listByName(t, followers[0], writer, fmt.Sprintf("iso-%d", i), true); len(pg.Items) != 0 {
			t.Errorf("write %d was answered unavailable, but it exists: %+v", i, pg.Items)
		}
	}
	// Every key again, through each node in turn, until answered.
	ids := make([]string, writes)
	for i := range writes {
		via := []*daemon{a, b, c}[i%3]
		deadline := time.Now().Add(60 * time.Second)
		for {
			st, h, data, err := httpDo(via, writer, "POST", "/v1/snippets", body(i), 30*time.Second, "Idempotency-Key", keyOf(i))
			if err == nil && st == 201 {
				var got artifact
				if err := json.Unmarshal(data, &got); err != nil {
					t.Fatal(err)
				}
				ids[i] = got.ID
				t.Logf("write %d sent again via %s: 201 %s (replayed %q)", i, via.url, got.ID, h.Get("Idempotent-Replayed"))
				break
			}
			if err == nil && st != 503 || time.Now().After(deadline) {
				t.Fatalf("write %d sent again: %d %s %v", i, st, short(data), err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for i := range writes {
		for _, d := range []*daemon{a, b, c} {
			pg := listByName(t, d, writer, fmt.Sprintf("iso-%d", i), true)
			if len(pg.Items) != 1 || pg.Items[0].ID != ids[i] {
				t.Errorf("%s: write %d exists %d times (%+v), want once as %s", d.url, i, len(pg.Items), pg.Items, ids[i])
			}
		}
	}
}
