package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

func TestParseUploadURL(t *testing.T) {
	for _, tt := range []struct {
		in, id string
		ok     bool
	}{
		{"http://127.0.0.1:7480/v1/uploads/upl_01ABC/content?token=T", "upl_01ABC", true},
		{"https://node.example/v1/uploads/upl_1/content?token=a%2Bb", "upl_1", true},
		{"http://h/v1/uploads/upl_1/content", "", false},               // no token
		{"http://h/v1/uploads//content?token=T", "", false},            // no id
		{"http://h/v1/uploads/a/b/content?token=T", "", false},         // id with a slash
		{"http://h/v1/uploads/upl_1?token=T", "", false},               // not the content URL
		{"http://h/v1/artifacts/upl_1/content?token=T", "", false},     // not an upload
		{"/v1/uploads/upl_1/content?token=T", "", false},               // no host
		{"ftp://h/v1/uploads/upl_1/content?token=T", "", false},        // not HTTP
		{"http://h/v1/uploads/upl%2F1/content?token=T", "", false},     // escaped slash
		{"http://h/v1/uploads/upl_%31/content?token=T", "upl_1", true}, // escaped character
		{"::not a url", "", false},
	} {
		got, err := parseUploadURL(tt.in)
		if (err == nil) != tt.ok || got.id != tt.id || tt.ok && got.url != tt.in {
			t.Errorf("parseUploadURL(%q) = %+v, %v; want id %q, ok %v", tt.in, got, err, tt.id, tt.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestRetryable(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"transport", fmt.Errorf("client.PutUpload: %w", io.ErrUnexpectedEOF), true},
		{"unreachable", fmt.Errorf("client.PutUpload: %w at x: %w", client.ErrUnreachable, errors.New("refused")), true},
		{"server error", &client.Error{Status: 500, Code: "internal"}, true},
		{"unavailable", &client.Error{Status: 503, Code: "unavailable"}, true},
		{"disk full", &client.Error{Status: 507, Code: "insufficient_storage"}, false},
		{"over quota", &client.Error{Status: 507, Code: "quota_exceeded"}, false},
		{"conflict", &client.Error{Status: 409, Code: "conflict"}, false},
		{"bad token", &client.Error{Status: 401, Code: "unauthenticated"}, false},
		{"expired", &client.Error{Status: 410, Code: "expired"}, false},
		{"too many bytes", &client.Error{Status: 400, Code: "invalid_argument"}, false},
		{"client refused", artmesh.E(artmesh.Invalid, "offset outside"), false},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), false},
		{"file", fileError{errors.New("disk")}, false},
	} {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("%s: retryable = %v, want %v", tt.name, got, tt.want)
		}
		if got := retryablePut(tt.err); got != (tt.want || tt.name == "conflict") {
			t.Errorf("%s: retryablePut = %v", tt.name, got)
		}
	}
}

