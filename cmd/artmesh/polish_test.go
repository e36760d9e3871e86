package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api"
	"github.com/artmesh/artmesh/node"
	nrepo "github.com/artmesh/artmesh/node/repo"
)

// TestEveryCommandHasExample walks the whole command tree: every command
// a user can see has an Example section in its help.
func TestEveryCommandHasExample(t *testing.T) {
	c := &cli{getenv: envOf(map[string]string{})}
	root := c.newRootCmd()
	var missing []string
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.Hidden {
			return
		}
		if cmd.Example == "" {
			missing = append(missing, cmd.CommandPath())
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if len(missing) > 0 {
		t.Errorf("commands without an Example: %q", missing)
	}
}

// testNode is a real node, in process, whose API is served through a
// handler that records the headers of content requests and can cut a
// download short, as a killed get would see it.
type testNode struct {
	url, key string
	mu       sync.Mutex
	ranges   []string // "Range|If-Range" of each content request
	cutAfter int64    // when > 0, the next content response stops after this many bytes
}

// startNode runs a real node in a temporary repo.
func startNode(t *testing.T) *testNode {
	t.Helper()
	repo := t.TempDir()
	ctx := context.Background()
	if err := nrepo.Init(ctx, repo, nrepo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.Open(ctx, node.Config{Repo: repo, Logger: log, GCDelay: -1, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{}
	h := api.New(n, log)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/content") && r.Method == http.MethodGet {
			tn.mu.Lock()
			tn.ranges = append(tn.ranges, r.Header.Get("Range")+"|"+r.Header.Get("If-Range"))
			cut := tn.cutAfter
			tn.cutAfter = 0
			tn.mu.Unlock()
			if cut > 0 {
				h.ServeHTTP(&cutWriter{ResponseWriter: w, left: cut}, r)
				panic(http.ErrAbortHandler) // the connection drops mid-body
			}
		}
		h.ServeHTTP(w, r)
	}))
	n.SetAPIListenAddr(srv.Listener.Addr().String())
	t.Cleanup(func() {
		srv.Close()
		n.Close()
	})
	key, err := os.ReadFile(filepath.Join(repo, nrepo.APIKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	tn.url, tn.key = srv.URL, strings.TrimSpace(string(key))
	return tn
}

// seen returns the Range|If-Range of the content requests so far and
// forgets them.
func (tn *testNode) seen() []string {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	s := tn.ranges
	tn.ranges = nil
	return s
}

// cutWriter passes on at most left bytes of a body.
type cutWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("cut")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ResponseWriter.Write(p)
	c.left -= int64(n)
	if err == nil && c.left == 0 {
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		return n, errors.New("cut")
	}
	return n, err
}

// run is one command line against the node.
type run struct {
	args      []string
	stdin     string
	stdoutTTY bool
	key       string // instead of the node's admin key
}

// exec runs r and returns the exit status and the two streams.
func (tn *testNode) exec(t *testing.T, r run) (int, string, string) {
	t.Helper()
	key := tn.key
	if r.key != "" {
		key = r.key
	}
	var stdout, stderr bytes.Buffer
	c := &cli{stdin: strings.NewReader(r.stdin), stdout: &stdout, stderr: &stderr, stdoutTTY: r.stdoutTTY,
		getenv: envOf(map[string]string{envAPI: tn.url, envAPIKey: key, envRepo: t.TempDir()})}
	code := c.run(context.Background(), r.args)
	return code, stdout.String(), stderr.String()
}

// must runs args and fails the test unless they exit 0; it returns stdout.
func (tn *testNode) must(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := tn.exec(t, run{args: args})
	if code != 0 {
		t.Fatalf("artmesh %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// putBytes stores data as a new artifact called name (another one if
// the name is in use) and returns its id.
func (tn *testNode) putBytes(t *testing.T, name string, data []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(tn.must(t, "put", "-q", "--new", file, "--name", name))
}

// patternBytes returns n bytes that are not text.
func patternBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func TestVersion(t *testing.T) {
	_, out, _ := runCLI(t, map[string]string{}, "version")
	code, flagOut, errOut := runCLI(t, map[string]string{}, "--version")
	if code != 0 || flagOut != out || !strings.HasPrefix(out, "artmesh version "+node.Version+"\n") || !strings.Contains(out, "\ngo: go") {
		t.Errorf("version %q, --version %q (exit %d, %s)", out, flagOut, code, errOut)
	}
	var v versionInfo
	_, js, _ := runCLI(t, map[string]string{}, "version", "--json")
	if err := json.Unmarshal([]byte(js), &v); err != nil || v.Version != node.Version || v.Go == "" {
		t.Errorf("version --json %q: %v", js, err)
	}
}

func TestExitCodesAndJSONErrors(t *testing.T) {
	tn := startNode(t)
	id := tn.putBytes(t, "only.txt", []byte("one version"))
	bob := tn.must(t, "--json", "agent", "add", "bob")
	var bobKey struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(bob), &bobKey); err != nil || bobKey.APIKey == "" {
		t.Fatalf("agent add: %q %v", bob, err)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, tt := range []struct {
		name string
		r    run
		url  string // instead of the node's
		code int
		api  string // the error code under --json
	}{
		{"not found", run{args: []string{"info", "art_01JD0000000000000000000000"}}, "", 3, "not_found"},
		{"name not found", run{args: []string{"get", "no-such-name"}}, "", 3, "not_found"},
		{"unauthenticated", run{args: []string{"ls"}, key: "wrong-key"}, "", 4, "unauthenticated"},
		{"permission denied", run{args: []string{"agent", "ls"}, key: bobKey.APIKey}, "", 4, "permission_denied"},
		{"unreachable", run{args: []string{"ls"}}, closed.URL, 5, "unavailable"},
		{"usage", run{args: []string{"ls", "--limit", "-1"}}, "", 2, "invalid_argument"},
		{"invalid input from the node", run{args: []string{"snippet", "bad\x01name", "[1]"}}, "", 2, "invalid_argument"},
		{"conflict is other", run{args: []string{"rm", id, "--version", "1"}}, "", 1, "conflict"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target := tn
			if tt.url != "" {
				target = &testNode{url: tt.url, key: tn.key}
			}
			code, out, errOut := target.exec(t, tt.r)
			if code != tt.code || out != "" || !strings.HasPrefix(errOut, "artmesh: ") {
				t.Errorf("text: exit %d, stdout %q, stderr %q; want exit %d", code, out, errOut, tt.code)
			}
			r := tt.r
			r.args = append([]string{"--json"}, r.args...)
			code, out, errOut = target.exec(t, r)
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal([]byte(errOut), &body); err != nil || code != tt.code || out != "" ||
				body.Error.Code != tt.api || body.Error.Message == "" {
				t.Errorf("--json: exit %d, stdout %q, stderr %q (%v); want exit %d and code %s", code, out, errOut, err, tt.code, tt.api)
			}
		})
	}
}

func TestCompletion(t *testing.T) {
	tn := startNode(t)
	a := tn.putBytes(t, "alpha.txt", []byte("a"))
	b1 := tn.putBytes(t, "twice.txt", []byte("b"))
	b2 := tn.putBytes(t, "twice.txt", []byte("c"))

	out := tn.must(t, "__complete", "get", "")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	want := []string{":4", "alpha.txt", a + "\talpha.txt", b1 + "\ttwice.txt", b2 + "\ttwice.txt"}
	sort.Strings(want)
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("__complete get:\n%s\nwant\n%s", out, strings.Join(want, "\n"))
	}
	// Ids only where a name is not accepted; the prefix narrows them.
	out = tn.must(t, "__complete", "rm", a[:len(a)-1])
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || lines[0] != a+"\talpha.txt" || lines[1] != ":4" {
		t.Errorf("__complete rm %s: %q", a[:len(a)-1], out)
	}
	// The second argument of update is a file.
	if out := tn.must(t, "__complete", "update", a, ""); strings.TrimSpace(out) != ":0" {
		t.Errorf("__complete update ID: %q", out)
	}
	// completion is listed in the help and makes a script.
	if out := tn.must(t, "--help"); !strings.Contains(out, "\n  completion ") {
		t.Errorf("completion is not listed in --help:\n%s", out)
	}
	if out := tn.must(t, "completion", "bash"); !strings.Contains(out, "__start_artmesh") {
		t.Errorf("completion bash: %.200q", out)
	}
}

func TestGetToTerminal(t *testing.T) {
	tn := startNode(t)
	bin := patternBytes(10000, 1)
	binID := tn.putBytes(t, "blob.bin", bin)
	textID := tn.putBytes(t, "note.bin", []byte("plain text, even as application/octet-stream: é\n"))
	for _, tt := range []struct {
		name string
		r    run
		code int
		out  string
		err  string
	}{
		{"binary to a terminal", run{args: []string{"get", binID}, stdoutTTY: true}, 2, "", "is binary (application/octet-stream, 9.8 KiB): not writing it to a terminal; give -o FILE, or -o - to write it anyway"},
		{"binary forced", run{args: []string{"get", binID, "-o", "-"}, stdoutTTY: true}, 0, string(bin), ""},
		{"binary to a pipe", run{args: []string{"get", binID}}, 0, string(bin), ""},
		{"text to a terminal", run{args: []string{"get", textID}, stdoutTTY: true}, 0, "plain text, even as application/octet-stream: é\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := tn.exec(t, tt.r)
			if code != tt.code || out != tt.out || !strings.Contains(errOut, tt.err) {
				t.Errorf("exit %d, stdout %d bytes, stderr %q; want exit %d, %d bytes, %q", code, len(out), errOut, tt.code, len(tt.out), tt.err)
			}
		})
	}
}

func TestLooksBinary(t *testing.T) {
	for _, tt := range []struct {
		head  string
		whole bool
		want  bool
	}{
		{"hello\n", true, false},
		{"a\x00b", true, true},
		{"\xff\xfe", true, true},
		{"caf\xc3", false, false}, // é cut by the sniff window
		{"caf\xc3", true, true},   // the content itself ends mid-rune
		{"", true, false},
	} {
		if got := looksBinary([]byte(tt.head), tt.whole); got != tt.want {
			t.Errorf("looksBinary(%q, %v) = %v", tt.head, tt.whole, got)
		}
	}
}

func TestGetToFile(t *testing.T) {
	tn := startNode(t)
	data := patternBytes(3<<20, 2)
	id := tn.putBytes(t, "weights.bin", data)
	dir := t.TempDir()
	check := func(t *testing.T, path string, want []byte) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, %v; want %d bytes", path, len(got), err, len(want))
		}
		for _, leftover := range []string{path + ".part", path + ".part.json"} {
			if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is left: %v", leftover, err)
			}
		}
	}

	t.Run("missing folders are created", func(t *testing.T) {
		path := filepath.Join(dir, "a", "b", "w.bin")
		tn.must(t, "get", id, "-o", path)
		check(t, path, data)
		tn.must(t, "get", id, "-o", filepath.Join(dir, "new")+"/")
		check(t, filepath.Join(dir, "new", "weights.bin"), data)
	})
	t.Run("no overwrite without --force", func(t *testing.T) {
		path := filepath.Join(dir, "keep.bin")
		os.WriteFile(path, []byte("mine"), 0o600)
		tn.seen()
		code, _, errOut := tn.exec(t, run{args: []string{"get", id, "-o", path}})
		if code != 1 || errOut != "artmesh: "+path+" exists: give --force to overwrite it\n" {
			t.Errorf("exit %d, %q", code, errOut)
		}
		if got, _ := os.ReadFile(path); string(got) != "mine" || len(tn.seen()) != 0 {
			t.Errorf("the refused get changed the file (%q) or downloaded", got)
		}
		tn.must(t, "get", id, "-o", path, "--force")
		check(t, path, data)
	})
	t.Run("an interrupted get resumes", func(t *testing.T) {
		path := filepath.Join(dir, "resume.bin")
		tn.seen()
		tn.mu.Lock()
		tn.cutAfter = 1 << 20
		tn.mu.Unlock()
		code, _, errOut := tn.exec(t, run{args: []string{"get", id, "-o", path}})
		if code != 1 || !strings.Contains(errOut, "run the same get again to resume "+path+".part") {
			t.Fatalf("cut get: exit %d, %q", code, errOut)
		}
		st, err := os.Stat(path + ".part")
		if err != nil || st.Size() != 1<<20 {
			t.Fatalf("part: %v, %v", st, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the interrupted get made %s: %v", path, err)
		}
		code, _, errOut = tn.exec(t, run{args: []string{"get", id, "-o", path}})
		if code != 0 || !strings.Contains(errOut, fmt.Sprintf("resuming %s.part at byte %d of %d", path, 1<<20, len(data))) {
			t.Fatalf("resume: exit %d, %q", code, errOut)
		}
		check(t, path, data)
		cid := infoCID(t, tn, id)
		if got := tn.seen(); len(got) != 2 || got[0] != "|" || got[1] != fmt.Sprintf(`bytes=%d-|"%s"`, 1<<20, cid) {
			t.Errorf("requests %q", got)
		}
	})
	t.Run("a part of an older version starts over", func(t *testing.T) {
		path := filepath.Join(dir, "changed.bin")
		old := infoCID(t, tn, id)
		os.WriteFile(path+".part", data[:1000], 0o644)
		os.WriteFile(path+".part.json", []byte(`{"artifact_id":"`+id+`","version":0,"cid":"`+old+`"}`), 0o644)
		v2 := patternBytes(2<<20, 3)
		file := filepath.Join(t.TempDir(), "v2")
		os.WriteFile(file, v2, 0o600)
		tn.must(t, "update", id, file)
		tn.seen()
		tn.must(t, "get", id, "-o", path)
		check(t, path, v2)
		if got := tn.seen(); len(got) != 1 || got[0] != `bytes=1000-|"`+old+`"` {
			t.Errorf("requests %q", got)
		}
		data = v2
	})
	t.Run("a part longer than the content starts over", func(t *testing.T) {
		path := filepath.Join(dir, "long.bin")
		cid := infoCID(t, tn, id)
		os.WriteFile(path+".part", make([]byte, len(data)+10), 0o644)
		os.WriteFile(path+".part.json", []byte(`{"artifact_id":"`+id+`","version":0,"cid":"`+cid+`"}`), 0o644)
		tn.must(t, "get", id, "-o", path)
		check(t, path, data)
	})
	t.Run("a part of another artifact is not resumed", func(t *testing.T) {
		path := filepath.Join(dir, "other.bin")
		os.WriteFile(path+".part", []byte("junk"), 0o644)
		os.WriteFile(path+".part.json", []byte(`{"artifact_id":"art_01JD0000000000000000000000","version":0,"cid":"bafyX"}`), 0o644)
		tn.seen()
		tn.must(t, "get", id, "-o", path)
		check(t, path, data)
		if got := tn.seen(); len(got) != 1 || got[0] != "|" {
			t.Errorf("requests %q", got)
		}
	})
}

