package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/artmesh/artmesh"
)

// TestConditionalWrites: the ETag of an artifact is its current version's
// CID; of two updates sent with the same If-Match one is taken (201) and
// one refused (412); If-None-Match: * on a name the caller owns is a 412;
// If-Match on deletions; malformed conditions are 400s.
func TestConditionalWrites(t *testing.T) {
	srv, key := newTestServer(t)
	r, b := send(t, srv, key, "POST", "/v1/artifacts?name=plan", strings.NewReader("v1"), "Content-Type", "text/plain", "If-None-Match", "*")
	if r.StatusCode != 201 {
		t.Fatalf("create: %d %s", r.StatusCode, b)
	}
	var a artmesh.Artifact
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	etag := r.Header.Get("ETag")
	if etag != `"`+a.CID+`"` {
		t.Fatalf("ETag %q, want the CID %q quoted", etag, a.CID)
	}
	if r, _ := send(t, srv, key, "GET", "/v1/artifacts/"+string(a.ID), nil); r.Header.Get("ETag") != etag {
		t.Fatalf("info's ETag %q, want %q", r.Header.Get("ETag"), etag)
	}
	// If-None-Match: * on the same name, as a raw create and a snippet.
	r, b = send(t, srv, key, "POST", "/v1/artifacts?name=plan", strings.NewReader("again"), "Content-Type", "text/plain", "If-None-Match", "*")
	if r.StatusCode != 412 || !strings.Contains(string(b), "precondition_failed") {
		t.Fatalf("create of a taken name with If-None-Match: *: %d %s, want 412", r.StatusCode, b)
	}
	r, b = send(t, srv, key, "POST", "/v1/snippets", strings.NewReader(`{"name":"plan","content":1}`), "If-None-Match", "*")
	if r.StatusCode != 412 {
		t.Fatalf("snippet of a taken name with If-None-Match: *: %d %s, want 412", r.StatusCode, b)
	}

	// Two updates from the same version.
	statuses := make([]int, 2)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("PUT", srv.URL+"/v1/artifacts/"+string(a.ID)+"/content", strings.NewReader("v2 by "+string(rune('a'+i))))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("If-Match", etag)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	if !(statuses[0] == 201 && statuses[1] == 412 || statuses[0] == 412 && statuses[1] == 201) {
		t.Fatalf("two updates with one If-Match: %v, want one 201 and one 412", statuses)
	}
	// The old tag no longer deletes; the current one does.
	if r, b := send(t, srv, key, "DELETE", "/v1/artifacts/"+string(a.ID)+"/versions/1", nil, "If-Match", etag); r.StatusCode != 412 {
		t.Fatalf("delete-version with a stale If-Match: %d %s", r.StatusCode, b)
	}
	if r, b := send(t, srv, key, "DELETE", "/v1/artifacts/"+string(a.ID), nil, "If-Match", etag); r.StatusCode != 412 {
		t.Fatalf("delete with a stale If-Match: %d %s", r.StatusCode, b)
	}
	r, _ = send(t, srv, key, "GET", "/v1/artifacts/"+string(a.ID), nil)
	if r, b := send(t, srv, key, "DELETE", "/v1/artifacts/"+string(a.ID), nil, "If-Match", r.Header.Get("ETag")); r.StatusCode != 204 {
		t.Fatalf("delete with the current If-Match: %d %s", r.StatusCode, b)
	}
	for _, tc := range []struct{ method, path, h, v string }{
		{"POST", "/v1/artifacts?name=x", "If-Match", etag},
		{"POST", "/v1/artifacts?name=x", "If-None-Match", etag},
		{"PUT", "/v1/artifacts/" + string(a.ID) + "/content", "If-None-Match", "*"},
	} {
		if r, b := send(t, srv, key, tc.method, tc.path, strings.NewReader("x"), tc.h, tc.v); r.StatusCode != 400 {
			t.Fatalf("%s %s with %s: %d %s, want 400", tc.method, tc.path, tc.h, r.StatusCode, b)
		}
	}
}

