package api

import (
	"encoding/json"
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
