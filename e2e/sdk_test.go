package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The Python SDK and its examples, relative to this package's folder.
const (
	sdkDir      = "../sdk/python"
	workflowDir = "../examples/workflow"
)

// python returns the python3 to run the SDK with, or skips the test
// loudly when there is none of version 3.10 or newer.
func python(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIPPED: python3 is not installed, so the Python SDK (sdk/python) and examples/workflow were NOT tested")
	}
	if out, err := exec.Command(py, "-c", "import sys; sys.exit(sys.version_info < (3, 10))").CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: %s is older than Python 3.10, so the Python SDK was NOT tested (%v %s)", py, err, out)
	}
	return py
}

// TestSDKPythonSuite runs the Python SDK's unittest suite. Its tests start
// daemons of their own from the binary this run built (ARTMESH_BIN) and
// call them through the SDK, sync and async.
func TestSDKPythonSuite(t *testing.T) {
	py := python(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-m", "unittest", "-v")
	cmd.Dir = sdkDir
	cmd.Env = append(os.Environ(),
		"ARTMESH_BIN="+binary,
		"ARTMESH_CACHE_DIR="+t.TempDir(),
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONUNBUFFERED=1",
		"ARTMESH_API=", "ARTMESH_API_KEY=",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := out.String()
	if err != nil {
		t.Fatalf("python3 -m unittest in sdk/python: %v\n%s", err, text)
	}
	// The runner's last lines: "Ran N tests in Xs", then "OK" (maybe with skips).
	m := regexp.MustCompile(`(?m)^Ran (\d+) tests? in `).FindStringSubmatch(text)
	if m == nil || m[1] == "0" || !regexp.MustCompile(`(?m)^OK`).MatchString(text) {
		t.Fatalf("the SDK suite did not report a passing run:\n%s", text)
	}
	if strings.Contains(text, "skipped") {
		t.Logf("some SDK tests were skipped:\n%s", grepLines(text, "skipped"))
	}
	t.Logf("sdk/python: %s tests passed", m[1])
}

// TestSDKWorkflowExample runs examples/workflow across three real nodes of
// one mesh: setup_mesh.py as the admin on A, data_loader.py on A,
// processor.py on B, artifact_saver.py on C, and fetch_result.py as a
// member of the analysts group on A, each with its own agent's key.
func TestSDKWorkflowExample(t *testing.T) {
	py := python(t)
	a := startDaemon(t, t.TempDir())
	b := joinDaemon(t, a, t.TempDir())
	c := joinDaemon(t, a, t.TempDir())
	waitFor(t, 30*time.Second, "A reaches all three members, one of them the leader", func() bool {
		ms := a.members(t)
		reachable, leaders := 0, 0
		for _, m := range ms {
			if m.Reachable {
				reachable++
			}
			if m.Leader {
				leaders++
			}
		}
		return len(ms) == 3 && reachable == 3 && leaders == 1
	})
	out := t.TempDir()

	var setup struct {
		InputID string            `json:"input_id"`
		Keys    map[string]string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(runScript(t, py, a, a.key, "setup_mesh.py", "--rows", "1,2,3,4")), &setup); err != nil {
		t.Fatalf("setup_mesh.py printed no JSON: %v", err)
	}
	in := setup.InputID
	if !strings.HasPrefix(in, "art_") || len(setup.Keys) != 5 {
		t.Fatalf("setup_mesh.py: %+v", setup)
	}
	keys := setup.Keys

	// data-loader on A: the input, by id, into a file.
	loaded := strings.TrimSpace(runScript(t, py, a, keys["data-loader"], "data_loader.py", in, "--out", out))
	if want := filepath.Join(out, "input-"+in+".json"); loaded != want {
		t.Fatalf("data_loader.py wrote %q, want %q", loaded, want)
	}
	if got, err := os.ReadFile(loaded); err != nil || string(got) != `{"rows":[1,2,3,4]}` {
		t.Fatalf("data-loader's file: %q %v", got, err)
	}

	// processor on B: the result, as its own artifact shared with the pipeline.
	resultID := strings.TrimSpace(runScript(t, py, b, keys["processor"], "processor.py", in))
	wantResult := fmt.Sprintf(`{"input":"%s","count":4,"sum":10,"mean":2.5}`, in)
	var result artifact
	b.callAs(t, keys["processor"], "GET", "/v1/artifacts/"+resultID+"?consistent=true", nil, 200, &result)
	if result.Name != "output.json" || result.Owner != "processor" || result.Metadata["stage"] != "processed" {
		t.Fatalf("the processor's result: %+v", result)
	}
	if got := c.downloadAs(t, keys["artifact-saver"], "/v1/artifacts/"+resultID+"/content?consistent=true"); string(got) != wantResult {
		t.Fatalf("the result's content on C: %s, want %s", got, wantResult)
	}

	// artifact-saver on C: processed-<input id>.json, shared with analysts.
	savedID := strings.TrimSpace(runScript(t, py, c, keys["artifact-saver"], "artifact_saver.py", in, resultID, "--share-with", "analysts"))
	var saved artifact
	c.callAs(t, keys["artifact-saver"], "GET", "/v1/artifacts/"+savedID, nil, 200, &saved)
	if saved.Name != "processed-"+in+".json" || saved.Owner != "artifact-saver" || saved.ContentType != "application/json" ||
		saved.Metadata["input"] != in || saved.Metadata["source"] != resultID || saved.Version != 1 {
		t.Fatalf("the saved artifact: %+v", saved)
	}
	var access struct {
		Owner  string   `json:"owner"`
		Agents []string `json:"agents"`
		Groups []string `json:"groups"`
	}
	c.callAs(t, keys["artifact-saver"], "GET", "/v1/artifacts/"+savedID+"/access", nil, 200, &access)
	if access.Owner != "artifact-saver" || len(access.Agents) != 0 || len(access.Groups) != 1 || access.Groups[0] != "analysts" {
		t.Fatalf("the saved artifact's access: %+v", access)
	}

	// The analyst on A lists it among what is shared with it and downloads it.
	analystOut := filepath.Join(out, "analyst")
	if err := os.Mkdir(analystOut, 0o755); err != nil {
		t.Fatal(err)
	}
	var fetched struct {
		ID      string         `json:"id"`
		Owner   string         `json:"owner"`
		Path    string         `json:"path"`
		Content map[string]any `json:"content"`
	}
	if err := json.Unmarshal([]byte(runScript(t, py, a, keys["analyst"], "fetch_result.py", in, "--out", analystOut)), &fetched); err != nil {
		t.Fatalf("fetch_result.py printed no JSON: %v", err)
	}
	if fetched.ID != savedID || fetched.Owner != "artifact-saver" || fetched.Path != filepath.Join(analystOut, "processed-"+in+".json") ||
		fetched.Content["sum"] != 10.0 || fetched.Content["count"] != 4.0 || fetched.Content["mean"] != 2.5 || fetched.Content["input"] != in {
		t.Fatalf("fetch_result.py: %+v", fetched)
	}
	if got, err := os.ReadFile(fetched.Path); err != nil || string(got) != wantResult {
		t.Fatalf("the analyst's file: %q %v", got, err)
	}
	if entries, _ := os.ReadDir(analystOut); len(entries) != 1 {
		t.Fatalf("the analyst's folder holds %d entries, want only the result", len(entries))
	}
	// Sharing was exactly that: the analyst may not read the input or the processor's result.
	for _, id := range []string{in, resultID} {
		if code, body := a.status(t, keys["analyst"], "GET", "/v1/artifacts/"+id+"?consistent=true", nil); code != 404 || errorCode(body) != "not_found" {
			t.Fatalf("the analyst reading %s: %d %s", id, code, body)
		}
	}
}

// runScript runs one examples/workflow script as the agent whose key is
// key, against node d, and returns its stdout.
func runScript(t *testing.T, py string, d *daemon, key, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{script}, args...)...)
	cmd.Dir = workflowDir
	abs, err := filepath.Abs(sdkDir)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "ARTMESH_API="+d.url, "ARTMESH_API_KEY="+key, "ARTMESH_PATH="+t.TempDir(),
		"PYTHONPATH="+abs, "PYTHONDONTWRITEBYTECODE=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", script, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
