package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeNode is an API server that answers from a table and records what it
// was sent.
type fakeNode struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   [][]byte
}

func (f *fakeNode) last() (*http.Request, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return nil, nil
	}
	return f.requests[len(f.requests)-1], f.bodies[len(f.bodies)-1]
}

const fakeArtifact = `{"id":"art_01JD0000000000000000000000","name":"data.json","owner":"admin","content_type":"application/json",
"size_bytes":9,"cid":"bafyX","version":1,"metadata":{"year":2025},"created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z"}`

func startFake(t *testing.T) (*fakeNode, string) {
	t.Helper()
	f := &fakeNode{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests, f.bodies = append(f.requests, r), append(f.bodies, body)
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer k1" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"code":"unauthenticated","message":"unknown API key"}}`)
			return
		}
		switch r.Method + " " + r.URL.Path {
		case "POST /v1/artifacts", "GET /v1/artifacts/art_01JD0000000000000000000000":
			w.WriteHeader(201)
			io.WriteString(w, fakeArtifact)
		case "GET /v1/artifacts":
			// Two pages: the second is the one after the cursor. No
			// artifact has a name asked for (put checks that first).
			if r.URL.Query().Get("name") != "" {
				io.WriteString(w, `{"items":[],"limit":1,"offset":0}`)
			} else if r.URL.Query().Get("cursor") == "" {
				io.WriteString(w, `{"items":[`+fakeArtifact+`],"limit":1,"offset":0,"next_cursor":"MTphcnRfMDFKRDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA"}`)
			} else {
				io.WriteString(w, `{"items":[`+strings.Replace(fakeArtifact, "art_01JD0000000000000000000000", "art_01JC0000000000000000000000", 1)+`],"limit":1,"offset":0}`)
			}
		case "GET /v1/artifacts/art_ok/content":
			w.Header().Set("Content-Length", "9")
			io.WriteString(w, `{"a":[1]}`)
		case "GET /v1/artifacts/art_short/content":
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "only part")
		default:
			w.WriteHeader(404)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no artifact `+strings.TrimPrefix(r.URL.Path, "/v1/artifacts/")+`"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// runCLI runs the command line with env and returns the exit status and
// the two streams.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if _, ok := env[envRepo]; !ok {
		env[envRepo] = t.TempDir()
	}
	c := &cli{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: envOf(env)}
	code := c.run(context.Background(), args)
	return code, stdout.String(), stderr.String()
}

func TestPut(t *testing.T) {
	f, url := startFake(t)
	file := filepath.Join(t.TempDir(), "data.json")
	os.WriteFile(file, []byte(`{"a":[1]}`), 0o600)
	env := map[string]string{envAPI: url, envAPIKey: "k1"}

	code, out, errOut := runCLI(t, env, "put", file, "--meta", "year:=2025", "--meta", "q=Q4", "--meta", "ver=1.0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	r, body := f.last()
	if r.URL.RawQuery != "name=data.json" || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("Artifact-Metadata") != `{"q":"Q4","ver":"1.0","year":2025}` || string(body) != `{"a":[1]}` || r.ContentLength != 9 {
		t.Errorf("sent %s %v %q", r.URL, r.Header, body)
	}
	if first, _, _ := strings.Cut(out, "\n"); first != "art_01JD0000000000000000000000" {
		t.Errorf("first line %q", first)
	}

	code, out, _ = runCLI(t, env, "--json", "put", file, "--name", "other", "--type", "text/x")
	var a map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &a) != nil || a["id"] != "art_01JD0000000000000000000000" {
		t.Errorf("--json: exit %d, %q", code, out)
	}
	if r, _ := f.last(); r.URL.RawQuery != "name=other" || r.Header.Get("Content-Type") != "text/x" {
		t.Errorf("sent %s %v", r.URL, r.Header)
	}
}

func TestGet(t *testing.T) {
	_, url := startFake(t)
	env := map[string]string{envAPI: url, envAPIKey: "k1"}
	dir := t.TempDir()

	code, out, errOut := runCLI(t, env, "get", "art_ok")
	if code != 0 || out != `{"a":[1]}` {
		t.Errorf("to stdout: exit %d, %q, %s", code, out, errOut)
	}
	path := filepath.Join(dir, "f.json")
	if code, _, errOut := runCLI(t, env, "get", "art_ok", "-o", path); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if data, _ := os.ReadFile(path); string(data) != `{"a":[1]}` {
		t.Errorf("file holds %q", data)
	}
	short := filepath.Join(dir, "short")
	code, _, errOut = runCLI(t, env, "get", "art_short", "-o", short)
	if code != 1 || !strings.HasPrefix(errOut, "artmesh: ") || !strings.Contains(errOut, "run the same get again to resume") {
		t.Errorf("short download: exit %d, %q", code, errOut)
	}
	// A failed download leaves only what resumes it, never the file.
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "f.json short.part short.part.json" {
		t.Errorf("a failed download left %v", names)
	}
}

