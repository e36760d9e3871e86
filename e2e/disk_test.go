package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountSmallDisk mounts a tmpfs of size bytes at a new folder and returns
// it; the test is skipped when this process may not mount.
func mountSmallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("this test mounts a small tmpfs, which is not permitted here (run it as root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// diskFree is the space free on dir's filesystem, as df shows it.
func diskFree(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestFullDisk runs a node whose whole repo is on a 48 MiB filesystem
// (it must start: the Raft log's segments fit): writes past the reserve
// get 507 insufficient_storage before any byte is stored; content held
// only by the other node is read through without being stored; deleting
// half the content and collecting gives the space back as statfs sees it;
// writes then succeed again; and every acknowledged artifact reads back
// with its bytes, on both nodes.
func TestFullDisk(t *testing.T) {
	small := mountSmallDisk(t, "48m")
	a := startDaemon(t, t.TempDir())
	b := joinDaemonArgs(t, a, filepath.Join(small, "repo"))
	shareAdmin(t, a, b)

	const size = 2 << 20
	type acked struct {
		id   string
		seed uint64
	}
	var written []acked
	write := func(d *daemon, seed uint64) (int, []byte) {
		code, data := d.status(t, d.key, "POST", "/v1/artifacts?name=blob", patternBytes(size, seed))
		if code == 201 {
			var art artifact
			if err := json.Unmarshal(data, &art); err != nil {
				t.Fatal(err)
			}
			written = append(written, acked{art.ID, seed})
		}
		return code, data
	}

	// Fill b until it refuses; the refusal stores nothing.
	var refused []byte
	for seed := uint64(1); seed <= 30; seed++ {
		before := b.stat(t)
		freeBefore := diskFree(t, small)
		code, data := write(b, seed)
		if code == 201 {
			continue
		}
		if code != 507 || errorCode(data) != "insufficient_storage" || !strings.Contains(string(data), "free") {
			t.Fatalf("write %d on a full disk: %d %s, want 507 insufficient_storage saying what is free", seed, code, data)
		}
		if after := b.stat(t); after.PackBytes != before.PackBytes || after.Blocks != before.Blocks {
			t.Fatalf("the refused write stored something: pack bytes %d -> %d, blocks %d -> %d", before.PackBytes, after.PackBytes, before.Blocks, after.Blocks)
		}
		t.Logf("write %d refused with %d MiB free: %s", seed, freeBefore>>20, data)
		refused = data
		break
	}
	if refused == nil || len(written) < 10 {
		t.Fatalf("%d writes of 2 MiB were acknowledged on a 48 MiB disk, and none was refused", len(written))
	}
	// A write of unknown length runs into the reserve as it is stored.
	if code, data := postUnread(t, b, "/v1/artifacts?name=chunked", &patterned{n: 8 << 20, seed: 99}); code != 507 || errorCode(data) != "insufficient_storage" {
		t.Fatalf("a chunked write on a full disk: %d %s, want 507", code, data)
	}
	// So does a new version of an artifact.
	if code, data := b.status(t, b.key, "PUT", "/v1/artifacts/"+written[0].id+"/content", patternBytes(size, 98)); code != 507 || errorCode(data) != "insufficient_storage" {
		t.Fatalf("a new version on a full disk: %d %s, want 507", code, data)
	}
	// So does an upload session that declares its size.
	if code, data := b.status(t, b.key, "POST", "/v1/uploads", map[string]any{"name": "up", "size_bytes": 8 << 20}); code != 507 || errorCode(data) != "insufficient_storage" {
		t.Fatalf("an upload session on a full disk: %d %s, want 507", code, data)
	}

	// Content that only a holds is read on b through, without being kept.
	var remote artifact
	a.call(t, "POST", "/v1/artifacts?name=remote", patternBytes(3<<20, 77), 201, &remote)
	before := b.stat(t)
	if code, sum := b.contentSum(t, remote.ID); code != 200 || sum != sha256.Sum256(patternBytes(3<<20, 77)) {
		t.Fatalf("reading remote content on a full node: status %d, right bytes %v", code, sum == sha256.Sum256(patternBytes(3<<20, 77)))
	}
	if after := b.stat(t); after.PackBytes != before.PackBytes {
		t.Errorf("reading remote content on a full node stored %d bytes", after.PackBytes-before.PackBytes)
	}

	// Delete half of b's content, collect, and the space comes back.
	freeFull := diskFree(t, small)
	deleted := map[string]bool{}
	for i, w := range written {
		if i%2 == 0 {
			b.call(t, "DELETE", "/v1/artifacts/"+w.id, nil, 204, nil)
			deleted[w.id] = true
		}
	}
	want := int64(len(deleted)) * size * 3 / 4
	waitFor(t, 20*time.Second, "collecting gives the deleted content's space back", func() bool {
		b.cli(t, "repo", "gc")
		return diskFree(t, small)-freeFull >= want
	})
	t.Logf("free: %d MiB full, %d MiB after deleting %d of %d artifacts and collecting", freeFull>>20, diskFree(t, small)>>20, len(deleted), len(written))

	// Writes succeed again, and reads of remote content still work.
	for seed := uint64(101); seed <= 103; seed++ {
		if code, data := write(b, seed); code != 201 {
			t.Fatalf("write after the collection: %d %s", code, data)
		}
	}
	if code, sum := b.contentSum(t, remote.ID); code != 200 || sum != sha256.Sum256(patternBytes(3<<20, 77)) {
		t.Fatalf("reading remote content after the collection: status %d", code)
	}

	// Every acknowledged artifact reads back right on both nodes; the
	// deleted ones are gone.
	for _, w := range written {
		for _, d := range []*daemon{b, a} {
			code, sum := d.contentSum(t, w.id)
			switch {
			case deleted[w.id] && code != 404:
				t.Errorf("deleted artifact %s on %s: status %d, want 404", w.id, d.url, code)
			case !deleted[w.id] && (code != 200 || sum != sha256.Sum256(patternBytes(size, w.seed))):
				t.Errorf("artifact %s on %s: status %d, right bytes %v", w.id, d.url, code, sum == sha256.Sum256(patternBytes(size, w.seed)))
			}
		}
	}
	if !bytes.Contains(refused, []byte("reserve")) {
		t.Errorf("the refusal does not say what is kept in reserve: %s", refused)
	}
}

// postUnread POSTs body (chunked) as d's key and reads the answer while
// the body is still being sent: a node that refuses a write stops reading
// it and closes the connection, and a client that only reads once it has
// sent everything sees the reset instead of the answer.
func postUnread(t *testing.T, d *daemon, path string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", d.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.key)
	conn, err := net.Dial("tcp", req.URL.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { sent <- req.Write(conn) }() // ends at the latest when conn is closed
	defer func() { conn.Close(); <-sent }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("POST %s: reading the answer: %v", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: reading the answer: %v", path, err)
	}
	return resp.StatusCode, data
}
