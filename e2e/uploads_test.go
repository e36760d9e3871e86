package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// uploadSession is the answer of POST /v1/uploads.
type uploadSession struct {
	ID            string `json:"id"`
	URL           string `json:"url"`
	Token         string `json:"token"`
	ExpiresAt     string `json:"expires_at"`
	SizeBytes     int64  `json:"size_bytes"`
	ReceivedBytes int64  `json:"received_bytes"`
	State         string `json:"state"`
}

// uploadStatus is the answer of GET /v1/uploads/{id} and of a PUT of bytes.
type uploadStatus struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	ContentType   string `json:"content_type"`
	SizeBytes     int64  `json:"size_bytes"`
	ReceivedBytes int64  `json:"received_bytes"`
	State         string `json:"state"`
	ExpiresAt     string `json:"expires_at"`
	ArtifactID    string `json:"artifact_id"`
	CID           string `json:"cid"`
}

// putUpload PUTs body to an upload URL with no API key (and contentRange
// as Content-Range when not empty), checks the status and returns the
// response's body and headers. A body of known length (*bytes.Reader,
// *strings.Reader) goes out with Content-Length; hide it behind
// io.MultiReader to send it chunked.
func putUpload(t *testing.T, uploadURL string, body io.Reader, contentRange string, want int) ([]byte, http.Header) {
	t.Helper()
	code, data, h := sendUpload(t, uploadURL, body, contentRange)
	if code != want {
		t.Fatalf("PUT %s (Content-Range %q): %d %s, want %d", redact(uploadURL), contentRange, code, data, want)
	}
	return data, h
}