// TestDeclaredDigests: a wrong Content-Digest (or x-amz-checksum-sha256)
// on a create, a snippet, an update or an upload PUT is a 400
// checksum_mismatch that records nothing; a right one is recorded on the
// version, where info, versions and list show it.
func TestDeclaredDigests(t *testing.T) {
	srv, key := newTestServer(t)
	digest := func(b string) string {
		sum := sha256.Sum256([]byte(b))
		return base64.StdEncoding.EncodeToString(sum[:])
	}
	hexOf := func(b string) string {
		sum := sha256.Sum256([]byte(b))
		return hex.EncodeToString(sum[:])
	}
	count := func(name string) int {
		_, body := send(t, srv, key, "GET", "/v1/artifacts?name="+name, nil)
		var page struct{ Items []artmesh.Artifact }
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		return len(page.Items)
	}
	for _, tc := range []struct{ header, value string }{
		{"Content-Digest", "sha-256=:" + digest("other") + ":"},
		{"X-Amz-Checksum-Sha256", digest("other")},
	} {
		r, b := send(t, srv, key, "POST", "/v1/artifacts?name=d.txt", strings.NewReader("hello"), "Content-Type", "text/plain", tc.header, tc.value)
		if r.StatusCode != 400 || !strings.Contains(string(b), "checksum_mismatch") {
			t.Fatalf("create with a wrong %s: %d %s", tc.header, r.StatusCode, b)
		}
	}
	r, b := send(t, srv, key, "POST", "/v1/snippets", strings.NewReader(`{"name":"d.txt","content":{"a":1}}`), "Content-Digest", "sha-256=:"+digest(`{"a":2}`)+":")
	if r.StatusCode != 400 || !strings.Contains(string(b), "checksum_mismatch") {
		t.Fatalf("snippet with a wrong digest: %d %s", r.StatusCode, b)
	}
	if n := count("d.txt"); n != 0 {
		t.Fatalf("%d artifacts after refused writes, want 0", n)
	}
	// Malformed digests.
	for _, v := range []string{"sha-256=:not base64:", "md5=:AAAA:", "sha-256=:" + base64.StdEncoding.EncodeToString([]byte("short")) + ":"} {
		if r, b := send(t, srv, key, "POST", "/v1/artifacts?name=d.txt", strings.NewReader("hello"), "Content-Digest", v); r.StatusCode != 400 || !strings.Contains(string(b), "invalid_argument") {
			t.Fatalf("Content-Digest %q: %d %s, want 400 invalid_argument", v, r.StatusCode, b)
		}
	}

	// A right digest, with another algorithm beside it: recorded.
	r, b = send(t, srv, key, "POST", "/v1/artifacts?name=d.txt", strings.NewReader("hello"), "Content-Type", "text/plain",
		"Content-Digest", "sha-512=:AAAA:, sha-256=:"+digest("hello")+":")
	var a artmesh.Artifact
	if err := json.Unmarshal(b, &a); err != nil || r.StatusCode != 201 || a.SHA256 != hexOf("hello") {
		t.Fatalf("create with a right digest: %d %s", r.StatusCode, b)
	}
	// Update: wrong, then right; the version chain keeps each digest.
	id := string(a.ID)
	if r, b := send(t, srv, key, "PUT", "/v1/artifacts/"+id+"/content", strings.NewReader("v2"), "X-Amz-Checksum-Sha256", digest("v3")); r.StatusCode != 400 {
		t.Fatalf("update with a wrong digest: %d %s", r.StatusCode, b)
	}
	if r, b := send(t, srv, key, "PUT", "/v1/artifacts/"+id+"/content", strings.NewReader("v2"), "X-Amz-Checksum-Sha256", digest("v2")); r.StatusCode != 201 {
		t.Fatalf("update with a right digest: %d %s", r.StatusCode, b)
	}
	_, b = send(t, srv, key, "GET", "/v1/artifacts/"+id+"/versions", nil)
	var vs struct{ Items []artmesh.Version }
	if err := json.Unmarshal(b, &vs); err != nil || len(vs.Items) != 2 || vs.Items[0].SHA256 != hexOf("hello") || vs.Items[1].SHA256 != hexOf("v2") {
		t.Fatalf("versions: %s", b)
	}
	_, b = send(t, srv, key, "GET", "/v1/artifacts/"+id, nil)
	if err := json.Unmarshal(b, &a); err != nil || a.SHA256 != hexOf("v2") {
		t.Fatalf("info: %s", b)
	}
	_, b = send(t, srv, key, "GET", "/v1/artifacts?name=d.txt", nil)
	if !strings.Contains(string(b), hexOf("v2")) {
		t.Fatalf("list does not show the digest: %s", b)
	}

	// An upload PUT with a wrong digest keeps nothing; a right one is
	// taken, and the confirmed version has the content's digest.
	_, b = send(t, srv, key, "POST", "/v1/uploads", strings.NewReader(`{"name":"u.bin","size_bytes":10}`))
	var up struct{ ID, URL string }
	if err := json.Unmarshal(b, &up); err != nil {
		t.Fatal(err)
	}
	put := func(body, from, d string) (*http.Response, []byte) {
		req, _ := http.NewRequest("PUT", up.URL, strings.NewReader(body))
		req.Header.Set("Content-Range", "bytes "+from+"/10")
		req.Header.Set("Content-Digest", "sha-256=:"+digest(d)+":")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp, data
	}
	if r, b := put("01234", "0-4", "01235"); r.StatusCode != 400 || !strings.Contains(string(b), "checksum_mismatch") {
		t.Fatalf("upload PUT with a wrong digest: %d %s", r.StatusCode, b)
	}
	if r, b := put("01234", "0-4", "01234"); r.StatusCode != 200 {
		t.Fatalf("upload PUT with a right digest after a refused one (nothing kept, so from 0): %d %s", r.StatusCode, b)
	}
	if r, b := put("56789", "5-9", "56789"); r.StatusCode != 200 {
		t.Fatalf("second upload PUT: %d %s", r.StatusCode, b)
	}
	r, b = send(t, srv, key, "POST", "/v1/uploads/"+up.ID+"/confirm", nil, "X-Amz-Checksum-Sha256", digest("not it"))
	if r.StatusCode != 400 || !strings.Contains(string(b), "checksum_mismatch") {
		t.Fatalf("confirm with a wrong digest: %d %s", r.StatusCode, b)
	}
	r, b = send(t, srv, key, "POST", "/v1/uploads/"+up.ID+"/confirm", nil, "X-Amz-Checksum-Sha256", digest("0123456789"))
	if err := json.Unmarshal(b, &a); err != nil || r.StatusCode != 201 || a.SHA256 != hexOf("0123456789") {
		t.Fatalf("confirm: %d %s", r.StatusCode, b)
	}
}
