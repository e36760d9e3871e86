package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's code blocks are run as written, so that the README can
// never again show what does not run. Every fenced block of README.md
// and sdk/python/README.md is one of:
//
//   - sh: run, in the order of the file, by one bash (set -e -o pipefail),
//     so a block sees the variables and files the blocks before it made,
//     as a reader's shell would;
//   - python: written to a file and run with python3 at its place in that
//     order (the SDK installed by the README's own pip line, in a venv);
//   - json: parsed;
//
// unless an HTML comment on the line before it says otherwise:
//
//   - <!-- readme: setup --> the set-up block (make run, make test): the
//     test runs its `make run` in the background, and not `make test`,
//     which is what runs this test;
//   - <!-- readme: survivor --> an outage recovery's block: run after the
//     others, by a bash of its own, in the repo (ARTMESH_PATH) of the one
//     node left of a 3-node mesh whose two other voters the test destroyed
//     (killed, their repos removed), its daemon stopped, with that mesh's
//     admin key;
//   - <!-- readme: not run: REASON --> shown, not run, for the reason given
//     (the test lists each such block in its log).
//
// The blocks run in a scratch folder with a HOME of their own (so
// ~/.artmesh is new), the freshly built artmesh first on PATH, and links
// to the repository's sdk/ and examples/. Nodes they start in the
// background are stopped at the end. The README's commands use the
// documented default ports (7480 and up): when something else holds 7480
// the test skips, or fails under CI.

// readmeBlock is one fenced code block of a Markdown file.
type readmeBlock struct {
	file string
	line int    // of the opening fence
	lang string // sh, python, json, ...
	text string
	note string // the readme: annotation before it, if any
}

// readmeBlocks returns the fenced blocks of a Markdown file.
func readmeBlocks(t *testing.T, path, name string) []readmeBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []readmeBlock
	var cur *readmeBlock
	prev := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &readmeBlock{file: name, line: n, lang: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
			if s, ok := strings.CutPrefix(strings.TrimSpace(prev), "<!-- readme:"); ok {
				cur.note = strings.TrimSpace(strings.TrimSuffix(s, "-->"))
			}
		case cur != nil && strings.HasPrefix(line, "```"):
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
		prev = line
	}
	if cur != nil {
		t.Fatalf("%s:%d: a code block is never closed", name, cur.line)
	}
	return out
}

