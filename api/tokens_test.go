package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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

// TestListUploads checks GET /v1/uploads (the caller's unconfirmed
// uploads, no one else's, no token) and that a create sent again with its
// Idempotency-Key answers the upload as it is now.
func TestListUploads(t *testing.T) {
	srv, key := newTestServer(t)
	resp, data := send(t, srv, key, "POST", "/v1/agents", strings.NewReader(`{"id": "bob"}`))
	if resp.StatusCode != 201 {
		t.Fatalf("create bob: %d %s", resp.StatusCode, data)
	}
	var bob struct {
		APIKey string `json:"api_key"`
	}
	json.Unmarshal(data, &bob)
	create := func(k, name string) apitype.Upload {
		t.Helper()
		resp, data := send(t, srv, k, "POST", "/v1/uploads", strings.NewReader(`{"name": "`+name+`", "size_bytes": 4}`), "Idempotency-Key", "key-"+name)
		if resp.StatusCode != 201 {
			t.Fatalf("create upload %s: %d %s", name, resp.StatusCode, data)
		}
		var up apitype.Upload
		json.Unmarshal(data, &up)
		return up
	}
	list := func(k string) []apitype.UploadStatus {
		t.Helper()
		resp, data := send(t, srv, k, "GET", "/v1/uploads", nil)
		if resp.StatusCode != 200 || strings.Contains(string(data), "token") {
			t.Fatalf("list uploads: %d %s", resp.StatusCode, data)
		}
		var out apitype.Items[apitype.UploadStatus]
		json.Unmarshal(data, &out)
		return out.Items
	}
	mine := create(key, "mine.bin")
	create(bob.APIKey, "bobs.bin")
	if got := list(key); len(got) != 1 || got[0].ID != mine.ID || got[0].State != "open" || got[0].ReceivedBytes != 0 {
		t.Fatalf("admin's uploads: %+v", got)
	}
	if got := list(bob.APIKey); len(got) != 1 || got[0].Name != "bobs.bin" {
		t.Fatalf("bob's uploads: %+v", got)
	}
	if resp, _ := send(t, srv, "", "GET", "/v1/uploads", nil); resp.StatusCode != 401 {
		t.Errorf("without a key: %d", resp.StatusCode)
	}

	// The bytes arrive; the create sent again answers it received.
	if resp, data := send(t, srv, "", "PUT", strings.TrimPrefix(mine.URL, srv.URL), strings.NewReader("abcd")); resp.StatusCode != 200 {
		t.Fatalf("put: %d %s", resp.StatusCode, data)
	}
	again := create(key, "mine.bin")
	if again.ID != mine.ID || again.State != "received" || again.ReceivedBytes != 4 || again.Token == "" {
		t.Errorf("the create sent again: %+v, want %s received with a token", again, mine.ID)
	}
	if resp, data := send(t, srv, key, "POST", "/v1/uploads/"+mine.ID+"/confirm", nil); resp.StatusCode != 201 {
		t.Fatalf("confirm: %d %s", resp.StatusCode, data)
	}
	if got := list(key); len(got) != 0 {
		t.Errorf("after the confirm: %+v", got)
	}
	if again := create(key, "mine.bin"); again.State != "confirmed" || again.ArtifactID == "" {
		t.Errorf("the create sent after the confirm: %+v", again)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tt := range []struct {
		h            string
		length       int64
		start, total int64
		invalid      bool
	}{
		{"", 10, -1, -1, false},
		{"bytes 0-9/10", 10, 0, 10, false},
		{"bytes 5-9/10", -1, 5, 10, false},
		{"bytes */10", 0, 10, 10, false},  // no bytes: finish
		{"bytes */10", -1, 10, 10, false}, // length unknown: the node reads none past the size
		{"bytes */10", 3, 0, 0, true},     // bytes with it
		{"bytes */x", 0, 0, 0, true},
		{"bytes 5-4/10", 0, 0, 0, true},
		{"bytes 0-10/10", 11, 0, 0, true},
		{"bytes 0-9/10", 5, 0, 0, true},
		{"items 0-9/10", 10, 0, 0, true},
	} {
		start, total, err := parseContentRange(tt.h, tt.length)
		if tt.invalid {
			if !errors.Is(err, artmesh.Invalid) {
				t.Errorf("%q (%d): %v, want invalid", tt.h, tt.length, err)
			}
			continue
		}
		if err != nil || start != tt.start || total != tt.total {
			t.Errorf("%q (%d): %d %d %v, want %d %d", tt.h, tt.length, start, total, err, tt.start, tt.total)
		}
	}
}

// TestUploadFinishWithoutBytes checks PUT bytes */N on an upload: before
// its bytes are all there it is an offset mismatch that says where the
// node's copy ends; once received, it takes no more.
func TestUploadFinishWithoutBytes(t *testing.T) {
	srv, key := newTestServer(t)
	resp, data := send(t, srv, key, "POST", "/v1/uploads", strings.NewReader(`{"name": "f.bin", "size_bytes": 10}`))
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, data)
	}
	var up apitype.Upload
	json.Unmarshal(data, &up)
	path := strings.TrimPrefix(up.URL, srv.URL)
	if resp, data := send(t, srv, "", "PUT", path, strings.NewReader("01234"), "Content-Range", "bytes 0-4/10"); resp.StatusCode != 200 {
		t.Fatalf("half: %d %s", resp.StatusCode, data)
	}
	if resp, _ := send(t, srv, "", "PUT", path, nil, "Content-Range", "bytes */10"); resp.StatusCode != 409 || resp.Header.Get("Upload-Offset") != "5" {
		t.Errorf("finish with half of the bytes: %d, Upload-Offset %q", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	if resp, data := send(t, srv, "", "PUT", path, strings.NewReader("56789"), "Content-Range", "bytes 5-9/10"); resp.StatusCode != 200 || !strings.Contains(string(data), `"received"`) {
		t.Fatalf("the rest: %d %s", resp.StatusCode, data)
	}
	if resp, _ := send(t, srv, "", "PUT", path, nil, "Content-Range", "bytes */10"); resp.StatusCode != 409 {
		t.Errorf("finish a received upload: %d, want 409", resp.StatusCode)
	}
}
