package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"
)

// leaderOf returns the daemon among ds that leads the catalog.
func leaderOf(t *testing.T, ds ...*daemon) *daemon {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, d := range ds {
			var ms struct {
				Items []memberInfo `json:"items"`
			}
			resp := d.do(t, d.key, "GET", "/v1/mesh/members", nil)
			json.NewDecoder(resp.Body).Decode(&ms)
			resp.Body.Close()
			for _, m := range ms.Items {
				if m.Leader {
					for _, x := range ds {
						var info struct {
							PeerID string `json:"peer_id"`
						}
						x.call(t, "GET", "/v1/node", nil, 200, &info)
						if info.PeerID == m.PeerID {
							return x
						}
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no leader")
	return nil
}

// TestKillLeader kills the catalog leader with SIGKILL while four clients
// on the other nodes create artifacts, and checks that no acknowledged
// create is lost, that writes succeed again within 5 s, and that the
// killed node rejoins and catches up.
func TestKillLeader(t *testing.T) {
	repoA := t.TempDir()
	a := startDaemon(t, repoA)
	b := joinDaemon(t, a, t.TempDir())
	c := joinDaemon(t, a, t.TempDir())
	var alice struct {
		APIKey string `json:"api_key"`
	}
	a.call(t, "POST", "/v1/agents", map[string]any{"id": "alice"}, 201, &alice)
	leader := leaderOf(t, a, b, c)
	var others []*daemon
	for _, d := range []*daemon{a, b, c} {
		if d != leader {
			others = append(others, d)
		}
	}

	type ack struct {
		id   string
		body []byte
		at   time.Time
	}
	var mu sync.Mutex
	var acks []ack
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < 4; i++ {
		d := others[i%2]
		wg.Add(1)
		go func(i int, d *daemon) {
			defer wg.Done()
			for n := 0; n < 2000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				body := []byte(fmt.Sprintf(`{"client":%d,"n":%d}`, i, n))
				req, _ := http.NewRequestWithContext(context.Background(), "POST", d.url+"/v1/artifacts?name=c", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+alice.APIKey)
				resp, err := client.Do(req)
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					if resp.StatusCode != 503 {
						t.Errorf("create: %d %s\nlog: %s", resp.StatusCode, data, d.logs())
						return
					}
					time.Sleep(20 * time.Millisecond)
					continue
				}
				var a artifact
				json.Unmarshal(data, &a)
				mu.Lock()
				acks = append(acks, ack{a.ID, body, time.Now()})
				mu.Unlock()
			}
		}(i, d)
	}
	time.Sleep(time.Second)
	killedAt := time.Now()
	leader.kill()
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()

	mu.Lock()
	var before, after int
	var gap time.Duration
	sort.Slice(acks, func(i, j int) bool { return acks[i].at.Before(acks[j].at) })
	for i, k := range acks {
		if k.at.Before(killedAt) {
			before++
		} else {
			after++
		}
		if i > 0 && k.at.After(killedAt.Add(-time.Second)) {
			gap = max(gap, k.at.Sub(acks[i-1].at))
		}
	}
	mu.Unlock()
	t.Logf("acknowledged creates: %d before the kill, %d after; the longest gap between acknowledged writes around the kill: %s", before, after, gap)
	if before == 0 || after == 0 {
		t.Fatalf("creates before the kill %d, after %d", before, after)
	}
	if gap > 5*time.Second {
		t.Fatalf("writes resumed %s after the kill, want within 5s", gap)
	}
	// Every acknowledged create is readable, with its content, on the
	// survivors; then on the killed node once it is back.
	check := func(d *daemon) {
		d.callAs(t, alice.APIKey, "GET", "/v1/artifacts?limit=1&consistent=true", nil, 200, nil)
		for _, k := range acks {
			resp := d.do(t, alice.APIKey, "GET", "/v1/artifacts/"+k.id+"/content", nil)
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Equal(got, k.body) {
				t.Fatalf("acknowledged %s on %s: %d %q\nlog: %s", k.id, d.url, resp.StatusCode, got, d.logs())
			}
		}
	}
	check(others[0])
	restarted := startDaemonArgs(t, leader.repo, "127.0.0.1:0", "--log-level", "info")
	t0 := time.Now()
	for {
		resp := restarted.do(t, alice.APIKey, "GET", "/v1/artifacts?consistent=true", nil)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Since(t0) > 20*time.Second {
			t.Fatalf("the restarted node did not catch up in 20s: %d\n%s", resp.StatusCode, restarted.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the killed node caught up %s after its restart", time.Since(t0))
	check(restarted)
}