// sendUpload PUTs body to an upload URL like putUpload and returns the
// status, body and headers of the answer.
func sendUpload(t *testing.T, uploadURL string, body io.Reader, contentRange string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest("PUT", uploadURL, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentRange != "" {
		req.Header.Set("Content-Range", contentRange)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", redact(uploadURL), err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data, resp.Header
}

// headUpload asks an upload URL how many bytes the node holds; it returns
// the status, Upload-Offset and Upload-Length (-1 when absent).
func headUpload(t *testing.T, uploadURL string) (int, int64, int64) {
	t.Helper()
	resp, err := http.Head(uploadURL)
	if err != nil {
		t.Fatalf("HEAD %s: %v", redact(uploadURL), err)
	}
	resp.Body.Close()
	num := func(h string) int64 {
		n, err := strconv.ParseInt(resp.Header.Get(h), 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	return resp.StatusCode, num("Upload-Offset"), num("Upload-Length")
}

// offsetOf asks an upload URL for its offset, failing unless it answers
// 200.
func offsetOf(t *testing.T, uploadURL string) int64 {
	t.Helper()
	code, off, _ := headUpload(t, uploadURL)
	if code != 200 {
		t.Fatalf("HEAD %s: %d", redact(uploadURL), code)
	}
	return off
}

// redact drops the token from an upload URL for messages.
func redact(u string) string {
	base, _, _ := strings.Cut(u, "?")
	return base
}

// withToken returns the content URL of upload id on d with token.
func withToken(d *daemon, id, token string) string {
	return d.url + "/v1/uploads/" + id + "/content?token=" + url.QueryEscape(token)
}

// patternSum is the SHA-256 of the patterned stream of n bytes with seed.
func patternSum(n int64, seed uint64) string {
	h := sha256.New()
	io.Copy(h, &patterned{n: n, seed: seed})
	return hex.EncodeToString(h.Sum(nil))
}

// contentSum downloads an artifact's content as key and returns its
// SHA-256 and length.
func contentSum(t *testing.T, d *daemon, key, id string) (string, int64) {
	t.Helper()
	resp := d.do(t, key, "GET", "/v1/artifacts/"+id+"/content", nil)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET content of %s: %d %s", id, resp.StatusCode, body)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("downloading %s: %v", id, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// dirSize is the bytes of the regular files under a repo, but for the
// catalog's log (raft/), whose segments are preallocated in large steps.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() && p == filepath.Join(dir, "raft") {
			return filepath.SkipDir
		}
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// TestUploadURL checks upload URLs: a 1 GiB upload broken off half way,
// resumed after a daemon restart and confirmed into identical content;
// what a short, a long or a misplaced PUT does; that an unconfirmable
// upload leaves nothing behind once abandoned; concurrent confirms; token
// confinement; uploads as new versions; and `artmesh upload`.
func TestUploadURL(t *testing.T) {
	repo := t.TempDir()
	d := startDaemon(t, repo)

	// Not a subtest: the daemon it restarts serves the subtests after it.
	{
		const size = 1 << 30
		const seed = 1234
		sumc := make(chan string, 1)
		go func() { sumc <- patternSum(size, seed) }()

		var up uploadSession
		d.call(t, "POST", "/v1/uploads", map[string]any{"name": "big.bin", "content_type": "application/octet-stream",
			"size_bytes": size, "metadata": map[string]any{"run": 7}}, 201, &up)
		if !strings.HasPrefix(up.ID, "upl_") || up.State != "open" || up.ReceivedBytes != 0 || up.SizeBytes != size ||
			!strings.HasPrefix(up.URL, d.url+"/v1/uploads/"+up.ID+"/content?token=") || up.Token == "" {
			t.Fatalf("upload session %+v", up)
		}
		if code, off, length := headUpload(t, up.URL); code != 200 || off != 0 || length != size {
			t.Fatalf("HEAD of a new upload: %d, offset %d, length %d", code, off, length)
		}

		// Send half, then break the connection off mid-body.
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			req, _ := http.NewRequestWithContext(context.Background(), "PUT", up.URL, pr)
			req.ContentLength = size
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				err = fmt.Errorf("the broken PUT answered %d %s", resp.StatusCode, body)
			}
			done <- err
		}()
		if _, err := io.CopyN(pw, &patterned{n: size, seed: seed}, size/2); err != nil {
			t.Fatal(err)
		}
		pw.CloseWithError(fmt.Errorf("connection cut by the test"))
		select {
		case err := <-done:
			t.Logf("the broken PUT ended with: %s", strings.ReplaceAll(err.Error(), url.QueryEscape(up.Token), "REDACTED"))
		case <-time.After(30 * time.Second):
			t.Fatal("the broken PUT did not end")
		}

		// Restart the daemon (SIGTERM): what arrived must survive it.
		d = d.restart(t)
		var st uploadStatus
		d.call(t, "GET", "/v1/uploads/"+up.ID, nil, 200, &st)
		off := offsetOf(t, up.URL)
		t.Logf("after the break and a restart the node holds %d of %d bytes (%.1f%%)", off, int64(size), 100*float64(off)/size)
		if off < size/4 || off > size/2 || st.ReceivedBytes != off || st.State != "open" {
			t.Fatalf("after the restart: offset %d, status %+v; want about half of %d", off, st, int64(size))
		}

		// A confirm now is too early.
		if code, body := d.status(t, d.key, "POST", "/v1/uploads/"+up.ID+"/confirm", map[string]any{}); code != 409 || errorCode(body) != "conflict" ||
			!strings.Contains(string(body), strconv.FormatInt(off, 10)) {
			t.Fatalf("confirm of a half upload: %d %s, want 409 conflict saying %d bytes arrived", code, body, off)
		}

		// Resume from the offset with Content-Range.
		rest := &offsetReader{p: &patterned{n: size, seed: seed}, skip: off}
		body, hdr := putUpload(t, up.URL, io.LimitReader(rest, size-off), fmt.Sprintf("bytes %d-%d/%d", off, size-1, int64(size)), 200)
		var after uploadStatus
		mustJSON(t, string(body), &after)
		if after.State != "received" || after.ReceivedBytes != size || hdr.Get("Upload-Offset") != strconv.Itoa(size) {
			t.Fatalf("after the resumed PUT: %s (Upload-Offset %q)", body, hdr.Get("Upload-Offset"))
		}

		sum := <-sumc
		bad := strings.Repeat("0", 64)
		if code, body := d.status(t, d.key, "POST", "/v1/uploads/"+up.ID+"/confirm", map[string]any{"sha256": bad}); code != 400 || errorCode(body) != "checksum_mismatch" {
			t.Fatalf("confirm with a wrong sha256: %d %s, want 400", code, body)
		}
		var a artifact
		d.call(t, "POST", "/v1/uploads/"+up.ID+"/confirm", map[string]any{"sha256": sum}, 201, &a)
		if a.SizeBytes != size || a.Name != "big.bin" || a.Version != 1 || a.Metadata["run"] != float64(7) || a.Owner != "admin" {
			t.Fatalf("confirm made %+v", a)
		}
		got, n := contentSum(t, d, d.key, a.ID)
		if got != sum || n != size {
			t.Fatalf("the artifact's content (%d bytes, sha256 %s) differs from what was uploaded (sha256 %s)", n, got, sum)
		}
		d.call(t, "GET", "/v1/uploads/"+up.ID, nil, 200, &st)
		if st.State != "confirmed" || st.CID != a.CID || st.SizeBytes != size || st.Name != "big.bin" {
			t.Errorf("the upload after confirm: %+v", st)
		}
		if st.ArtifactID != a.ID {
			t.Logf("note: GET /v1/uploads/{id} after confirm says artifact_id %q, not the artifact it became (%s)", st.ArtifactID, a.ID)
		}
		// Its token writes no more.
		if code, off, _ := headUpload(t, up.URL); code != 409 {
			t.Errorf("HEAD of the upload URL after confirm: %d (Upload-Offset %d), want 409 conflict", code, off)
		}
		b, _ := putUpload(t, up.URL, strings.NewReader("x"), "", 409)
		if errorCode(b) != "conflict" {
			t.Errorf("PUT after confirm: %s", b)
		}
		if code, body := d.status(t, d.key, "POST", "/v1/uploads/"+up.ID+"/confirm", map[string]any{"sha256": sum}); code != 409 {
			t.Errorf("a second confirm: %d %s, want 409", code, body)
		}
		d.call(t, "DELETE", "/v1/artifacts/"+a.ID, nil, 204, nil)
		d.call(t, "POST", "/v1/repo/gc", nil, 200, nil)
	}

	t.Run("short upload leaves nothing", func(t *testing.T) {
		const size = 32 << 20
		d.call(t, "POST", "/v1/repo/gc", nil, 200, nil)
		var before, after repoStat
		d.call(t, "GET", "/v1/repo/stat", nil, 200, &before)
		diskBefore := dirSize(t, repo)

		var up uploadSession
		d.call(t, "POST", "/v1/uploads", map[string]any{"name": "short.bin", "size_bytes": size}, 201, &up)
		body, _ := putUpload(t, up.URL, &patterned{n: size / 2, seed: 5}, "", 200)
		var st uploadStatus
		mustJSON(t, string(body), &st)
		if st.State != "open" || st.ReceivedBytes != size/2 {
			t.Fatalf("after a short PUT: %s", body)
		}
		if diskMid := dirSize(t, repo); diskMid < diskBefore+size/4 {
			t.Fatalf("the repo grew from %d to only %d bytes with %d bytes received: this check cannot see them", diskBefore, diskMid, size/2)
		}
		code, cb := d.status(t, d.key, "POST", "/v1/uploads/"+up.ID+"/confirm", map[string]any{"sha256": patternSum(size/2, 5)})
		if code != 409 || errorCode(cb) != "conflict" || !strings.Contains(string(cb), strconv.Itoa(size/2)) {
			t.Fatalf("confirm of a short upload: %d %s, want 409 saying %d bytes arrived", code, cb, size/2)
		}
		d.call(t, "DELETE", "/v1/uploads/"+up.ID, nil, 204, nil)
		d.call(t, "GET", "/v1/uploads/"+up.ID, nil, 404, nil)
		d.call(t, "POST", "/v1/uploads/"+up.ID+"/confirm", map[string]any{}, 404, nil)
		if code, _, _ := headUpload(t, up.URL); code != 404 {
			t.Errorf("HEAD of an abandoned upload: %d, want 404", code)
		}
		d.call(t, "POST", "/v1/repo/gc", nil, 200, nil)
		d.call(t, "GET", "/v1/repo/stat", nil, 200, &after)
		diskAfter := dirSize(t, repo)
		t.Logf("pack bytes %d -> %d; repo files %d -> %d bytes", before.PackBytes, after.PackBytes, diskBefore, diskAfter)
		if diff := after.PackBytes - before.PackBytes; diff > 1<<20 || diff < -(1<<20) {
			t.Errorf("pack bytes went from %d to %d", before.PackBytes, after.PackBytes)
		}
		if diskAfter > diskBefore+4<<20 {
			t.Errorf("the repo grew from %d to %d bytes: the abandoned upload's bytes are still there", diskBefore, diskAfter)
		}
		var page artifactPage
		d.call(t, "GET", "/v1/artifacts?name=short.bin", nil, 200, &page)
		if len(page.Items) != 0 {
			t.Errorf("the short upload became an artifact: %+v", page.Items)
		}
	})

	t.Run("offsets and sizes", func(t *testing.T) {
		var up uploadSession
		d.call(t, "POST", "/v1/uploads", map[string]any{"name": "ten.txt", "content_type": "text/plain", "size_bytes": 10}, 201, &up)
		// More than declared, in one go: refused, nothing kept.
		b, _ := putUpload(t, up.URL, strings.NewReader("0123456789X"), "", 400)
		if errorCode(b) != "invalid_argument" {
			t.Errorf("too long: %s", b)
		}
		if off := offsetOf(t, up.URL); off != 0 {
			t.Fatalf("a refused PUT left %d bytes", off)
		}
		putUpload(t, up.URL, strings.NewReader("01234"), "", 200)
		// Without Content-Range once bytes are there: a conflict that says
		// where to go on.
		b, h := putUpload(t, up.URL, strings.NewReader("56789"), "", 409)
		if errorCode(b) != "conflict" || h.Get("Upload-Offset") != "5" {
			t.Errorf("PUT from 0 again: %s, Upload-Offset %q", b, h.Get("Upload-Offset"))
		}
		// From the wrong offset.
		for _, tc := range [][2]string{{"bytes 3-9/10", "3456789"}, {"bytes 6-9/10", "6789"}} {
			b, h = putUpload(t, up.URL, strings.NewReader(tc[1]), tc[0], 409)
			if errorCode(b) != "conflict" || h.Get("Upload-Offset") != "5" {
				t.Errorf("PUT %s: %s, Upload-Offset %q", tc[0], b, h.Get("Upload-Offset"))
			}
		}
		// A total that is not the declared size.
		if code, b, h := sendUpload(t, up.URL, strings.NewReader("56789"), "bytes 5-9/11"); code != 409 || errorCode(b) != "conflict" || h.Get("Upload-Offset") != "5" {
			t.Errorf("PUT with Content-Range total 11 of a 10-byte upload: %d %s, Upload-Offset %q; want 409 conflict, Upload-Offset 5", code, b, h.Get("Upload-Offset"))
		}
		// More than declared, sent chunked so that only the node can tell.
		b, _ = putUpload(t, up.URL, io.MultiReader(strings.NewReader("56789XYZ")), "bytes 5-9/10", 400)
		if errorCode(b) != "invalid_argument" {
			t.Errorf("too long, chunked: %s", b)
		}
		if off := offsetOf(t, up.URL); off != 5 {
			t.Fatalf("a refused PUT changed the offset to %d", off)
		}
		b, _ = putUpload(t, up.URL, strings.NewReader("56789"), "bytes 5-9/10", 200)
		var st uploadStatus
		mustJSON(t, string(b), &st)
		if st.State != "received" || st.ReceivedBytes != 10 {
			t.Fatalf("after the last bytes: %s", b)
		}
		var a artifact
		d.call(t, "POST", "/v1/uploads/"+up.ID+"/confirm", map[string]any{"sha256": hex.EncodeToString(sha(("0123456789")))}, 201, &a)
		if a.ContentType != "text/plain" || a.SizeBytes != 10 || string(d.download(t, "/v1/artifacts/"+a.ID+"/content")) != "0123456789" {
			t.Fatalf("confirm made %+v", a)
		}
	})

	t.Run("concurrent confirms", func(t *testing.T) {
		for round := 0; round < 5; round++ {
			name := fmt.Sprintf("race-%d.bin", round)
			var up uploadSession
			d.call(t, "POST", "/v1/uploads", map[string]any{"name": name, "size_bytes": 1 << 20}, 201, &up)
			putUpload(t, up.URL, &patterned{n: 1 << 20, seed: uint64(round)}, "", 200)
			start := make(chan struct{})
			codes := make([]int, 2)
			var wg sync.WaitGroup
			for i := range codes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					codes[i], _ = d.status(t, d.key, "POST", "/v1/uploads/"+up.ID+"/confirm", map[string]any{})
				}()
			}
			close(start)
			wg.Wait()
			sort.Ints(codes)
			if codes[0] != 201 || codes[1] != 409 {
				t.Errorf("round %d: two confirms answered %v, want [201 409]", round, codes)
			}
			var page artifactPage
			d.call(t, "GET", "/v1/artifacts?name="+name, nil, 200, &page)
			if len(page.Items) != 1 || page.Items[0].Version != 1 {
				t.Fatalf("round %d: the two confirms made %+v", round, page.Items)
			}
			var vs struct {
				Items []any `json:"items"`
			}
			d.call(t, "GET", "/v1/artifacts/"+page.Items[0].ID+"/versions", nil, 200, &vs)
			if len(vs.Items) != 1 {
				t.Fatalf("round %d: %d versions", round, len(vs.Items))
			}
		}
	})

	t.Run("tokens", func(t *testing.T) {
		var a, b uploadSession
		d.call(t, "POST", "/v1/uploads", map[string]any{"name": "a.txt", "size_bytes": 3}, 201, &a)
		d.call(t, "POST", "/v1/uploads", map[string]any{"name": "b.txt", "size_bytes": 3}, 201, &b)
		crossed := withToken(d, b.ID, a.Token)
		body, _ := putUpload(t, crossed, strings.NewReader("aaa"), "", 403)
		if errorCode(body) != "permission_denied" {
			t.Errorf("a's token on b: %s", body)
		}
		if code, _, _ := headUpload(t, crossed); code != 403 {
			t.Errorf("HEAD of b with a's token: %d", code)
		}
		if off := offsetOf(t, b.URL); off != 0 {
			t.Fatalf("b holds %d bytes after a refused write", off)
		}
		for what, u := range map[string]string{
			"no token":      d.url + "/v1/uploads/" + b.ID + "/content",
			"garbage token": withToken(d, b.ID, "garbage"),
			"flipped token": withToken(d, b.ID, flipChar(b.Token, len(b.Token)/2)),
		} {
			body, _ := putUpload(t, u, strings.NewReader("bbb"), "", 401)
			if errorCode(body) != "unauthenticated" {
				t.Errorf("%s: %s", what, body)
			}
		}
		// A read token (a signed URL's) writes nothing either.
		if code, _ := d.status(t, "", "PUT", "/v1/uploads/"+b.ID+"/content?token="+url.QueryEscape(readToken(t, d)), "bbb"); code != 401 && code != 403 {
			t.Errorf("a read token on an upload: %d", code)
		}
		// The API key is no substitute for the token.
		if code, body := d.status(t, d.key, "PUT", "/v1/uploads/"+b.ID+"/content", "bbb"); code != 401 {
			t.Errorf("PUT with the API key and no token: %d %s", code, body)
		}
		putUpload(t, a.URL, strings.NewReader("aaa"), "", 200)
		d.call(t, "POST", "/v1/uploads/"+a.ID+"/confirm", nil, 201, nil)
		body, _ = putUpload(t, a.URL, strings.NewReader("aaa"), "", 409)
		if errorCode(body) != "conflict" {
			t.Errorf("a's token after confirm: %s", body)
		}
		body, _ = putUpload(t, crossed, strings.NewReader("aaa"), "", 403)
		if errorCode(body) != "permission_denied" {
			t.Errorf("a's confirmed token on b: %s", body)
		}

		// An upload that expires.
		var e uploadSession
		d.call(t, "POST", "/v1/uploads", map[string]any{"name": "e.txt", "size_bytes": 3, "expires_in": 1}, 201, &e)
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, _, _ := headUpload(t, e.URL)
			if code == 410 {
				break
			}
			if code != 200 || time.Now().After(deadline) {
				t.Fatalf("HEAD of an upload that expires in 1 s: %d", code)
			}
			time.Sleep(50 * time.Millisecond)
		}
		body, _ = putUpload(t, e.URL, strings.NewReader("eee"), "", 410)
		if errorCode(body) != "expired" {
			t.Errorf("PUT of an expired upload: %s", body)
		}
	})

	t.Run("new version", func(t *testing.T) {
		var orig artifact
		d.call(t, "POST", "/v1/artifacts?name=model.txt", "version one", 201, &orig, "Content-Type", "text/plain", "Artifact-Metadata", `{"stage":"a"}`)
		var up uploadSession
		d.call(t, "POST", "/v1/uploads", map[string]any{"size_bytes": 11, "artifact_id": orig.ID, "metadata": map[string]any{"stage": "b"}}, 201, &up)
		putUpload(t, up.URL, strings.NewReader("version two"), "", 200)
		var a artifact
		d.call(t, "POST", "/v1/uploads/"+up.ID+"/confirm", map[string]any{"sha256": hex.EncodeToString(sha("version two"))}, 201, &a)
		if a.ID != orig.ID || a.Version != 2 || a.Name != "model.txt" || a.ContentType != "text/plain" || a.Metadata["stage"] != "b" {
			t.Fatalf("the upload as a new version made %+v", a)
		}
		if got := d.download(t, "/v1/artifacts/"+orig.ID+"/content"); string(got) != "version two" {
			t.Fatalf("current content %q", got)
		}
		if got := d.download(t, "/v1/artifacts/"+orig.ID+"/content?version=1"); string(got) != "version one" {
			t.Fatalf("version 1 content %q", got)
		}
		var page artifactPage
		d.call(t, "GET", "/v1/artifacts?name=model.txt", nil, 200, &page)
		if len(page.Items) != 1 {
			t.Fatalf("%d artifacts named model.txt", len(page.Items))
		}
		// An upload for an artifact that is not the caller's.
		bob := d.addAgent(t, "bob")
		if code, body := d.status(t, bob, "POST", "/v1/uploads", map[string]any{"size_bytes": 1, "artifact_id": orig.ID}); code != 404 {
			t.Errorf("bob uploads a version of admin's artifact: %d %s", code, body)
		}
		if code, body := d.status(t, d.key, "POST", "/v1/uploads", map[string]any{"size_bytes": 1, "artifact_id": "art_01JD0000000000000000000000"}); code != 404 {
			t.Errorf("an upload for an unknown artifact: %d %s", code, body)
		}
	})

	t.Run("cli", func(t *testing.T) {
		const size = 64 << 20
		work := t.TempDir()
		file := filepath.Join(work, "dataset.bin")
		f, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, &patterned{n: size, seed: 64}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		var a artifact
		mustJSON(t, d.cli(t, "upload", file, "--meta", "split=train", "--json"), &a)
		if a.Name != "dataset.bin" || a.SizeBytes != size || a.Metadata["split"] != "train" || a.Version != 1 {
			t.Fatalf("artmesh upload made %+v", a)
		}
		if got, n := contentSum(t, d, d.key, a.ID); got != patternSum(size, 64) || n != size {
			t.Fatalf("the uploaded artifact differs from the file")
		}

		// As a new version, with text output.
		small := filepath.Join(work, "v2.txt")
		os.WriteFile(small, []byte("now small"), 0o600)
		out := d.cli(t, "upload", small, "--artifact", a.ID)
		if first, _, _ := strings.Cut(out, "\n"); first != a.ID || !strings.Contains(out, "version:") {
			t.Fatalf("artmesh upload --artifact printed %q", out)
		}
		if got := d.download(t, "/v1/artifacts/"+a.ID+"/content"); string(got) != "now small" {
			t.Fatalf("content after upload --artifact: %q", got)
		}

		// --resume an upload someone else began: half of it is there.
		const half = 8 << 20
		mid := filepath.Join(work, "mid.bin")
		g, _ := os.Create(mid)
		io.Copy(g, &patterned{n: 2 * half, seed: 65})
		g.Close()
		var up uploadSession
		d.call(t, "POST", "/v1/uploads", map[string]any{"name": "mid.bin", "size_bytes": 2 * half}, 201, &up)
		putUpload(t, up.URL, &patterned{n: half, seed: 65}, "", 200)
		var r artifact
		mustJSON(t, d.cli(t, "upload", "--resume", up.URL, mid, "--json"), &r)
		if r.Name != "mid.bin" || r.SizeBytes != 2*half {
			t.Fatalf("artmesh upload --resume made %+v", r)
		}
		if got, _ := contentSum(t, d, d.key, r.ID); got != patternSum(2*half, 65) {
			t.Fatal("the resumed upload's content differs from the file")
		}

		// A file that does not match the upload it resumes.
		var up2 uploadSession
		d.call(t, "POST", "/v1/uploads", map[string]any{"name": "x.bin", "size_bytes": 5}, 201, &up2)
		if _, errOut, err := d.cliRaw("upload", "--resume", up2.URL, mid); err == nil || !strings.Contains(errOut, "declared as 5 bytes") {
			t.Fatalf("resuming with the wrong file: %v %s", err, errOut)
		}
	})
}