// infoCID returns the current CID of artifact id.
func infoCID(t *testing.T, tn *testNode, id string) string {
	t.Helper()
	var a artmesh.Artifact
	if err := json.Unmarshal([]byte(tn.must(t, "--json", "info", id)), &a); err != nil {
		t.Fatal(err)
	}
	return a.CID
}

func TestGetByName(t *testing.T) {
	tn := startNode(t)
	one := tn.putBytes(t, "unique.txt", []byte("u"))
	d1 := tn.putBytes(t, "dup.txt", []byte("d1"))
	d2 := tn.putBytes(t, "dup.txt", []byte("d2"))
	if out := tn.must(t, "get", "unique.txt"); out != "u" {
		t.Errorf("get unique.txt: %q", out)
	}
	if out := tn.must(t, "info", "-q", "unique.txt"); out != one+"\n" {
		t.Errorf("info unique.txt: %q", out)
	}
	code, out, errOut := tn.exec(t, run{args: []string{"get", "dup.txt"}})
	// Newest first, as the listing sends them.
	want := fmt.Sprintf("artmesh: 2 artifacts are named \"dup.txt\": give one of their ids: %s, %s\n", d2, d1)
	if code != 2 || out != "" || errOut != want {
		t.Errorf("ambiguous: exit %d, %q, %q; want %q", code, out, errOut, want)
	}
	// A name shared with the caller resolves too.
	bob := tn.must(t, "--json", "agent", "add", "bob")
	var k struct {
		APIKey string `json:"api_key"`
	}
	json.Unmarshal([]byte(bob), &k)
	tn.must(t, "share", one, "--agent", "bob")
	if code, out, errOut := tn.exec(t, run{args: []string{"get", "unique.txt"}, key: k.APIKey}); code != 0 || out != "u" {
		t.Errorf("bob's get by name: exit %d, %q, %s", code, out, errOut)
	}
}

