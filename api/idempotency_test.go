package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// TestIdempotencyKeys: a keyed write sent again answers the first answer,
// status and body, marked as a replay, and takes effect once; the same key
// with another request is refused with 422; a key belongs to one agent;
// routes whose answer carried a secret refuse the replay with 409.
func TestIdempotencyKeys(t *testing.T) {
	srv, key := newTestServer(t)
	count := func() int {
		t.Helper()
		_, body := send(t, srv, key, "GET", "/v1/artifacts?limit=1000", nil)
		var page struct{ Items []json.RawMessage }
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		return len(page.Items)
	}
	keyed := func(k, method, path, body string, headers ...string) (*http.Response, []byte) {
		t.Helper()
		return send(t, srv, key, method, path, strings.NewReader(body), append([]string{IdempotencyKeyHeader, k}, headers...)...)
	}

	// Create, twice with one key: one artifact, the same answer.
	r1, b1 := keyed("c1", "POST", "/v1/artifacts?name=report", "hello", "Content-Type", "text/plain")
	r2, b2 := keyed("c1", "POST", "/v1/artifacts?name=report", "hello", "Content-Type", "text/plain")
	if r1.StatusCode != 201 || r2.StatusCode != 201 {
		t.Fatalf("statuses %d %d, want 201 twice: %s %s", r1.StatusCode, r2.StatusCode, b1, b2)
	}
	var a1, a2 artmesh.Artifact
	if err := json.Unmarshal(b1, &a1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b2, &a2); err != nil {
		t.Fatal(err)
	}
	if a1.ID != a2.ID || string(b1) != string(b2) {
		t.Fatalf("the replay answered another body:\n%s\n%s", b1, b2)
	}
	if r1.Header.Get("ETag") == "" || r2.Header.Get("ETag") != r1.Header.Get("ETag") {
		t.Fatalf("ETag %q then %q, want the same twice", r1.Header.Get("ETag"), r2.Header.Get("ETag"))
	}
	if r1.Header.Get(ReplayedHeader) != "" || r2.Header.Get(ReplayedHeader) != "true" {
		t.Fatalf("%s: %q then %q, want only the second marked", ReplayedHeader, r1.Header.Get(ReplayedHeader), r2.Header.Get(ReplayedHeader))
	}
	if n := count(); n != 1 {
		t.Fatalf("%d artifacts, want 1", n)
	}
	// Another body, another content type, another name, another route:
	// all another request.
	for _, tc := range []struct{ method, path, body, ct string }{
		{"POST", "/v1/artifacts?name=report", "hello!", "text/plain"},
		{"POST", "/v1/artifacts?name=report", "hello", "text/markdown"},
		{"POST", "/v1/artifacts?name=other", "hello", "text/plain"},
		{"POST", "/v1/snippets", `{"name":"report","content":"hello"}`, "application/json"},
	} {
		r, b := keyed("c1", tc.method, tc.path, tc.body, "Content-Type", tc.ct)
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(b), "idempotency_key_reused") {
			t.Fatalf("%s %s %q with a used key: %d %s, want 422 idempotency_key_reused", tc.method, tc.path, tc.body, r.StatusCode, b)
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("%d artifacts after refused reuses, want 1", n)
	}

	// Another agent's key of the same name is its own.
	_, ab := send(t, srv, key, "POST", "/v1/agents", strings.NewReader(`{"id":"bob"}`))
	var bob apitype.AgentKey
	if err := json.Unmarshal(ab, &bob); err != nil {
		t.Fatal(err)
	}
	r, b := send(t, srv, bob.APIKey, "POST", "/v1/artifacts?name=report", strings.NewReader("bob's"), IdempotencyKeyHeader, "c1", "Content-Type", "text/plain")
	if r.StatusCode != 201 || r.Header.Get(ReplayedHeader) != "" {
		t.Fatalf("bob's c1: %d %s", r.StatusCode, b)
	}

	// Update, share, delete-version and delete: each replays.
	id := a1.ID
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"update", "PUT", "/v1/artifacts/" + string(id) + "/content", "v2", 201},
		{"share", "POST", "/v1/artifacts/" + string(id) + "/share", `{"agents":["bob"]}`, 200},
		{"delete version", "DELETE", "/v1/artifacts/" + string(id) + "/versions/1", "", 204},
		{"delete", "DELETE", "/v1/artifacts/" + string(id), "", 204},
	} {
		k := "k-" + strings.ReplaceAll(tc.name, " ", "-")
		r1, b1 := keyed(k, tc.method, tc.path, tc.body, "Content-Type", "text/plain")
		r2, b2 := keyed(k, tc.method, tc.path, tc.body, "Content-Type", "text/plain")
		if r1.StatusCode != tc.status || r2.StatusCode != tc.status || string(b1) != string(b2) || r2.Header.Get(ReplayedHeader) != "true" {
			t.Fatalf("%s twice: %d %s / %d %s (replayed %q), want %d and the same body twice",
				tc.name, r1.StatusCode, b1, r2.StatusCode, b2, r2.Header.Get(ReplayedHeader), tc.status)
		}
	}
	// Without a key, a delete sent again is a not-found: the key is what
	// makes the retry safe to answer.
	r, _ = send(t, srv, key, "DELETE", "/v1/artifacts/"+string(id), nil)
	if r.StatusCode != 404 {
		t.Fatalf("unkeyed delete again: %d, want 404", r.StatusCode)
	}

	// An agent created with a key: the replay cannot show its API key.
	r1, b1 = keyed("a1", "POST", "/v1/agents", `{"id":"carol"}`)
	r2, b2 = keyed("a1", "POST", "/v1/agents", `{"id":"carol"}`)
	if r1.StatusCode != 201 || r2.StatusCode != 409 || !strings.Contains(string(b2), "shown only once") {
		t.Fatalf("agent twice: %d %s / %d %s, want 201 then 409", r1.StatusCode, b1, r2.StatusCode, b2)
	}

	// An upload sent again: the same upload, with a fresh URL that works.
	r1, b1 = keyed("up1", "POST", "/v1/uploads", `{"name":"u.bin","size_bytes":3}`)
	r2, b2 = keyed("up1", "POST", "/v1/uploads", `{"name":"u.bin","size_bytes":3}`)
	var u1, u2 apitype.Upload
	if err := json.Unmarshal(b1, &u1); err != nil || r1.StatusCode != 201 {
		t.Fatalf("upload: %d %s", r1.StatusCode, b1)
	}
	if err := json.Unmarshal(b2, &u2); err != nil || r2.StatusCode != 201 || u2.ID != u1.ID || r2.Header.Get(ReplayedHeader) != "true" {
		t.Fatalf("upload sent again: %d %s, want upload %s replayed", r2.StatusCode, b2, u1.ID)
	}
	for _, u := range []apitype.Upload{u1, u2} {
		req, _ := http.NewRequest("HEAD", u.URL, nil)
		resp, err := srv.Client().Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("HEAD %s: %v %v", u.URL, resp, err)
		}
		resp.Body.Close()
	}

	// Malformed keys.
	for _, bad := range []string{strings.Repeat("k", 256), "has space", "tab\tkey"} {
		r, b := keyed(bad, "POST", "/v1/artifacts?name=x", "x", "Content-Type", "text/plain")
		if r.StatusCode != 400 || !strings.Contains(string(b), "Idempotency-Key") {
			t.Fatalf("key %q: %d %s, want 400", bad, r.StatusCode, b)
		}
	}
}
