package e2e

import (
	"bytes"
	binenc "encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Content that checks itself and heals: a flipped bit on disk is never
// served, is quarantined on the first read or scrub, and the version is
// repaired from another holder; a holder that lost its store stops being
// one and gets its copy back.

// flipFirstBlock flips one bit in the middle of the data of the first
// block record of the daemon's first pack file, and returns the pack's
// path. An import writes its leaves first, so that is the first leaf of
// the first content stored. The record format is the block store's:
// data length (4 bytes, big endian), key length (1 byte), key, data.
func flipFirstBlock(t *testing.T, d *daemon) string {
	t.Helper()
	packs, _ := filepath.Glob(filepath.Join(d.repo, "blocks", "packs", "*.pack"))
	slices.Sort(packs)
	for _, p := range packs {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		var hdr [5]byte
		if _, err := f.ReadAt(hdr[:], 0); err != nil {
			f.Close()
			continue // empty pack
		}
		dataLen := int64(binenc.BigEndian.Uint32(hdr[:4]))
		off := 5 + int64(hdr[4]) + dataLen/2
		var one [1]byte
		if _, err := f.ReadAt(one[:], off); err != nil {
			t.Fatal(err)
		}
		one[0] ^= 0x04
		if _, err := f.WriteAt(one[:], off); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	t.Fatalf("no block in %s", d.repo)
	return ""
}

// quarantined returns how many blocks d has quarantined.
func quarantined(t *testing.T, d *daemon) int {
	t.Helper()
	var st struct {
		Quarantined int `json:"quarantined_blocks"`
	}
	d.call(t, "GET", "/v1/repo/stat", nil, 200, &st)
	return st.Quarantined
}

// getTimed downloads path from d and returns the status, the body and how
// long it took; a body cut short is returned as it came, with its error.
func getTimed(d *daemon, key, path string, timeout time.Duration, headers ...string) (int, []byte, time.Duration, error) {
	start := time.Now()
	st, _, body, err := httpDo(d, key, "GET", path, nil, timeout, headers...)
	return st, body, time.Since(start), err
}

// TestFlippedBitSoleHolder: one bit flipped in the pack of the only holder.
// That node never answers with the wrong bytes (GET, Range GET), and
// another node reading through it fails within 30 s instead of stalling or
// serving them; the block is quarantined and placement stops counting the
// bad copy. A scrub finds a second flip without any read.
func TestFlippedBitSoleHolder(t *testing.T) {
	// Reads give up 5 s after their fetch's last progress (20 s by
	// default), to keep the test short.
	ds := meshOf(t, 2, "--read-stall-timeout", "5s")
	a, b := ds[0], ds[1]
	setFactor1(t, a)
	blob := createBlob(t, a, a.key, "rot", 1_500_000, 71, "a")
	flipFirstBlock(t, a)

	path := "/v1/artifacts/" + blob.art.ID + "/content"
	// Never the wrong bytes, from a or from b reading through it: the bad
	// block is the first leaf, and the first bytes are read before the
	// header goes out, so each read is refused with 503 and Retry-After,
	// within 30 s.
	for _, tc := range []struct {
		name    string
		d       *daemon
		headers []string
	}{
		{"a, whole", a, nil},
		{"a, range", a, []string{"Range", "bytes=0-999"}},
		{"b, whole", b, nil},
		{"b, range", b, []string{"Range", "bytes=100-199"}},
	} {
		start := time.Now()
		st, hdr, body, _ := httpDo(tc.d, tc.d.key, "GET", path, nil, 60*time.Second, tc.headers...)
		if took := time.Since(start); took > 30*time.Second {
			t.Fatalf("%s: the failed download took %s", tc.name, took)
		}
		if st == 200 || st == 206 {
			t.Fatalf("%s: %d with %d bytes (identical to the content: %v) from a corrupt sole copy", tc.name, st, len(body), bytes.Equal(body, blob.data))
		}
		if st != 503 || hdr.Get("Retry-After") == "" || errorCode(body) != "unavailable" {
			t.Fatalf("%s: %d Retry-After %q %s, want 503 unavailable with Retry-After", tc.name, st, hdr.Get("Retry-After"), short(body))
		}
		if tc.d == a {
			if q := quarantined(t, a); q != 1 {
				t.Fatalf("%s: quarantined %d blocks after the read, want 1", tc.name, q)
			}
		}
	}
	// a no longer counts as a holder of what it cannot serve.
	waitFor(t, 30*time.Second, "a gives up its holder record of the damaged version", func() bool {
		p := a.placement(t, blob.art.ID)
		return len(p) == 1 && len(p[0].Holders) == 0
	})
}

// TestFlippedBitTwoHolders: with two holders, a flipped bit on one; every
// read on every node returns the right bytes, and within 60 s placement
// shows two good holders again.
func TestFlippedBitTwoHolders(t *testing.T) {
	ds := meshOf(t, 3)
	a := ds[0]
	var art artifact
	data := patternBytes(1_500_000, 72)
	a.call(t, "POST", "/v1/artifacts?name=twice&replicas=2", data, 201, &art, "Content-Type", "application/octet-stream")
	blob := blob{art: art, data: data, via: "a"}
	p := a.placement(t, art.ID)
	if len(p) != 1 || len(p[0].Holders) != 2 || !slices.Contains(p[0].Holders, a.peerID(t)) {
		t.Fatalf("placement after a write with replicas=2: %+v", p)
	}
	flipFirstBlock(t, a)
	for i, d := range ds {
		downloadExact(t, d, d.key, blob, 30*time.Second, fmt.Sprintf("node %d after the flip", i))
	}
	// A range read on the damaged node, again through a good copy.
	st, body, _, err := getTimed(a, a.key, "/v1/artifacts/"+art.ID+"/content", 30*time.Second, "Range", "bytes=100-299")
	if err != nil || st != 206 || !bytes.Equal(body, data[100:300]) {
		t.Fatalf("range after the flip: %d %v identical %v", st, err, bytes.Equal(body, data[100:300]))
	}
	if q := quarantined(t, a); q != 1 {
		t.Fatalf("node a quarantined %d blocks, want 1", q)
	}
	waitFor(t, 60*time.Second, "two good holders again, a among them", func() bool {
		p := a.placement(t, art.ID)
		return len(p) == 1 && len(p[0].Holders) >= 2 && p[0].State == "ok" && slices.Contains(p[0].Holders, a.peerID(t))
	})
	// a's copy is whole again: a full verify finds nothing more.
	out := a.cli(t, "repo", "verify")
	if !strings.Contains(out, " 0 bad") {
		t.Fatalf("repo verify after the repair: %s", out)
	}
	if m := scrape(t, a); !strings.Contains(m, "\nartmesh_blocks_quarantined_total 1\n") {
		t.Fatalf("/metrics does not count the quarantined block:\n%s", grepLines(m, "quarantined"))
	}
}

// scrape returns d's /metrics text.
func scrape(t *testing.T, d *daemon) string {
	t.Helper()
	st, _, body, err := httpDo(d, "", "GET", "/metrics", nil, 10*time.Second)
	if err != nil || st != 200 {
		t.Fatalf("GET /metrics: %d %v", st, err)
	}
	return string(body)
}

// TestScrubFindsRot: the background scrubber finds a flipped bit that no
// read touched, within one pass; the holder record goes and the version
// is repaired from the other holder.
func TestScrubFindsRot(t *testing.T) {
	ds := meshOf(t, 2, "--scrub-rate", "64MiB", "--scrub-every", "2s")
	a, b := ds[0], ds[1]
	var art artifact
	data := patternBytes(600_000, 73)
	a.call(t, "POST", "/v1/artifacts?name=scrubbed&replicas=2", data, 201, &art, "Content-Type", "application/octet-stream")
	flipFirstBlock(t, a)
	waitFor(t, 30*time.Second, "a's scrubber quarantines the flipped block", func() bool { return quarantined(t, a) == 1 })
	waitFor(t, 60*time.Second, "two good holders again", func() bool {
		p := b.placement(t, art.ID)
		return len(p) == 1 && len(p[0].Holders) == 2 && p[0].State == "ok"
	})
	downloadExact(t, a, a.key, blob{art: art, data: data, via: "a"}, 30*time.Second, "node a after the repair")
	var stat struct {
		ScrubLast *struct {
			Blocks int64 `json:"blocks"`
		} `json:"scrub_last"`
	}
	a.call(t, "GET", "/v1/repo/stat", nil, 200, &stat)
	if stat.ScrubLast == nil || stat.ScrubLast.Blocks == 0 {
		t.Fatalf("repo stat shows no finished scrub pass: %+v", stat)
	}
}

// TestHolderLostItsStore: a holder restarted with its blocks folder
// emptied is, within 60 s, no longer listed as holding what it lost, and
// repair restores the factor.
func TestHolderLostItsStore(t *testing.T) {
	ds := meshOf(t, 2)
	a, b := ds[0], ds[1]
	var art artifact
	data := patternBytes(700_000, 74)
	a.call(t, "POST", "/v1/artifacts?name=lost&replicas=2", data, 201, &art, "Content-Type", "application/octet-stream")
	b.stop()
	if err := os.RemoveAll(filepath.Join(b.repo, "blocks")); err != nil {
		t.Fatal(err)
	}
	b = b.restart(t)
	b.key = a.key
	// The record goes first (logged at error, counted), then the copy
	// comes back from a.
	waitFor(t, 60*time.Second, "b gives up the holder record it cannot back", func() bool {
		return strings.Contains(b.logs(), "no longer holds all of a version")
	})
	if m := scrape(t, b); !strings.Contains(m, "\nartmesh_holder_records_dropped_incomplete_total 1\n") {
		t.Fatalf("/metrics does not count the dropped record:\n%s", grepLines(m, "incomplete"))
	}
	waitFor(t, 60*time.Second, "two good holders again", func() bool {
		p := a.placement(t, art.ID)
		return len(p) == 1 && len(p[0].Holders) == 2 && p[0].State == "ok"
	})
	downloadExact(t, b, b.key, blob{art: art, data: data, via: "a"}, 30*time.Second, "node b after the repair")
	if !strings.Contains(b.logs(), "no longer holds all of a version") {
		t.Fatalf("b did not log that it gave up its holder record")
	}
}

// TestReadsNeverHang: content whose only holder stops answering (SIGSTOP:
// its connections stay open, nothing comes back, as across a partition)
// is refused with 503 and Retry-After within 10 s; a transfer whose
// holder stops mid-stream ends, cut short, within 30 s of its last
// progress. The holder is a test build that holds every block it serves
// back for a moment, so that a transfer is still under way when it stops.
func TestReadsNeverHang(t *testing.T) {
	bin := testBinary(t)
	saved := binary
	binary = bin
	os.Setenv("ARTMESH_TEST_SERVE_DELAY", "150ms")
	a := startDaemon(t, t.TempDir())
	os.Unsetenv("ARTMESH_TEST_SERVE_DELAY")
	binary = saved
	t.Cleanup(a.resume) // a stopped process is not stopped by SIGTERM
	// A read gives up 10 s after its fetch's last progress (20 s by
	// default), to keep the test short.
	b := joinDaemonArgs(t, a, t.TempDir(), "--read-stall-timeout", "10s")
	shareAdmin(t, a, b)
	setFactor1(t, a)
	still := createBlob(t, a, a.key, "still", 2_000_000, 75, "a")
	cut := createBlob(t, a, a.key, "cut", 6_000_000, 76, "a")
	b.call(t, "GET", "/v1/artifacts/"+cut.art.ID+"?consistent=true", nil, 200, nil)

	a.pause()
	start := time.Now()
	st, hdr, body, _ := httpDo(b, b.key, "GET", "/v1/artifacts/"+still.art.ID+"/content", nil, 30*time.Second)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("a read of content whose holder is unreachable took %s to answer %d", took, st)
	}
	if st != 503 || hdr.Get("Retry-After") == "" || errorCode(body) != "unavailable" {
		t.Fatalf("a read of content whose holder is unreachable: %d Retry-After %q %s", st, hdr.Get("Retry-After"), short(body))
	}
	a.resume()

	resp := b.do(t, b.key, "GET", "/v1/artifacts/"+cut.art.ID+"/content", nil)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET cut: %d", resp.StatusCode)
	}
	first := make([]byte, 300_000)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("reading the first bytes: %v", err)
	}
	a.pause()
	start = time.Now()
	rest, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	got := append(first, rest...)
	if err == nil && len(got) == len(cut.data) {
		t.Fatalf("the whole content came although its holder stopped (was the transfer over before?)")
	}
	if !bytes.Equal(got, cut.data[:len(got)]) {
		t.Fatal("the bytes served before the cut are wrong")
	}
	if took > 30*time.Second {
		t.Fatalf("the cut transfer ended %s after the holder stopped", took)
	}
	t.Logf("cut transfer ended after %s with %d of %d bytes: %v", took.Round(time.Millisecond), len(got), len(cut.data), err)
}