// TestPrefixHash reads a file as a resumed upload would, with resumes
// backwards (bytes sent again) and forwards (bytes the node had from
// elsewhere), and checks that the hash is the whole file's.
func TestPrefixHash(t *testing.T) {
	data := make([]byte, 100000)
	for i := range data {
		data[i] = byte(i * 7 % 251)
	}
	want := sha256.Sum256(data)
	src := bytes.NewReader(data)
	for _, plan := range [][][2]int64{
		{{0, 100000}},
		{{0, 40000}, {30000, 100000}},    // resumed behind what was read
		{{0, 40000}, {60000, 100000}},    // resumed ahead: 40000-60000 read for the hash
		{{50000, 70000}, {10000, 20000}}, // a resume that starts ahead, then one behind
		{{0, 10}, {10, 11}, {5, 50}, {99999, 100000}},
		{},
	} {
		p := newPrefixHash()
		for _, step := range plan {
			if err := p.catchUp(src, step[0]); err != nil {
				t.Fatal(err)
			}
			r := p.reader(iotestHalfReader(io.NewSectionReader(src, step[0], step[1]-step[0])), step[0])
			if _, err := io.Copy(io.Discard, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.catchUp(src, int64(len(data))); err != nil {
			t.Fatal(err)
		}
		if got := p.h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Errorf("plan %v: hash differs", plan)
		}
	}
	p := newPrefixHash()
	err := p.catchUp(src, int64(len(data))+1)
	var fe fileError
	if !errors.As(err, &fe) {
		t.Errorf("catching up past the end: %v", err)
	}
}

// iotestHalfReader returns reads of at most 1000 bytes, to exercise the
// hashing reader's bookkeeping across many short reads.
func iotestHalfReader(r io.Reader) io.Reader { return io.LimitReader(&smallReads{r}, 1<<62) }

type smallReads struct{ r io.Reader }

func (s *smallReads) Read(b []byte) (int, error) {
	if len(b) > 1000 {
		b = b[:1000]
	}
	return s.r.Read(b)
}

// fakeUploads is a node that answers the upload routes and misbehaves on
// request: it breaks PUTs off after some bytes or answers 503.
type fakeUploads struct {
	t   *testing.T
	mu  sync.Mutex
	url string

	size      int64
	got       []byte
	state     string
	confirmed string // the sha256 confirm was given

	// failures, consumed one per PUT: "break N" keeps N bytes of the body
	// then drops the connection; "503" answers 503 before reading.
	failures []string
	puts     []string // the Content-Range of each PUT ("" for none)
	heads    int
	confirms int

	headConflict    bool   // HEAD answers 409, as for a confirmed upload
	confirmConflict bool   // confirm answers 409
	confirmDrop     bool   // the first confirm works but its answer is lost
	confirmKey      string // the Idempotency-Key of the confirm that worked: the node answers it again as it did
	openOnce        bool   // the first GET of the upload says open, whatever its state (the node was taking the bytes in)
}

func startFakeUploads(t *testing.T) *fakeUploads {
	f := &fakeUploads{t: t, state: "open"}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fakeUploads) uploadURL() string {
	return f.url + "/v1/uploads/upl_1/content?token=tok"
}

func (f *fakeUploads) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"code":%q,"message":"%s"}}`, code, code)
	}
	if strings.HasSuffix(r.URL.Path, "/content") {
		if r.URL.Query().Get("token") != "tok" {
			fail(401, "unauthenticated")
			return
		}
	} else if r.Header.Get("Authorization") != "Bearer k1" {
		fail(401, "unauthenticated")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method + " " + r.URL.Path {
	case "POST /v1/uploads":
		var req client.UploadRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.size = req.SizeBytes
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(client.Upload{URL: f.uploadURL(), UploadStatus: client.UploadStatus{ID: "upl_1", Token: "tok", SizeBytes: f.size, State: "open"}})
	case "GET /v1/uploads/upl_1":
		st := client.UploadStatus{ID: "upl_1", SizeBytes: f.size, ReceivedBytes: int64(len(f.got)), State: f.state}
		if f.openOnce {
			st.State, f.openOnce = "open", false
		}
		if f.state == "confirmed" {
			st.ArtifactID = "art_up"
		}
		json.NewEncoder(w).Encode(st)
	case "GET /v1/artifacts/art_up":
		fmt.Fprintf(w, `{"id":"art_up","name":"f.bin","size_bytes":%d,"version":1}`, f.size)
	case "HEAD /v1/uploads/upl_1/content":
		f.heads++
		if f.headConflict {
			w.WriteHeader(409)
			return
		}
		w.Header().Set("Upload-Offset", fmt.Sprint(len(f.got)))
		w.Header().Set("Upload-Length", fmt.Sprint(f.size))
	case "PUT /v1/uploads/upl_1/content":
		cr := r.Header.Get("Content-Range")
		f.puts = append(f.puts, cr)
		start, total := int64(0), f.size
		if n, err := fmt.Sscanf(cr, "bytes */%d", &total); err == nil && n == 1 {
			start = total // no bytes: finish what is all here
		} else if cr != "" {
			var end int64
			if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &start, &end, &total); err != nil {
				fail(400, "invalid_argument")
				return
			}
		}
		if start != int64(len(f.got)) || total != f.size || f.state != "open" {
			w.Header().Set("Upload-Offset", fmt.Sprint(len(f.got)))
			fail(409, "conflict")
			return
		}
		var failure string
		if len(f.failures) > 0 {
			failure, f.failures = f.failures[0], f.failures[1:]
		}
		if failure == "503" {
			fail(503, "unavailable")
			return
		}
		var keep int64 = -1
		if _, err := fmt.Sscanf(failure, "break %d", &keep); err == nil {
			part, _ := io.ReadAll(io.LimitReader(r.Body, keep))
			f.got = append(f.got, part...)
			panic(http.ErrAbortHandler)
		}
		rest, err := io.ReadAll(io.LimitReader(r.Body, f.size-int64(len(f.got))+1))
		f.got = append(f.got, rest...)
		if err != nil || int64(len(f.got)) > f.size {
			f.t.Errorf("PUT: %v, now %d of %d bytes", err, len(f.got), f.size)
		}
		if int64(len(f.got)) == f.size {
			f.state = "received"
		}
		fmt.Fprintf(w, `{"id":"upl_1","received_bytes":%d,"size_bytes":%d,"state":%q}`, len(f.got), f.size, f.state)
	case "POST /v1/uploads/upl_1/confirm":
		var req struct {
			SHA256 string `json:"sha256"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		sum := sha256.Sum256(f.got)
		f.confirms++
		key := r.Header.Get("Idempotency-Key")
		switch {
		case f.state == "confirmed" && key != "" && key == f.confirmKey:
			w.WriteHeader(201) // a replay, as a node answers one
			fmt.Fprintf(w, `{"id":"art_up","name":"f.bin","size_bytes":%d,"version":1}`, f.size)
		case f.state != "received" || f.confirmConflict:
			fail(409, "conflict")
		case req.SHA256 != hex.EncodeToString(sum[:]):
			fail(400, "invalid_argument")
		default:
			f.state, f.confirmed, f.confirmKey = "confirmed", req.SHA256, key
			if f.confirmDrop {
				f.confirmDrop = false
				panic(http.ErrAbortHandler)
			}
			w.WriteHeader(201)
			fmt.Fprintf(w, `{"id":"art_up","name":"f.bin","size_bytes":%d,"version":1}`, f.size)
		}
	default:
		fail(404, "not_found")
	}
}