func TestLs(t *testing.T) {
	f, url := startFake(t)
	env := map[string]string{envAPI: url, envAPIKey: "k1"}
	code, out, errOut := runCLI(t, env, "ls", "--type", "application/json", "--meta", "year=2025", "--limit", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	r, _ := f.last()
	if r.URL.RawQuery != "content_type=application%2Fjson&limit=1&metadata.year=2025" {
		t.Errorf("query %q", r.URL.RawQuery)
	}
	if !strings.HasPrefix(out, "ID ") || !strings.Contains(out, "art_01JD0000000000000000000000  data.json") {
		t.Errorf("table:\n%s", out)
	}
	if !strings.Contains(errOut, "next page: --cursor MTphcnRfMDFKRDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA ") {
		t.Errorf("no paging hint: %q", errOut)
	}

	// --cursor continues; --all follows the cursors to the last page.
	code, out, errOut = runCLI(t, env, "ls", "-q", "--cursor", "MTphcnRfMDFKRDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA")
	if r, _ := f.last(); code != 0 || r.URL.Query().Get("cursor") != "MTphcnRfMDFKRDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA" || out != "art_01JC0000000000000000000000\n" {
		t.Errorf("ls --cursor: exit %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = runCLI(t, env, "ls", "-q", "--all", "--limit", "1")
	if code != 0 || out != "art_01JD0000000000000000000000\nart_01JC0000000000000000000000\n" {
		t.Errorf("ls --all: exit %d, %q, %q", code, out, errOut)
	}
	if code, _, errOut = runCLI(t, env, "ls", "--cursor", "x", "--offset", "2"); code == 0 || !strings.Contains(errOut, "not both") {
		t.Errorf("ls --cursor --offset: exit %d, %q", code, errOut)
	}
}

func TestFailures(t *testing.T) {
	_, url := startFake(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		message string
	}{
		{"api error", map[string]string{envAPI: url, envAPIKey: "k1"}, []string{"info", "art_nope"}, 3, "artmesh: no artifact art_nope\n"},
		{"bad key", map[string]string{envAPI: url, envAPIKey: "wrong"}, []string{"info", "art_x"}, 4, "artmesh: unknown API key (the API key came from ARTMESH_API_KEY)\n"},
		{"no key", map[string]string{envAPI: url}, []string{"ls"}, 1, "run `artmesh init` or set ARTMESH_API_KEY"},
		{"unreachable", map[string]string{envAPI: closed.URL, envAPIKey: "k1"}, []string{"node"}, 5,
			"artmesh: cannot reach the artmesh node at " + closed.URL + ": is `artmesh daemon` (or `make run`) running?\n"},
		{"missing argument", map[string]string{}, []string{"info"}, 2, "Run 'artmesh info --help' for usage."},
		{"unknown flag", map[string]string{}, []string{"ls", "--nope"}, 2, "unknown flag: --nope"},
		{"unknown command", map[string]string{}, []string{"lss"}, 2, `did you mean ls?`},
		{"snippet not JSON", map[string]string{envAPI: url, envAPIKey: "k1"}, []string{"snippet", "s", "{nope"}, 2, "not valid JSON"},
		{"bad meta", map[string]string{}, []string{"put", "x", "--meta", "novalue"}, 2, "KEY=VALUE"},
		{"share without whom", map[string]string{}, []string{"share", "art_x"}, 2, "--agent or --group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.message) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tt.code, tt.message)
			}
		})
	}
}

// TestWriteFlags: writes send an Idempotency-Key (the caller's, or a fresh
// one each time) and the conditions the flags ask for.
func TestWriteFlags(t *testing.T) {
	f, url := startFake(t)
	file := filepath.Join(t.TempDir(), "data.json")
	os.WriteFile(file, []byte(`{"a":[1]}`), 0o600)
	env := map[string]string{envAPI: url, envAPIKey: "k1"}
	var keys []string
	for _, tc := range []struct {
		args []string
		want map[string]string // headers; "?" is any non-empty value
	}{
		{[]string{"put", file}, map[string]string{"Idempotency-Key": "?", "If-None-Match": "*", "Content-Digest": "sha-256=:/1Rkw0KH6exQW592VzpMsL1AjJbGU3tFj92ZP8fGFc4=:"}},
		{[]string{"put", file}, map[string]string{"Idempotency-Key": "?"}},
		{[]string{"put", "--new", file}, map[string]string{"Idempotency-Key": "?", "If-None-Match": ""}},
		{[]string{"put", file, "--idempotency-key", "run-7/put", "--if-none-match"}, map[string]string{"Idempotency-Key": "run-7/put", "If-None-Match": "*"}},
		{[]string{"snippet", "s.json", "1", "--if-none-match"}, map[string]string{"If-None-Match": "*"}},
		{[]string{"update", "art_ok", file, "--if-match", "bafyold"}, map[string]string{"If-Match": `"bafyold"`, "Idempotency-Key": "?"}},
		{[]string{"rm", "art_ok", "--if-match", `"bafyold"`, "--idempotency-key", "k-rm"}, map[string]string{"If-Match": `"bafyold"`, "Idempotency-Key": "k-rm"}},
	} {
		runCLI(t, env, tc.args...)
		r, _ := f.last()
		for h, want := range tc.want {
			got := r.Header.Get(h)
			if want == "?" && got == "" || want != "?" && got != want {
				t.Errorf("%q sent %s: %q, want %q", tc.args, h, got, want)
			}
		}
		if tc.args[0] == "put" && len(tc.args) == 2 {
			keys = append(keys, r.Header.Get("Idempotency-Key"))
		}
	}
	if len(keys) != 2 || keys[0] == keys[1] {
		t.Errorf("two puts sent keys %q, want two different ones", keys)
	}
}