func TestQuietSnippetMetaMembers(t *testing.T) {
	tn := startNode(t)
	file := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(file, []byte("x"), 0o600)
	out := tn.must(t, "put", "-q", file, "--meta", "ver=1.0", "--meta", "n:=1", "--meta", `tags:=["a"]`)
	id := strings.TrimSpace(out)
	if !artmesh.ValidArtifactID(id) || out != id+"\n" {
		t.Fatalf("put -q: %q", out)
	}
	var a artmesh.Artifact
	json.Unmarshal([]byte(tn.must(t, "--json", "info", id)), &a)
	if got := metaText(a.Metadata); got != `{"n":1,"tags":["a"],"ver":"1.0"}` {
		t.Errorf("metadata %s", got)
	}

	code, out, errOut := tn.exec(t, run{args: []string{"snippet", "-q", "from-stdin.json"}, stdin: `{"lr": 0.001}`})
	sid := strings.TrimSpace(out)
	if code != 0 || !artmesh.ValidArtifactID(sid) {
		t.Fatalf("snippet from stdin: exit %d, %q, %s", code, out, errOut)
	}
	if got := tn.must(t, "get", sid); got != `{"lr":0.001}` { // the node stores it compacted
		t.Errorf("snippet content %q", got)
	}
	if code, _, errOut := tn.exec(t, run{args: []string{"snippet", "bad.json"}, stdin: `{nope`}); code != 2 || !strings.Contains(errOut, "not valid JSON") {
		t.Errorf("bad stdin snippet: exit %d, %q", code, errOut)
	}

	if out := tn.must(t, "ls", "-q"); out != sid+"\n"+id+"\n" {
		t.Errorf("ls -q: %q", out)
	}

	var self struct {
		PeerID string `json:"peer_id"`
	}
	json.Unmarshal([]byte(tn.must(t, "--json", "node")), &self)
	out = tn.must(t, "mesh", "members")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "THIS PEER ROLE REACHABLE LEADER HELD UNDER-REPLICATED ADDRESSES" {
		t.Fatalf("mesh members:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) < 8 || f[0] != "*" || f[1] != self.PeerID || f[2] != "voter" || f[4] != "yes" {
		t.Errorf("row %q", lines[1])
	}
	if out := tn.must(t, "mesh", "members", "-q"); out != self.PeerID+"\n" {
		t.Errorf("mesh members -q: %q", out)
	}
}