// runUploadCLI runs the command line against the fake with instant
// retries.
func runUploadCLI(t *testing.T, f *fakeUploads, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := map[string]string{envAPI: f.url, envAPIKey: "k1", envRepo: t.TempDir()}
	var waits []time.Duration
	c := &cli{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: envOf(env),
		sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	code := c.run(context.Background(), args)
	t.Logf("waits between retries: %v", waits)
	return code, stdout.String(), stderr.String()
}

// testFile writes n deterministic bytes to a file and returns its path and
// content.
func testFile(t *testing.T, n int) (string, []byte) {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*31 + i/256)
	}
	path := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// TestUploadResumes breaks an upload off twice and answers 503 once, and
// checks that the command resumes each time from where the node's copy
// ends and confirms with the file's SHA-256.
func TestUploadResumes(t *testing.T) {
	f := startFakeUploads(t)
	path, data := testFile(t, 3<<20)
	f.failures = []string{"break 1000000", "503", "break 500000"}
	code, out, errOut := runUploadCLI(t, f, "--json", "upload", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var a artmesh.Artifact
	if err := json.Unmarshal([]byte(out), &a); err != nil || a.ID != "art_up" {
		t.Fatalf("printed %q", out)
	}
	if !bytes.Equal(f.got, data) {
		t.Fatalf("the node got %d bytes that differ from the file's %d", len(f.got), len(data))
	}
	sum := sha256.Sum256(data)
	if f.confirmed != hex.EncodeToString(sum[:]) {
		t.Fatalf("confirmed with %q", f.confirmed)
	}
	want := []string{"", "bytes 1000000-3145727/3145728", "bytes 1000000-3145727/3145728", "bytes 1500000-3145727/3145728"}
	if fmt.Sprint(f.puts) != fmt.Sprint(want) {
		t.Fatalf("PUTs %q, want %q", f.puts, want)
	}
	if f.heads != 3 {
		t.Fatalf("%d HEADs, want 3", f.heads)
	}
}

// TestUploadGivesUp answers 503 to every PUT and checks that the command
// stops after 5 retries, saying how to resume.
func TestUploadGivesUp(t *testing.T) {
	f := startFakeUploads(t)
	path, _ := testFile(t, 1000)
	f.failures = []string{"503", "503", "503", "503", "503", "503", "503", "503"}
	code, _, errOut := runUploadCLI(t, f, "upload", path)
	if code != 1 || !strings.Contains(errOut, "giving up after 5 retries") ||
		!strings.Contains(errOut, "run the same command again, or use:\n  artmesh upload --resume '"+f.uploadURL()+"' "+path+"\n") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if len(f.puts) != 6 || f.confirmed != "" {
		t.Fatalf("%d PUTs, confirmed %q", len(f.puts), f.confirmed)
	}
}

// TestUploadResumeFlag continues an upload of which the node already holds
// a part sent by someone else.
func TestUploadResumeFlag(t *testing.T) {
	f := startFakeUploads(t)
	path, data := testFile(t, 100000)
	f.size, f.got = int64(len(data)), append([]byte(nil), data[:12345]...)
	code, out, errOut := runUploadCLI(t, f, "upload", "--resume", f.uploadURL(), path)
	if code != 0 || !strings.HasPrefix(out, "art_up\n") {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	if !bytes.Equal(f.got, data) || fmt.Sprint(f.puts) != "[bytes 12345-99999/100000]" {
		t.Fatalf("PUTs %q; the node holds %d bytes", f.puts, len(f.got))
	}
	sum := sha256.Sum256(data)
	if f.confirmed != hex.EncodeToString(sum[:]) {
		t.Fatalf("confirmed with %q", f.confirmed)
	}

	// All of it there already: only the confirm is left.
	f2 := startFakeUploads(t)
	f2.size, f2.got, f2.state = int64(len(data)), append([]byte(nil), data...), "received"
	if code, _, errOut := runUploadCLI(t, f2, "upload", "--resume", f2.uploadURL(), path); code != 0 || len(f2.puts) != 0 || f2.confirmed == "" {
		t.Fatalf("exit %d, PUTs %q: %s", code, f2.puts, errOut)
	}

	// A file of another size than the upload's.
	f3 := startFakeUploads(t)
	f3.size = 5
	if code, _, errOut := runUploadCLI(t, f3, "upload", "--resume", f3.uploadURL(), path); code != 1 || !strings.Contains(errOut, "declared as 5 bytes") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestUploadUsage(t *testing.T) {
	f := startFakeUploads(t)
	path, _ := testFile(t, 10)
	for _, tt := range []struct {
		args    []string
		message string
	}{
		{[]string{"upload", "-"}, "use put to store stdin"},
		{[]string{"upload", "--resume", "http://h/v1/uploads/u/content", path}, "has no token"},
		{[]string{"upload", "--resume", f.uploadURL(), "--name", "x", path}, "takes no --name"},
		{[]string{"upload"}, "accepts 1 arg"},
	} {
		code, _, errOut := runUploadCLI(t, f, tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.message) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tt.args, code, errOut, tt.message)
		}
	}
	if code, _, errOut := runUploadCLI(t, f, "upload", t.TempDir()); code != 2 || !strings.Contains(errOut, "not a regular file") {
		t.Errorf("a directory: exit %d, %q", code, errOut)
	}
}

// TestUploadConflicts checks that conflicts that retrying cannot mend end
// the command at once: a HEAD or a confirm answering 409.
func TestUploadConflicts(t *testing.T) {
	path, _ := testFile(t, 1000)

	f := startFakeUploads(t)
	f.failures, f.headConflict = []string{"503"}, true
	code, _, errOut := runUploadCLI(t, f, "upload", path)
	if code != 1 || f.heads != 1 || len(f.puts) != 1 {
		t.Errorf("HEAD conflict: exit %d, %d HEADs, %d PUTs: %s", code, f.heads, len(f.puts), errOut)
	}

	f = startFakeUploads(t)
	f.confirmConflict = true
	code, _, errOut = runUploadCLI(t, f, "upload", path)
	if code != 1 || f.confirms != 1 || !strings.Contains(errOut, "artmesh: conflict") {
		t.Errorf("confirm conflict: exit %d, %d confirms: %s", code, f.confirms, errOut)
	}
}

// TestUploadConfirmLost loses the answer of a confirm that worked and
// checks that the command gets the artifact: the client sends the confirm
// again with its idempotency key, which the node answers as the first.
func TestUploadConfirmLost(t *testing.T) {
	path, _ := testFile(t, 1000)
	f := startFakeUploads(t)
	f.confirmDrop = true
	code, out, errOut := runUploadCLI(t, f, "upload", path)
	if code != 0 || !strings.HasPrefix(out, "art_up\n") || f.confirms != 2 {
		t.Errorf("exit %d, %d confirms, stdout %q, stderr %s", code, f.confirms, out, errOut)
	}
}

// TestUploadFinishesWhatIsAllThere continues an upload whose bytes all
// reached the node, which did not take them in (open, not received): the
// command sends a PUT of no bytes (bytes */N) that finishes it, then
// confirms, where it used to confirm at once and be refused.
func TestUploadFinishesWhatIsAllThere(t *testing.T) {
	f := startFakeUploads(t)
	path, data := testFile(t, 4096)
	f.size, f.got = int64(len(data)), append([]byte(nil), data...) // all here, still open
	code, _, errOut := runUploadCLI(t, f, "upload", "--resume", f.uploadURL(), path)
	if code != 0 || f.confirmed == "" {
		t.Fatalf("exit %d, confirmed %q: %s", code, f.confirmed, errOut)
	}
	if len(f.puts) != 1 || f.puts[0] != fmt.Sprintf("bytes */%d", len(data)) {
		t.Errorf("PUTs %q, want one of no bytes (bytes */%d)", f.puts, len(data))
	}
}

// TestUploadFinishFindsItReceived: the PUT of no bytes is refused (409)
// because the node took the bytes in meanwhile; the command reads the
// upload, finds it received, and confirms.
func TestUploadFinishFindsItReceived(t *testing.T) {
	f := startFakeUploads(t)
	path, data := testFile(t, 4096)
	f.size, f.got, f.state, f.openOnce = int64(len(data)), append([]byte(nil), data...), "received", true
	code, _, errOut := runUploadCLI(t, f, "upload", "--resume", f.uploadURL(), path)
	if code != 0 || f.confirmed == "" {
		t.Fatalf("exit %d, confirmed %q: %s", code, f.confirmed, errOut)
	}
	if len(f.puts) != 1 || f.puts[0] != fmt.Sprintf("bytes */%d", len(data)) {
		t.Errorf("PUTs %q, want the one of no bytes that was refused", f.puts)
	}
}