func TestReadmeRuns(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range []int{7480, 7481, 7482, 7483, 7484, 7485} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			msg := fmt.Sprintf("port %d is taken (a node you run?): the README's commands use the default ports 7480-7485", port)
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		l.Close()
	}
	work := t.TempDir()
	home, cwd := filepath.Join(work, "home"), filepath.Join(work, "cwd")
	for _, d := range []string{home, cwd} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, link := range []string{"sdk", "examples"} {
		if err := os.Symlink(filepath.Join(root, link), filepath.Join(cwd, link)); err != nil {
			t.Fatal(err)
		}
	}
	venv := filepath.Join(work, "venv")
	if out, err := exec.Command("python3", "-m", "venv", venv).CombinedOutput(); err != nil {
		t.Fatalf("python3 -m venv (the README's pip install goes there): %v\n%s", err, out)
	}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "ARTMESH_") && k != "HOME" && k != "PATH" && k != "PYTHONPATH" && k != "VIRTUAL_ENV" {
			env = append(env, kv)
		}
	}
	// Go's caches stay where they are (make run builds with them).
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", v, err)
		}
		env = append(env, v+"="+strings.TrimSpace(string(out)))
	}
	env = append(env, "HOME="+home, "VIRTUAL_ENV="+venv,
		"PATH="+filepath.Join(venv, "bin")+":"+filepath.Dir(binary)+":"+os.Getenv("PATH"))

	var script, survivor strings.Builder
	script.WriteString("set -e -o pipefail\n")
	survivor.WriteString("set -e -o pipefail\n")
	blocks := 0
	for _, f := range []string{"README.md", "sdk/python/README.md"} {
		for i, b := range readmeBlocks(t, filepath.Join(root, f), f) {
			where := fmt.Sprintf("%s:%d", b.file, b.line)
			switch {
			case strings.HasPrefix(b.note, "not run:"):
				t.Logf("%s (%s): %s", where, b.lang, b.note)
				continue
			case b.note == "setup":
				// make run, in the background, until its node is ready.
				if !strings.Contains(b.text, "make run") {
					t.Fatalf("%s: the setup block has no make run", where)
				}
				fmt.Fprintf(&script, "echo '--- %s: make run (in the background)' >&2\n", where)
				fmt.Fprintf(&script, "(cd %q && exec make -s run) > %q 2>&1 &\n", root, filepath.Join(work, "make-run.log"))
				script.WriteString("for i in $(seq 600); do curl -sf http://127.0.0.1:7480/readyz >/dev/null && break; sleep 0.2; done\n")
				script.WriteString("curl -sf http://127.0.0.1:7480/readyz >/dev/null\n")
			case b.note == "survivor" && b.lang == "sh":
				fmt.Fprintf(&survivor, "echo '--- %s (on the survivor)' >&2\n%s", where, b.text)
			case b.note != "":
				t.Fatalf("%s: unknown annotation %q (readme: setup, readme: survivor, or readme: not run: REASON)", where, b.note)
			case b.lang == "sh":
				fmt.Fprintf(&script, "echo '--- %s' >&2\n%s", where, b.text)
			case b.lang == "python":
				py := filepath.Join(work, fmt.Sprintf("block-%d-%d.py", i, b.line))
				if err := os.WriteFile(py, []byte(b.text), 0o600); err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&script, "echo '--- %s (python)' >&2\npython3 %q\n", where, py)
			case b.lang == "json":
				var v any
				if err := json.Unmarshal([]byte(b.text), &v); err != nil {
					t.Errorf("%s: the JSON block does not parse: %v", where, err)
				}
			default:
				t.Errorf("%s: a block of %q: give it a language this test runs (sh, python, json) or a readme: annotation", where, b.lang)
				continue
			}
			blocks++
		}
	}
	script.WriteString("echo '--- all blocks ran' >&2\n")
	if out, err := runReadmeScript(t, work, "readme.sh", script.String(), cwd, env); err != nil {
		log, _ := os.ReadFile(filepath.Join(work, "make-run.log"))
		t.Fatalf("the README's blocks failed (%v); the last block started is the one that failed:\n%s\n--- make run's log:\n%s", err, out, log)
	}
	if survivor.Len() > len("set -e -o pipefail\n") {
		// Of three voters two are destroyed for good; the third is
		// stopped, and the blocks recover it.
		ds := meshOf(t, 3)
		for _, d := range ds[:2] {
			d.kill()
			os.RemoveAll(d.repo)
		}
		c := ds[2]
		c.stop()
		survivor.WriteString("echo '--- all blocks ran' >&2\n")
		senv := append(slices.Clone(env), "ARTMESH_PATH="+c.repo, "ARTMESH_API_KEY="+c.key)
		if out, err := runReadmeScript(t, work, "survivor.sh", survivor.String(), cwd, senv); err != nil {
			t.Fatalf("the README's outage recovery failed (%v):\n%s", err, out)
		}
	}
	t.Logf("ran %d code blocks of the READMEs", blocks)
}

// stopGroup ends what is left of cmd's process group: SIGTERM, so that
// daemons shut down cleanly, then SIGKILL after a while.
func stopGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	pg := -cmd.Process.Pid
	if syscall.Kill(pg, syscall.SIGTERM) != nil {
		return
	}
	for i := 0; i < 100; i++ {
		if syscall.Kill(pg, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(pg, syscall.SIGKILL)
}

// runReadmeScript runs script with bash in cwd with env, in a process
// group of its own that is stopped afterwards (the daemons the blocks
// start in the background with it), and returns its output. It fails
// unless the script ran to its last line.
func runReadmeScript(t *testing.T, work, name, script, cwd string, env []string) (string, error) {
	t.Helper()
	sh := filepath.Join(work, name)
	if err := os.WriteFile(sh, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", sh)
	cmd.Dir, cmd.Env = cwd, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	stopGroup(cmd)
	if err == nil && !strings.Contains(out.String(), "--- all blocks ran") {
		err = errors.New("the script ended early")
	}
	return out.String(), err
}
