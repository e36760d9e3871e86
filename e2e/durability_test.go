package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestKillDuringWrites kills the daemon with SIGKILL right after a burst of
// acknowledged creates and in the middle of a 200 MiB upload, restarts it,
// and checks that every acknowledged artifact is there with its content,
// that nothing half-created is visible, and that the interrupted upload's
// blocks are collected.
func TestKillDuringWrites(t *testing.T) {
	repo := t.TempDir()
	d := startDaemon(t, repo)

	// A burst of acknowledged creates from 8 clients.
	acked := map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				body := []byte(fmt.Sprintf(`{"client":%d,"i":%d,"pad":"%s"}`, c, i, bytes.Repeat([]byte("x"), i*100)))
				resp := d.do(t, d.key, "POST", fmt.Sprintf("/v1/artifacts?name=burst-%d-%d", c, i), bytes.NewReader(body), "Content-Type", "application/json")
				var a artifact
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					t.Errorf("create: %d %s", resp.StatusCode, data)
					return
				}
				mustJSON(t, string(data), &a)
				mu.Lock()
				acked[a.ID] = body
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// A 200 MiB upload, killed at about half way.
	const size = 200 << 20
	pr, pw := io.Pipe()
	uploadErr := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", d.url+"/v1/artifacts?name=interrupted.bin", pr)
		req.Header.Set("Authorization", "Bearer "+d.key)
		req.ContentLength = size
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("upload answered %d", resp.StatusCode)
		}
		uploadErr <- err
	}()
	src := &patterned{n: size, seed: 3}
	if _, err := io.CopyN(pw, src, size/2); err != nil {
		t.Fatal(err)
	}
	d.kill()
	pw.CloseWithError(io.ErrClosedPipe)
	select {
	case err := <-uploadErr:
		t.Logf("interrupted upload ended with: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the upload did not end after the kill")
	}

	d = startDaemon(t, repo)
	var page artifactPage
	d.call(t, "GET", "/v1/artifacts?limit=1000", nil, 200, &page)
	if page.total() != len(acked) {
		t.Fatalf("after the crash there are %d artifacts, %d were acknowledged", page.total(), len(acked))
	}
	for id, want := range acked {
		if got := d.download(t, "/v1/artifacts/"+id+"/content"); !bytes.Equal(got, want) {
			t.Fatalf("%s: content differs after the crash", id)
		}
	}
	for _, a := range page.Items {
		if a.Name == "interrupted.bin" {
			t.Fatal("the interrupted upload is visible")
		}
	}
	var before, after repoStat
	d.call(t, "GET", "/v1/repo/stat", nil, 200, &before)
	d.cli(t, "repo", "gc")
	d.call(t, "GET", "/v1/repo/stat", nil, 200, &after)
	t.Logf("pack bytes before gc %d, after %d; live block bytes %d", before.PackBytes, after.PackBytes, after.Bytes)
	if after.PackBytes > 8<<20 {
		t.Fatalf("after gc the packs still hold %d bytes: the interrupted upload was not collected", after.PackBytes)
	}
}

// TestDedupAcrossVersions updates a 256 MiB artifact in which 1 MiB in the
// middle changed and checks that the block store grows by under 16 MiB.
func TestDedupAcrossVersions(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	const size = 256 << 20
	var a artifact
	d.call(t, "POST", "/v1/artifacts?name=model.bin", &patterned{n: size, seed: 11}, 201, &a)
	var before, after repoStat
	d.call(t, "GET", "/v1/repo/stat", nil, 200, &before)
	changed := io.MultiReader(
		io.LimitReader(&patterned{n: size, seed: 11}, size/2),
		io.LimitReader(&patterned{n: 1 << 20, seed: 12}, 1<<20),
		&offsetReader{p: &patterned{n: size, seed: 11}, skip: size/2 + 1<<20},
	)
	var v2 artifact
	d.call(t, "PUT", "/v1/artifacts/"+a.ID+"/content", changed, 201, &v2)
	if v2.Version != 2 || v2.SizeBytes != size || v2.CID == a.CID {
		t.Fatalf("update made %+v", v2)
	}
	d.call(t, "GET", "/v1/repo/stat", nil, 200, &after)
	grew := after.Bytes - before.Bytes
	t.Logf("a 1 MiB change in a 256 MiB file grew the block store by %d bytes (%.2f MiB)", grew, float64(grew)/(1<<20))
	if grew >= 16<<20 {
		t.Fatalf("the store grew by %d bytes, want under 16 MiB", grew)
	}
	out := d.cli(t, "repo", "stat")
	t.Logf("artmesh repo stat:\n%s", out)
}

// offsetReader reads p from byte skip on.
type offsetReader struct {
	p    *patterned
	skip int64
}

func (o *offsetReader) Read(b []byte) (int, error) {
	if o.p.off < o.skip {
		o.p.off = o.skip
	}
	return o.p.Read(b)
}
