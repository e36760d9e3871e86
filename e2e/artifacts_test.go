package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSeedFlow replays the whole single-node artifact workflow with the
// CLI and plain HTTP: create with metadata, upload a large file, snippet,
// download to memory and to a file, get, update into versions, list
// versions, download version 1, list with filters and paging, delete a
// version, delete.
func TestSeedFlow(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	work := t.TempDir()

	// Create with the CLI, with metadata.
	report := filepath.Join(work, "report.pdf")
	reportData := []byte("%PDF-1.4 quarterly report\n" + strings.Repeat("numbers ", 1000))
	if err := os.WriteFile(report, reportData, 0o600); err != nil {
		t.Fatal(err)
	}
	var a1 artifact
	mustJSON(t, d.cli(t, "put", report, "--meta", "quarter=Q4", "--meta", "year:=2025", "--json"), &a1)
	if a1.Name != "report.pdf" || a1.ContentType != "application/pdf" || a1.Version != 1 || a1.Owner != "admin" {
		t.Fatalf("put made %+v", a1)
	}
	if a1.Metadata["quarter"] != "Q4" || a1.Metadata["year"] != float64(2025) {
		t.Fatalf("metadata %v", a1.Metadata)
	}

	// Create with plain HTTP, as curl --data-binary would.
	var a2 artifact
	d.call(t, "POST", "/v1/artifacts?name=f", reportData, 201, &a2,
		"Content-Type", "application/octet-stream", "Artifact-Metadata", `{"quarter":"Q3","year":2025}`)

	// The same bytes come back through the CLI and through HTTP.
	got := d.cli(t, "get", a1.ID)
	if got != string(reportData) {
		t.Fatalf("artmesh get returned %d bytes, want %d", len(got), len(reportData))
	}
	if body := d.download(t, "/v1/artifacts/"+a2.ID+"/content"); !bytes.Equal(body, reportData) {
		t.Fatal("curl .../content differs")
	}
	if a1.CID != a2.CID {
		t.Fatalf("same bytes, different CIDs %s and %s", a1.CID, a2.CID)
	}

	// A large file, streamed; then downloaded to a file with the CLI.
	const bigSize = 48 << 20
	var big artifact
	d.call(t, "POST", "/v1/artifacts?name=weights.bin", &patterned{n: bigSize, seed: 7}, 201, &big)
	if big.SizeBytes != bigSize {
		t.Fatalf("big artifact has size %d", big.SizeBytes)
	}
	out := filepath.Join(work, "weights.bin")
	d.cli(t, "get", big.ID, "-o", out)
	checkPatterned(t, out, bigSize, 7)

	// A snippet.
	var snip artifact
	mustJSON(t, d.cli(t, "snippet", "config.json", `{"lr":0.001,"layers":[1,2,3]}`, "--json"), &snip)
	if snip.ContentType != "application/json" {
		t.Fatalf("snippet type %q", snip.ContentType)
	}
	var snipBody map[string]any
	mustJSON(t, string(d.download(t, "/v1/artifacts/"+snip.ID+"/content")), &snipBody)
	if snipBody["lr"] != 0.001 {
		t.Fatalf("snippet content %v", snipBody)
	}

	// Get.
	var info artifact
	mustJSON(t, d.cli(t, "info", a1.ID, "--json"), &info)
	if info.ID != a1.ID || info.CID != a1.CID {
		t.Fatalf("info %+v", info)
	}

	// Update into versions: v2 by the CLI, v3 by HTTP with metadata.
	v2 := filepath.Join(work, "report-v2.pdf")
	os.WriteFile(v2, []byte("%PDF-1.4 version two"), 0o600)
	var up artifact
	mustJSON(t, d.cli(t, "update", a1.ID, v2, "--meta", "status=draft", "--json"), &up)
	if up.Version != 2 || up.Metadata["quarter"] != "Q4" || up.Metadata["status"] != "draft" {
		t.Fatalf("update made %+v", up)
	}
	d.call(t, "PUT", "/v1/artifacts/"+a1.ID+"/content", "version three", 201, &up,
		"Content-Type", "text/plain", "Artifact-Metadata", `{"status":"final"}`)
	if up.Version != 3 || up.ContentType != "text/plain" || up.Metadata["status"] != "final" {
		t.Fatalf("second update made %+v", up)
	}

	// List versions, oldest first.
	var vs struct {
		Items []struct {
			Version   int    `json:"version"`
			CID       string `json:"cid"`
			SizeBytes int64  `json:"size_bytes"`
			CreatedBy string `json:"created_by"`
		} `json:"items"`
	}
	d.call(t, "GET", "/v1/artifacts/"+a1.ID+"/versions", nil, 200, &vs)
	if len(vs.Items) != 3 || vs.Items[0].Version != 1 || vs.Items[2].Version != 3 || vs.Items[0].CID != a1.CID {
		t.Fatalf("versions %+v", vs.Items)
	}

	// Download version 1, with the CLI and by HTTP.
	if got := d.cli(t, "get", a1.ID, "--version", "1"); got != string(reportData) {
		t.Fatal("version 1 through the CLI differs")
	}
	if body := d.download(t, "/v1/artifacts/"+a1.ID+"/content?version=1"); !bytes.Equal(body, reportData) {
		t.Fatal("version 1 differs")
	}
	if body := d.download(t, "/v1/artifacts/"+a1.ID+"/content"); string(body) != "version three" {
		t.Fatalf("current content %q", body)
	}

	// List with a metadata filter, a content type filter and paging.
	var page artifactPage
	d.call(t, "GET", "/v1/artifacts?metadata.quarter=Q3", nil, 200, &page)
	if len(page.Items) != 1 || page.Items[0].ID != a2.ID || page.Total != nil {
		t.Fatalf("metadata filter: %+v", page)
	}
	d.call(t, "GET", "/v1/artifacts?metadata.year=2025", nil, 200, &page)
	if len(page.Items) != 2 { // a1 (year kept through its updates) and a2
		t.Fatalf("metadata.year=2025 matched %d", len(page.Items))
	}
	d.call(t, "GET", "/v1/artifacts?content_type=application/json", nil, 200, &page)
	if len(page.Items) != 1 || page.Items[0].ID != snip.ID {
		t.Fatalf("content type filter: %+v", page)
	}
	page = artifactPage{}
	d.call(t, "GET", "/v1/artifacts?limit=2", nil, 200, &page)
	if page.total() != 4 || len(page.Items) != 2 || page.Items[0].ID != snip.ID || page.Limit != 2 || page.NextCursor == "" {
		t.Fatalf("first page: %+v", page)
	}
	next := artifactPage{}
	d.call(t, "GET", "/v1/artifacts?limit=2&cursor="+url.QueryEscape(page.NextCursor), nil, 200, &next)
	if len(next.Items) != 2 || next.Items[1].ID != a1.ID || next.NextCursor != "" {
		t.Fatalf("second page by cursor: %+v", next)
	}
	if out := strings.Fields(d.cli(t, "ls", "--all", "--limit", "1", "-q")); len(out) != 4 || out[0] != snip.ID || out[3] != a1.ID {
		t.Fatalf("artmesh ls --all --limit 1 -q: %v", out)
	}
	d.call(t, "GET", "/v1/artifacts?limit=2&offset=2", nil, 200, &page)
	if len(page.Items) != 2 || page.Items[1].ID != a1.ID || page.Offset != 2 {
		t.Fatalf("second page: %+v", page)
	}
	var cliPage artifactPage
	mustJSON(t, d.cli(t, "ls", "--meta", "quarter=Q3", "--json"), &cliPage)
	if len(cliPage.Items) != 1 || cliPage.Items[0].ID != a2.ID {
		t.Fatalf("artmesh ls --meta: %+v", cliPage)
	}

	// Delete a version: the current one, so the artifact goes back to v2.
	d.call(t, "DELETE", "/v1/artifacts/"+a1.ID+"/versions/3", nil, 204, nil)
	d.call(t, "GET", "/v1/artifacts/"+a1.ID, nil, 200, &info)
	if info.Version != 2 || info.Metadata["status"] != "draft" || info.ContentType != "application/pdf" {
		t.Fatalf("after deleting v3: %+v", info)
	}
	d.cli(t, "rm", a1.ID, "--version", "1")
	d.call(t, "GET", "/v1/artifacts/"+a1.ID+"/versions", nil, 200, &vs)
	if len(vs.Items) != 1 || vs.Items[0].Version != 2 {
		t.Fatalf("versions after deletes: %+v", vs.Items)
	}
	// The next version is 4: numbers are never reused.
	d.call(t, "PUT", "/v1/artifacts/"+a1.ID+"/content", "four", 201, &up)
	if up.Version != 4 {
		t.Fatalf("version after deletes is %d, want 4", up.Version)
	}

	// Delete whole artifacts; their content is collected.
	d.cli(t, "rm", a1.ID)
	d.call(t, "DELETE", "/v1/artifacts/"+big.ID, nil, 204, nil)
	d.call(t, "GET", "/v1/artifacts/"+a1.ID, nil, 404, nil)
	d.call(t, "GET", "/v1/artifacts/"+big.ID+"/content", nil, 404, nil)
	var st repoStat
	d.call(t, "POST", "/v1/repo/gc", nil, 200, nil)
	d.call(t, "GET", "/v1/repo/stat", nil, 200, &st)
	if st.Bytes > 1<<20 {
		t.Fatalf("after deleting the big artifact the store still holds %d bytes", st.Bytes)
	}
	if body := d.download(t, "/v1/artifacts/"+a2.ID+"/content"); !bytes.Equal(body, reportData) {
		t.Fatal("a2 lost its content to the collector")
	}
}

// download GETs path as the admin and returns the body, failing on any
// status but 200.
func (d *daemon) download(t *testing.T, path string) []byte {
	t.Helper()
	resp := d.do(t, d.key, "GET", path, nil)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
}

// checkPatterned checks that file holds the patterned stream of size bytes.
func checkPatterned(t *testing.T, file string, size int64, seed uint64) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := sha256.New()
	io.Copy(want, &patterned{n: size, seed: seed})
	got := sha256.New()
	n, err := io.Copy(got, f)
	if err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("%s: %d bytes, content differs from what was uploaded", file, n)
	}
}