// sha is the SHA-256 of s.
func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// flipChar changes character i of a token to another URL-safe base64
// character.
func flipChar(tok string, i int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	c := alphabet[(strings.IndexByte(alphabet, tok[i])+1)%len(alphabet)]
	return tok[:i] + string(c) + tok[i+1:]
}

// readToken makes a read token of a new artifact as the admin.
func readToken(t *testing.T, d *daemon) string {
	t.Helper()
	var a artifact
	d.call(t, "POST", "/v1/artifacts?name=r.txt", "r", 201, &a)
	var u signedURL
	d.call(t, "POST", "/v1/artifacts/"+a.ID+"/signed-url", nil, 201, &u)
	return u.Token
}

// TestUploadCLIResume kills the daemon with SIGKILL while `artmesh upload`
// is sending a 256 MiB file, starts it again on the same address, and
// checks that the command resumes where the node's copy ends and
// confirms an artifact identical to the file.
func TestUploadCLIResume(t *testing.T) {
	const size = 256 << 20
	repo := t.TempDir()
	d := startDaemon(t, repo)
	file := filepath.Join(t.TempDir(), "checkpoint.bin")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, &patterned{n: size, seed: 256}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sum := patternSum(size, 256)

	base := dirSize(t, repo)
	cmd := exec.Command(binary, "upload", file, "--json")
	cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo, "ARTMESH_API="+d.url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	exited := make(chan struct{})
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})

	// Kill the node once a good part of the file has arrived.
	deadline := time.Now().Add(30 * time.Second)
	for dirSize(t, repo) < base+size/4 {
		select {
		case <-exited:
			t.Fatalf("artmesh upload ended before the node was killed (%v): the file went through too fast to interrupt\n%s", exitErr, stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the upload did not get going within 30s")
		}
	}
	addr := strings.TrimPrefix(d.url, "http://")
	d.kill()
	t.Logf("killed the node with %d bytes in the repo", dirSize(t, repo)-base)
	d = startDaemonArgs(t, repo, addr)

	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("artmesh upload failed after the node came back: %v\n%s", exitErr, stderr.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("artmesh upload did not finish within 90s of the restart\n%s", stderr.String())
	}
	var a artifact
	mustJSON(t, stdout.String(), &a)
	if got, n := contentSum(t, d, d.key, a.ID); got != sum || n != size {
		t.Fatalf("the artifact (%d bytes) differs from the file", n)
	}
	var page artifactPage
	d.call(t, "GET", "/v1/artifacts", nil, 200, &page)
	if page.total() != 1 {
		t.Fatalf("%d artifacts after a resumed upload, want 1", page.total())
	}
}
