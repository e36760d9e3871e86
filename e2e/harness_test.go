// Package e2e runs the real artmesh binary as separate processes on
// 127.0.0.1 and uses them only through the HTTP API and the CLI, as a user
// would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the artmesh binary built once for the whole run.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "artmesh-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "artmesh")
	build := exec.Command("go", "build", "-o", binary, "../cmd/artmesh")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building artmesh:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is one running node process.
type daemon struct {
	t    testing.TB
	repo string
	args []string // extra daemon flags, kept for restart
	bin  string   // the binary spawn ran (binary, or a test build), kept for relaunch
	ns   string   // the network namespace it runs in ("": the test's own), kept for relaunch
	cmd  *exec.Cmd
	url  string
	key  string
	done chan struct{}
	log  *bytes.Buffer
}

// startDaemon initialises repo if needed and starts a node on a free port.
func startDaemon(t testing.TB, repo string) *daemon {
	t.Helper()
	return startDaemonArgs(t, repo, "127.0.0.1:0")
}

// startDaemonArgs initialises repo if needed and starts a node whose API
// listens on addr ("127.0.0.1:0" for a free port), with extra daemon
// flags such as "--token-clock-skew", "0s".
func startDaemonArgs(t testing.TB, repo, addr string, args ...string) *daemon {
	t.Helper()
	os.Remove(filepath.Join(repo, "api.addr"))
	d := &daemon{t: t, repo: repo, args: args, done: make(chan struct{}), log: &bytes.Buffer{}}
	d.cmd = exec.Command(binary, append([]string{"daemon", "--init", "--api", addr, "--listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "warn"}, args...)...)
	d.cmd.Env = append(os.Environ(), "ARTMESH_PATH="+repo)
	d.cmd.Stdout = io.Discard
	d.cmd.Stderr = &lockedWriter{w: d.log}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("the log of the daemon on %s (warnings and errors; the last %d bytes):\n%s", repo, logTail, tail(d.logs(), logTail))
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		if addr, err := os.ReadFile(filepath.Join(repo, "api.addr")); err == nil && len(bytes.TrimSpace(addr)) > 0 {
			d.url = "http://" + strings.TrimSpace(string(addr))
			break
		}
		select {
		case <-d.done:
			t.Fatalf("daemon exited at start: %s", d.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not start within 30s: %s", d.log.String())
		}
	}
	key, err := os.ReadFile(filepath.Join(repo, "api.key"))
	if err != nil {
		t.Fatal(err)
	}
	d.key = strings.TrimSpace(string(key))
	for time.Now().Before(deadline) {
		resp, err := http.Get(d.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("daemon not ready within 30s: %s", d.log.String())
	return nil
}

// restart stops the daemon with SIGTERM and starts it again on the same
// repo, address and flags, so that URLs it handed out still point at it.
func (d *daemon) restart(t testing.TB) *daemon {
	t.Helper()
	d.stop()
	return startDaemonArgs(t, d.repo, strings.TrimPrefix(d.url, "http://"), d.args...)
}

// logTail is how much of each daemon's log a failed test prints.
const logTail = 8 << 10

// logs returns what the daemon logged so far.
func (d *daemon) logs() string {
	if lw, ok := d.cmd.Stderr.(*lockedWriter); ok {
		lw.mu.Lock()
		defer lw.mu.Unlock()
	}
	return d.log.String()
}

// stop ends the daemon with SIGTERM and waits for it.
func (d *daemon) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("daemon did not stop within 20s of SIGTERM")
	}
}

// kill ends the daemon with SIGKILL, as a crash would.
func (d *daemon) kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// cli runs the artmesh CLI against the daemon and returns its stdout.
func (d *daemon) cli(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := d.cliRaw(args...)
	if err != nil {
		t.Fatalf("artmesh %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// cliAs runs the artmesh CLI as the agent whose API key is key and
// returns its stdout.
func (d *daemon) cliAs(t testing.TB, key string, args ...string) string {
	t.Helper()
	out, errOut, err := d.cliRawEnv([]string{"ARTMESH_API_KEY=" + key}, args...)
	if err != nil {
		t.Fatalf("artmesh %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// cliRaw runs the CLI and returns stdout, stderr and the exit error.
func (d *daemon) cliRaw(args ...string) (string, string, error) {
	return d.cliRawEnv(nil, args...)
}

// cliRawEnv runs the CLI with extra environment variables and returns
// stdout, stderr and the exit error.
func (d *daemon) cliRawEnv(env []string, args ...string) (string, string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), "ARTMESH_PATH="+d.repo, "ARTMESH_API="+d.url), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// do sends a request with key (none when empty) and returns the response.
func (d *daemon) do(t testing.TB, key, method, path string, body io.Reader, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, d.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// call sends a request as the admin and decodes a JSON answer into out
// (when not nil), failing unless the status is want.
func (d *daemon) call(t testing.TB, method, path string, body any, want int, out any, headers ...string) {
	t.Helper()
	d.callAs(t, d.key, method, path, body, want, out, headers...)
}

// callAs is call as the agent whose API key is key.
func (d *daemon) callAs(t testing.TB, key, method, path string, body any, want int, out any, headers ...string) {
	t.Helper()
	got, data := d.status(t, key, method, path, body, headers...)
	if got != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, data, err)
		}
	}
}

// status sends a request as key (none when empty) and returns the status
// and the body.
func (d *daemon) status(t testing.TB, key, method, path string, body any, headers ...string) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	case io.Reader:
		r = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	resp := d.do(t, key, method, path, r, headers...)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// addAgent creates an agent as the admin and returns its API key.
func (d *daemon) addAgent(t testing.TB, id string, groups ...string) string {
	t.Helper()
	if groups == nil {
		groups = []string{}
	}
	var ak struct {
		APIKey string `json:"api_key"`
	}
	d.call(t, "POST", "/v1/agents", map[string]any{"id": id, "groups": groups}, 201, &ak)
	if ak.APIKey == "" {
		t.Fatalf("agent %s was created without a key", id)
	}
	return ak.APIKey
}

// errorCode returns the API error code in an error body, or "" when the
// body is not the API's error shape.
func errorCode(body []byte) string {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil {
		return ""
	}
	return eb.Error.Code
}

// artifact is the API's artifact object, as the tests read it.
type artifact struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Owner       string         `json:"owner"`
	ContentType string         `json:"content_type"`
	SizeBytes   int64          `json:"size_bytes"`
	CID         string         `json:"cid"`
	Version     int            `json:"version"`
	Metadata    map[string]any `json:"metadata"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
}

type artifactPage struct {
	Items      []artifact `json:"items"`
	Total      *int       `json:"total"` // only in an unfiltered listing of one's own
	Limit      int        `json:"limit"`
	Offset     int        `json:"offset"`
	NextCursor string     `json:"next_cursor"`
}

// total returns the page's total, or -1 when it has none.
func (p artifactPage) total() int {
	if p.Total == nil {
		return -1
	}
	return *p.Total
}

type repoStat struct {
	Blocks    int64 `json:"blocks"`
	Bytes     int64 `json:"bytes"`
	Packs     int   `json:"packs"`
	PackBytes int64 `json:"pack_bytes"`
}

// errorBody is the API's error shape.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// lockedWriter serialises writes to a buffer shared with a process.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// patterned is a deterministic, incompressible-looking stream of n bytes,
// generated as it is read, so that large uploads need no memory.
type patterned struct {
	n, off int64
	seed   uint64
}

func (p *patterned) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		b[i] = patternByte(p.seed, p.off+int64(i))
	}
	p.off += int64(len(b))
	return len(b), nil
}

// patternByte is byte i of the stream with seed.
func patternByte(seed uint64, i int64) byte {
	x := uint64(i/8)*0x9e3779b97f4a7c15 ^ seed
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return byte(x >> (8 * uint(i%8)))
}
