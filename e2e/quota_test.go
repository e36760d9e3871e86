package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestQuotasAcrossTheMesh checks quotas on three nodes: the byte quota
// set on one node binds writes through the others, two writes that each
// fit but not together, made at once through two followers, are decided
// by the leader's apply (exactly one is stored), and event streams are
// counted per node.
func TestQuotasAcrossTheMesh(t *testing.T) {
	a, b, c := newMesh3(t)
	bob := a.addAgent(t, "bob")
	a.call(t, "PUT", "/v1/mesh/quota", map[string]any{"bytes": 100}, 200, nil)
	a.call(t, "PUT", "/v1/agents/bob/quota", map[string]any{"streams": 1}, 200, nil)
	// Every node applies the limits before they are used there.
	for _, d := range []*daemon{a, b, c} {
		deadline := time.Now().Add(15 * time.Second)
		for {
			var st struct {
				Limits struct{ Bytes, Streams int64 } `json:"limits"`
			}
			d.callAs(t, bob, "GET", "/v1/agents/bob/quota", nil, 200, &st)
			if st.Limits.Bytes == 100 && st.Limits.Streams == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never saw bob's limits: %+v", d.url, st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	b.callAs(t, bob, "POST", "/v1/artifacts?name=first", strings.Repeat("x", 60), 201, nil, "Content-Type", "text/plain")
	if st, body := c.status(t, bob, "POST", "/v1/artifacts?name=over", strings.Repeat("x", 41), "Content-Type", "text/plain"); st != 507 || errorCode(body) != "quota_exceeded" {
		t.Fatalf("a write over the quota through another follower: %d %s", st, body)
	}

	// Two writes of 30 bytes at once, through two nodes: 60+30 fits,
	// 60+30+30 does not.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	bodies := make([][]byte, 2)
	for i, d := range []*daemon{b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, bodies[i], _ = httpDo(d, bob, "POST", "/v1/artifacts?name=race", strings.Repeat("y", 30), 30*time.Second, "Content-Type", "text/plain")
		}()
	}
	wg.Wait()
	if !(codes[0] == 201 && codes[1] == 507 || codes[0] == 507 && codes[1] == 201) {
		t.Fatalf("two racing writes: %d %s and %d %s, want one 201 and one 507", codes[0], bodies[0], codes[1], bodies[1])
	}
	for i := range codes {
		if codes[i] == 507 && errorCode(bodies[i]) != "quota_exceeded" {
			t.Fatalf("the refused racing write: %s", bodies[i])
		}
	}
	var st struct {
		Usage struct{ Bytes int64 } `json:"usage"`
	}
	a.callAs(t, bob, "GET", "/v1/agents/bob/quota?consistent=true", nil, 200, &st)
	if st.Usage.Bytes != 90 {
		t.Fatalf("bob stores %d bytes, want 90", st.Usage.Bytes)
	}
	var page struct {
		Total int `json:"total"`
	}
	a.callAs(t, bob, "GET", "/v1/artifacts?consistent=true", nil, 200, &page)
	if page.Total != 2 {
		t.Fatalf("bob has %d artifacts, want 2", page.Total)
	}

	// Streams: one per node.
	open := func(d *daemon) int {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", d.url+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+bob)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode == 200 {
			if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		} else {
			var eb errorBody
			json.NewDecoder(resp.Body).Decode(&eb)
			if eb.Error.Code != "too_many" {
				t.Errorf("a refused stream's code is %q", eb.Error.Code)
			}
		}
		return resp.StatusCode
	}
	if got := []int{open(b), open(b), open(c)}; got[0] != 200 || got[1] != 429 || got[2] != 200 {
		t.Fatalf("streams on b, b, c: %v, want 200 429 200", got)
	}
}
