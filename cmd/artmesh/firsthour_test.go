package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// TestCommandsTakeNames runs every command that names one artifact with
// the artifact's name instead of its id.
func TestCommandsTakeNames(t *testing.T) {
	tn := startNode(t)
	id := tn.putBytes(t, "named.txt", []byte("v1"))
	var k struct {
		APIKey string `json:"api_key"`
	}
	json.Unmarshal([]byte(tn.must(t, "--json", "agent", "add", "bob")), &k)
	file := filepath.Join(t.TempDir(), "v2.txt")
	os.WriteFile(file, []byte("v2"), 0o600)

	for _, tt := range []struct {
		args []string
		want string // in stdout
	}{
		{[]string{"versions", "named.txt"}, "VERSION"},
		{[]string{"update", "-q", "named.txt", file}, id},
		{[]string{"url", "-q", "named.txt"}, "/v1/cap/"},
		{[]string{"share", "named.txt", "--agent", "bob"}, "bob"},
		{[]string{"access", "named.txt"}, "bob"},
		{[]string{"unshare", "named.txt", "--agent", "bob"}, "owner"},
		{[]string{"placement", "named.txt"}, "VERSION"},
		{[]string{"replication", "named.txt", "1"}, ""},
		{[]string{"pin", "named.txt"}, "pinned"},
		{[]string{"unpin", "named.txt"}, "unpinned"},
		{[]string{"rm", "named.txt", "--version", "1"}, ""},
		{[]string{"rm", "named.txt"}, ""},
	} {
		code, out, errOut := tn.exec(t, run{args: tt.args})
		if code != 0 || !strings.Contains(out, tt.want) {
			t.Errorf("artmesh %s: exit %d, %q, %s; want exit 0 and %q", strings.Join(tt.args, " "), code, out, errOut, tt.want)
		}
	}
	// Deleted: the name is no artifact's now.
	if code, _, errOut := tn.exec(t, run{args: []string{"versions", "named.txt"}}); code != exitNotFound || !strings.Contains(errOut, `no artifact has the id or name "named.txt"`) {
		t.Errorf("versions of a name gone: exit %d, %s", code, errOut)
	}
}

func TestURLQuietPrintsTheURLAlone(t *testing.T) {
	tn := startNode(t)
	id := tn.putBytes(t, "u.txt", []byte("u"))
	out := tn.must(t, "url", "-q", id)
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "http://") {
		t.Fatalf("url -q printed %q, want one line with the URL", out)
	}
	resp, err := http.Get(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET the URL: %s", resp.Status)
	}
}

func TestLsTypedMetaFilter(t *testing.T) {
	tn := startNode(t)
	file := filepath.Join(t.TempDir(), "r.txt")
	os.WriteFile(file, []byte("r"), 0o600)
	id := strings.TrimSpace(tn.must(t, "put", "-q", file, "--meta", "year:=2025", "--meta", "q=Q4"))
	tn.must(t, "put", "-q", file, "--name", "other", "--meta", "year:=2024")
	for _, f := range []string{"year:=2025", "year=2025", `q:="Q4"`} {
		if out := tn.must(t, "ls", "-q", "--meta", f); out != id+"\n" {
			t.Errorf("ls --meta %s: %q, want %s", f, out, id)
		}
	}
	if code, _, errOut := tn.exec(t, run{args: []string{"ls", "--meta", "year:=20x5"}}); code != exitUsage || !strings.Contains(errOut, "must be JSON") {
		t.Errorf("ls --meta year:=20x5: exit %d, %s", code, errOut)
	}
}

func TestPutRefusesANameInUse(t *testing.T) {
	tn := startNode(t)
	file := filepath.Join(t.TempDir(), "same.txt")
	os.WriteFile(file, []byte("one"), 0o600)
	id := strings.TrimSpace(tn.must(t, "put", "-q", file))
	code, out, errOut := tn.exec(t, run{args: []string{"put", file}})
	if code != exitError || out != "" || !strings.Contains(errOut, id) || !strings.Contains(errOut, "artmesh update "+id) || !strings.Contains(errOut, "--new") {
		t.Errorf("second put: exit %d, %q, %s", code, out, errOut)
	}
	code, _, errOut = tn.exec(t, run{args: []string{"--json", "put", file}})
	if code != exitError || !strings.Contains(errOut, `"code": "conflict"`) {
		t.Errorf("second put --json: exit %d, %s", code, errOut)
	}
	other := strings.TrimSpace(tn.must(t, "put", "-q", "--new", file))
	if other == id || !artmesh.ValidArtifactID(other) {
		t.Errorf("put --new: %q", other)
	}
	if out := tn.must(t, "ls", "-q", "--name", "same.txt"); strings.Count(out, "\n") != 2 {
		t.Errorf("artifacts named same.txt: %q, want 2", out)
	}
}

