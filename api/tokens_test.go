package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

func TestSignedURLFlow(t *testing.T) {
	srv, key := newTestServer(t)
	resp, data := send(t, srv, key, "POST", "/v1/artifacts?name=a.txt", strings.NewReader("hello, capability"), "Content-Type", "text/plain")
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, data)
	}
	var a artmesh.Artifact
	json.Unmarshal(data, &a)
	resp, data = send(t, srv, key, "POST", "/v1/artifacts/"+string(a.ID)+"/signed-url", strings.NewReader(`{"expires_in": 60}`))
	if resp.StatusCode != 201 {
		t.Fatalf("signed-url: %d %s", resp.StatusCode, data)
	}
	var su apitype.SignedURL
	json.Unmarshal(data, &su)
	if !strings.HasPrefix(su.URL, srv.URL+"/v1/cap/") || su.TokenID == "" {
		t.Fatalf("signed url %+v", su)
	}
	path := strings.TrimPrefix(su.URL, srv.URL)
	resp, data = send(t, srv, "", "GET", path, nil, "Range", "bytes=7-")
	if resp.StatusCode != 206 || string(data) != "capability" || resp.Header.Get("ETag") != `"`+a.CID+`"` {
		t.Fatalf("cap download: %d %q", resp.StatusCode, data)
	}
	// Revoke, then the token fails.
	resp, data = send(t, srv, key, "DELETE", "/v1/tokens/"+su.TokenID, nil)
	if resp.StatusCode != 204 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, data)
	}
	resp, data = send(t, srv, "", "GET", path, nil)
	if resp.StatusCode != 403 || !strings.Contains(string(data), "revoked") {
		t.Fatalf("revoked token: %d %s", resp.StatusCode, data)
	}
	alter := "AA"
	if strings.HasSuffix(path, alter) {
		alter = "BB" // the token ended in AA already: that would be no change
	}
	resp, _ = send(t, srv, "", "GET", path[:len(path)-2]+alter, nil)
	if resp.StatusCode != 401 {
		t.Fatalf("altered token: %d", resp.StatusCode)
	}
}

func TestUploadFlow(t *testing.T) {
	srv, key := newTestServer(t)
	content := bytes.Repeat([]byte("0123456789"), 100_000)
	sum := sha256.Sum256(content)
	body := fmt.Sprintf(`{"name": "big.bin", "content_type": "application/octet-stream", "size_bytes": %d, "metadata": {"k": "v"}}`, len(content))
	resp, data := send(t, srv, key, "POST", "/v1/uploads", strings.NewReader(body))
	if resp.StatusCode != 201 {
		t.Fatalf("create upload: %d %s", resp.StatusCode, data)
	}
	var up apitype.Upload
	json.Unmarshal(data, &up)
	path := strings.TrimPrefix(up.URL, srv.URL)

	// Half, then a wrong offset, then HEAD, then the rest.
	half := len(content) / 2
	resp, data = send(t, srv, "", "PUT", path, bytes.NewReader(content[:half]))
	if resp.StatusCode != 200 {
		t.Fatalf("first half: %d %s", resp.StatusCode, data)
	}
	resp, _ = send(t, srv, "", "PUT", path, bytes.NewReader(content[:10]), "Content-Range", fmt.Sprintf("bytes 0-9/%d", len(content)))
	if resp.StatusCode != 409 || resp.Header.Get("Upload-Offset") != fmt.Sprint(half) {
		t.Fatalf("wrong offset: %d %q", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	resp, _ = send(t, srv, "", "HEAD", path, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Upload-Offset") != fmt.Sprint(half) {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	// Confirm before all bytes arrived: conflict.
	resp, _ = send(t, srv, key, "POST", "/v1/uploads/"+up.ID+"/confirm", nil)
	if resp.StatusCode != 409 {
		t.Fatalf("early confirm: %d", resp.StatusCode)
	}
	resp, data = send(t, srv, "", "PUT", path, bytes.NewReader(content[half:]), "Content-Range", fmt.Sprintf("bytes %d-%d/%d", half, len(content)-1, len(content)))
	if resp.StatusCode != 200 || !strings.Contains(string(data), `"received"`) {
		t.Fatalf("second half: %d %s", resp.StatusCode, data)
	}
	// Two concurrent confirms: one artifact.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, _ := send(t, srv, key, "POST", "/v1/uploads/"+up.ID+"/confirm", strings.NewReader(`{"sha256": "`+hex.EncodeToString(sum[:])+`"}`))
			codes[i] = r.StatusCode
		}(i)
	}
	wg.Wait()
	if codes[0]+codes[1] != 201+409 {
		t.Fatalf("concurrent confirms answered %v", codes)
	}
	_, data = send(t, srv, key, "GET", "/v1/artifacts", nil)
	var page artmesh.Page[artmesh.Artifact]
	json.Unmarshal(data, &page)
	if len(page.Items) != 1 || page.Items[0].SizeBytes != int64(len(content)) {
		t.Fatalf("after confirm: %s", data)
	}
	_, data = send(t, srv, key, "GET", "/v1/artifacts/"+string(page.Items[0].ID)+"/content", nil)
	if !bytes.Equal(data, content) {
		t.Fatal("confirmed content differs")
	}
	// The token cannot write after confirm.
	resp, _ = send(t, srv, "", "PUT", path, bytes.NewReader([]byte("x")))
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("write after confirm: %d", resp.StatusCode)
	}
}
