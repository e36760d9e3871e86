package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node"
	nrepo "github.com/artmesh/artmesh/node/repo"
)

// newTestServer runs the API of a real node in a temporary repo.
func newTestServer(t *testing.T) (*httptest.Server, string) {
	return newTestServerTB(t)
}

func newTestServerTB(t testing.TB) (*httptest.Server, string) {
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
	srv := httptest.NewServer(New(n, log))
	// As the daemon does: the API address is where it really listens.
	n.SetAPIListenAddr(srv.Listener.Addr().String())
	t.Cleanup(func() {
		srv.Close()
		n.Close()
	})
	key, err := os.ReadFile(filepath.Join(repo, nrepo.APIKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return srv, strings.TrimSpace(string(key))
}

func send(t *testing.T, srv *httptest.Server, key, method, path string, body io.Reader, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, body)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

func TestContentHeadersAndRanges(t *testing.T) {
	srv, key := newTestServer(t)
	content := []byte("0123456789abcdefghij")
	resp, data := send(t, srv, key, "POST", "/v1/artifacts?name=d%C3%A9j%C3%A0+vu.txt", bytes.NewReader(content), "Content-Type", "text/plain; charset=utf-8")
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, data)
	}
	var a artmesh.Artifact
	json.Unmarshal(data, &a)
	path := "/v1/artifacts/" + string(a.ID) + "/content"

	resp, data = send(t, srv, key, "GET", path, nil)
	h := resp.Header
	if resp.StatusCode != 200 || !bytes.Equal(data, content) {
		t.Fatalf("get: %d %q", resp.StatusCode, data)
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/plain; charset=utf-8",
		"Content-Length":         "20",
		"ETag":                   `"` + a.CID + `"`,
		"Accept-Ranges":          "bytes",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if cd := h.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, "filename*=UTF-8''d%C3%A9j%C3%A0%20vu.txt") || !strings.Contains(cd, `filename="d_j_ vu.txt"`) {
		t.Errorf("Content-Disposition %q", cd)
	}

	for _, tc := range []struct {
		rng, body, contentRange string
	}{
		{"bytes=0-3", "0123", "bytes 0-3/20"},
		{"bytes=18-", "ij", "bytes 18-19/20"},
		{"bytes=-5", "fghij", "bytes 15-19/20"},
		{"bytes=10-1000", "abcdefghij", "bytes 10-19/20"},
	} {
		resp, data = send(t, srv, key, "GET", path, nil, "Range", tc.rng)
		if resp.StatusCode != 206 || string(data) != tc.body || resp.Header.Get("Content-Range") != tc.contentRange {
			t.Errorf("Range %s: %d %q %q", tc.rng, resp.StatusCode, data, resp.Header.Get("Content-Range"))
		}
	}
	resp, _ = send(t, srv, key, "GET", path, nil, "Range", "bytes=20-")
	if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != "bytes */20" {
		t.Errorf("unsatisfiable range: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	resp, data = send(t, srv, key, "GET", path, nil, "If-None-Match", `"`+a.CID+`"`)
	if resp.StatusCode != 304 || len(data) != 0 {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	resp, _ = send(t, srv, key, "GET", path, nil, "If-None-Match", `"other"`)
	if resp.StatusCode != 200 {
		t.Errorf("If-None-Match other: %d", resp.StatusCode)
	}
	resp, data = send(t, srv, key, "GET", path, nil, "Range", "bytes=0-3", "If-Range", `"stale"`)
	if resp.StatusCode != 200 || len(data) != 20 {
		t.Errorf("If-Range stale: %d", resp.StatusCode)
	}
	resp, data = send(t, srv, key, "HEAD", path, nil)
	if resp.StatusCode != 200 || len(data) != 0 || resp.Header.Get("Content-Length") != "20" {
		t.Errorf("HEAD: %d %q", resp.StatusCode, resp.Header.Get("Content-Length"))
	}
}

func TestMultipartCreate(t *testing.T) {
	srv, key := newTestServer(t)
	body := "--XYZ\r\nContent-Disposition: form-data; name=\"meta\"\r\n\r\n" +
		`{"name":"notes.md","content_type":"text/markdown","metadata":{"team":"ml"}}` +
		"\r\n--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n# hello\r\n--XYZ--\r\n"
	resp, data := send(t, srv, key, "POST", "/v1/artifacts", strings.NewReader(body), "Content-Type", "multipart/form-data; boundary=XYZ")
	if resp.StatusCode != 201 {
		t.Fatalf("multipart create: %d %s", resp.StatusCode, data)
	}
	var a artmesh.Artifact
	json.Unmarshal(data, &a)
	if a.Name != "notes.md" || a.ContentType != "text/markdown" || string(a.Metadata["team"]) != `"ml"` || a.SizeBytes != 7 {
		t.Fatalf("multipart made %+v", a)
	}
}

func TestDeclaredSizeMismatch(t *testing.T) {
	srv, key := newTestServer(t)
	// A body that ends before its Content-Length: the server sees an
	// unexpected EOF and must record nothing.
	req, _ := http.NewRequest("POST", srv.URL+"/v1/artifacts?name=short", io.LimitReader(strings.NewReader("abc"), 3))
	req.ContentLength = 3
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("exact size: %d", resp.StatusCode)
	}
	resp, data := send(t, srv, key, "GET", "/v1/artifacts", nil)
	var page artmesh.Page[artmesh.Artifact]
	json.Unmarshal(data, &page)
	if resp.StatusCode != 200 || len(page.Items) != 1 {
		t.Fatalf("list: %d %s", resp.StatusCode, data)
	}
}

// TestCutOffBodies sends bodies that break off, chunked and with a
// Content-Length, and checks that no artifact is created from them.
func TestCutOffBodies(t *testing.T) {
	srv, key := newTestServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, raw := range []string{
		"POST /v1/artifacts?name=cut HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + key + "\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + strings.Repeat("a", 1024) + "\r\n10\r\nabc",
		"POST /v1/artifacts?name=cut HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + key + "\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("b", 5000),
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(raw))
		conn.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, conn)
		conn.Close()
	}
	// Give the handlers a moment to finish, then look.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, data := send(t, srv, key, "GET", "/v1/artifacts", nil)
		var page artmesh.Page[artmesh.Artifact]
		json.Unmarshal(data, &page)
		if resp.StatusCode != 200 {
			t.Fatalf("list: %d", resp.StatusCode)
		}
		if len(page.Items) != 0 {
			t.Fatalf("a cut-off body became an artifact: %s", data)
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}