func TestInputAndInterruptExitCodes(t *testing.T) {
	tn := startNode(t)
	id := tn.putBytes(t, "x.txt", []byte("x"))
	missing := filepath.Join(t.TempDir(), "missing.bin")
	for _, args := range [][]string{
		{"put", missing},
		{"update", id, missing},
		{"upload", missing},
		{"put", t.TempDir()},
	} {
		code, out, errOut := tn.exec(t, run{args: args})
		if code != exitUsage || out != "" || strings.Contains(errOut, "--help") {
			t.Errorf("artmesh %s: exit %d, %q, %s; want 2 without a pointer to --help", strings.Join(args, " "), code, out, errOut)
		}
	}

	// A command ended by Ctrl-C exits 130, by SIGTERM 143.
	for sig, want := range map[syscall.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: 143} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(interrupted{sig})
		var stdout, stderr bytes.Buffer
		c := &cli{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
			getenv: envOf(map[string]string{envAPI: tn.url, envAPIKey: tn.key, envRepo: t.TempDir()})}
		if code := c.run(ctx, []string{"ls"}); code != want || !strings.Contains(stderr.String(), "interrupted") {
			t.Errorf("%v: exit %d, %q; want %d", sig, code, stderr.String(), want)
		}
	}
}

// TestFlagUsageTakesNoWords checks that no flag's help shows a word as
// its argument by accident: pflag takes a `quoted` word in the usage as
// the argument's name (--version artmesh version).
func TestFlagUsageTakesNoWords(t *testing.T) {
	root := (&cli{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: envOf(nil)}).newRootCmd()
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		check := func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				name, _ := pflag.UnquoteUsage(f)
				t.Errorf("%s --%s: its help shows it taking %q", cmd.CommandPath(), f.Name, name)
			}
		}
		cmd.LocalFlags().VisitAll(check)
		cmd.PersistentFlags().VisitAll(check)
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// TestUploadContinuesWhenRunAgain interrupts an upload half way (its
// first half sent by hand, with the key the command derives) and checks
// that running the command again sends only the rest.
func TestUploadContinuesWhenRunAgain(t *testing.T) {
	tn := startNode(t)
	data := patternBytes(300_000, 3)
	path := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req := client.UploadRequest{Name: "big.bin", ContentType: contentTypeFor("big.bin"), SizeBytes: int64(len(data))}
	key, err := uploadKey(f, req)
	if err != nil {
		t.Fatal(err)
	}
	api := client.New(tn.url, tn.key)
	ctx := client.WithIdempotencyKey(context.Background(), key)
	up, err := api.CreateUpload(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	half := len(data) / 2
	put, _ := http.NewRequest(http.MethodPut, up.URL, bytes.NewReader(data[:half]))
	put.Header.Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", half-1, len(data)))
	resp, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, _ := api.UploadOffset(context.Background(), up.URL); got != int64(half) {
		t.Fatalf("the node holds %d bytes, want %d (%s)", got, half, resp.Status)
	}
	if out := tn.must(t, "uploads", "-q"); out != up.ID+"\n" {
		t.Errorf("uploads -q: %q, want %s", out, up.ID)
	}

	code, out, errOut := tn.exec(t, run{args: []string{"upload", "-q", path}})
	if code != 0 || !strings.Contains(errOut, "continuing upload "+up.ID) {
		t.Fatalf("upload again: exit %d, %q, %s", code, out, errOut)
	}
	id := strings.TrimSpace(out)
	if got := tn.must(t, "get", id); got != string(data) {
		t.Errorf("content of %s: %d bytes, want the file's %d", id, len(got), len(data))
	}
	// Once more: the confirmed upload answers its artifact.
	code, out, errOut = tn.exec(t, run{args: []string{"upload", "-q", path}})
	if code != 0 || strings.TrimSpace(out) != id || !strings.Contains(errOut, "confirmed already") {
		t.Errorf("upload a third time: exit %d, %q, %s", code, out, errOut)
	}
	// --restart makes a new one.
	code, out, errOut = tn.exec(t, run{args: []string{"upload", "-q", "--restart", path}})
	if code != 0 || strings.TrimSpace(out) == id {
		t.Errorf("upload --restart: exit %d, %q, %s", code, out, errOut)
	}
	if out := tn.must(t, "uploads", "-q"); out != "" {
		t.Errorf("uploads after the confirms: %q", out)
	}
}

func TestUploadsAbort(t *testing.T) {
	tn := startNode(t)
	api := client.New(tn.url, tn.key)
	up, err := api.CreateUpload(context.Background(), client.UploadRequest{Name: "later.bin", SizeBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	out := tn.must(t, "uploads")
	if !strings.Contains(out, up.ID) || !strings.Contains(out, "later.bin") || !strings.Contains(out, "0 B of 10 B") {
		t.Errorf("uploads:\n%s", out)
	}
	tn.must(t, "uploads", "abort", up.ID)
	if out := tn.must(t, "uploads", "ls", "-q"); out != "" {
		t.Errorf("uploads after the abort: %q", out)
	}
	if code, _, _ := tn.exec(t, run{args: []string{"uploads", "abort", up.ID}}); code != exitNotFound {
		t.Errorf("abort again: exit %d, want %d", code, exitNotFound)
	}
}

func TestWarnFewVoters(t *testing.T) {
	m := func(id, role string) client.Member { return client.Member{PeerID: id, Role: role} }
	for _, tt := range []struct {
		name string
		ms   []client.Member
		gone string
		want string // in the warning; "" for none
	}{
		{"3 voters, a nonvoter leaves", []client.Member{m("a", "voter"), m("b", "voter"), m("c", "voter"), m("d", "nonvoter")}, "d", ""},
		{"3 voters and a nonvoter, a voter leaves", []client.Member{m("a", "voter"), m("b", "voter"), m("c", "voter"), m("d", "nonvoter")}, "a", ""},
		{"3 voters, a voter leaves", []client.Member{m("a", "voter"), m("b", "voter"), m("c", "voter")}, "c", "2 member(s) left that can vote"},
		{"2 voters, one leaves", []client.Member{m("a", "voter"), m("b", "voter")}, "b", "single point of failure"},
		{"the last leaves", []client.Member{m("a", "voter")}, "a", ""},
	} {
		var stderr bytes.Buffer
		(&cli{stderr: &stderr}).warnFewVoters(tt.ms, tt.gone)
		if got := stderr.String(); tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestUpdateMetadataAlone(t *testing.T) {
	tn := startNode(t)
	id := tn.putBytes(t, "m.txt", []byte("same bytes"))
	cid := infoCID(t, tn, id)
	tn.must(t, "update", "m.txt", "--meta", "status=final", "--meta", "n:=2")
	var a artmesh.Artifact
	json.Unmarshal([]byte(tn.must(t, "--json", "info", id)), &a)
	if a.Version != 2 || a.CID != cid || metaText(a.Metadata) != `{"n":2,"status":"final"}` {
		t.Errorf("after update --meta: version %d, cid %s (was %s), metadata %s", a.Version, a.CID, cid, metaText(a.Metadata))
	}
	tn.must(t, "update", id, "--meta", "n:=null")
	a = artmesh.Artifact{} // Unmarshal would merge into the old metadata map
	json.Unmarshal([]byte(tn.must(t, "--json", "info", id)), &a)
	if a.Version != 3 || metaText(a.Metadata) != `{"status":"final"}` {
		t.Errorf("after removing n: version %d, metadata %s", a.Version, metaText(a.Metadata))
	}
	for _, args := range [][]string{{"update", id}, {"update", id, "--type", "text/csv", "--meta", "a=b"}} {
		if code, _, errOut := tn.exec(t, run{args: args}); code != exitUsage {
			t.Errorf("artmesh %s: exit %d, %s", strings.Join(args, " "), code, errOut)
		}
	}
}
