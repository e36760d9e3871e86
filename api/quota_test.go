package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// errCode returns the code of an error answer.
func errCode(data []byte) string {
	var body apitype.ErrorBody
	json.Unmarshal(data, &body)
	return body.Error.Code
}

// quotaOf reads an agent's quota status as the admin.
func quotaOf(t *testing.T, srv *httptest.Server, admin, id string) artmesh.QuotaStatus {
	t.Helper()
	resp, data := send(t, srv, admin, "GET", "/v1/agents/"+id+"/quota", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("quota of %s: %d %s", id, resp.StatusCode, data)
	}
	var st artmesh.QuotaStatus
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// blocks returns how many blocks the node's store holds.
func blocks(t *testing.T, srv *httptest.Server, admin string) int64 {
	t.Helper()
	resp, data := send(t, srv, admin, "GET", "/v1/repo/stat", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("repo stat: %d %s", resp.StatusCode, data)
	}
	var st apitype.RepoStat
	json.Unmarshal(data, &st)
	return st.Blocks
}

// unsized hides a body's length, so that it is sent chunked.
type unsized struct{ io.Reader }

func TestQuotaRefusals(t *testing.T) {
	srv, admin := newTestServer(t)
	bob := createAgentKey(t, srv, admin, "bob")
	// The web view learns whose usage to show from GET /v1/node.
	resp, data := send(t, srv, bob, "GET", "/v1/node", nil)
	var info apitype.NodeInfo
	if json.Unmarshal(data, &info); resp.StatusCode != 200 || info.Agent != "bob" {
		t.Fatalf("GET /v1/node as bob: %d %s", resp.StatusCode, data)
	}
	resp, data = send(t, srv, admin, "PUT", "/v1/mesh/quota", strings.NewReader(`{"bytes":100,"staged":30,"uploads":1,"streams":2}`))
	if resp.StatusCode != 200 {
		t.Fatalf("set defaults: %d %s", resp.StatusCode, data)
	}
	resp, data = send(t, srv, bob, "GET", "/v1/mesh/quota", nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(data)) != `{"bytes":100,"staged":30,"uploads":1,"streams":2}` {
		t.Fatalf("defaults as bob sees them: %d %s", resp.StatusCode, data)
	}
	resp, data = send(t, srv, bob, "POST", "/v1/artifacts?name=a", bytes.NewReader(make([]byte, 60)))
	if resp.StatusCode != 201 {
		t.Fatalf("create within the quota: %d %s", resp.StatusCode, data)
	}
	var a artmesh.Artifact
	json.Unmarshal(data, &a)
	before := blocks(t, srv, admin)

	for _, tc := range []struct {
		name, method, path string
		body               io.Reader
		status             int
		code               string
	}{
		{"create over, declared", "POST", "/v1/artifacts?name=b", bytes.NewReader(make([]byte, 41)), 507, "quota_exceeded"},
		{"create over, chunked", "POST", "/v1/artifacts?name=b", unsized{bytes.NewReader(make([]byte, 41))}, 507, "quota_exceeded"},
		{"new version over", "PUT", "/v1/artifacts/" + string(a.ID) + "/content", bytes.NewReader(make([]byte, 41)), 507, "quota_exceeded"},
		{"snippet over", "POST", "/v1/snippets", strings.NewReader(`{"name":"s","content":"` + strings.Repeat("x", 40) + `"}`), 507, "quota_exceeded"},
		{"upload over bytes", "POST", "/v1/uploads", strings.NewReader(`{"name":"u","size_bytes":41}`), 507, "quota_exceeded"},
		{"upload over staged", "POST", "/v1/uploads", strings.NewReader(`{"name":"u","size_bytes":31}`), 507, "quota_exceeded"},
		{"upload within", "POST", "/v1/uploads", strings.NewReader(`{"name":"u","size_bytes":30}`), 201, ""},
		{"one upload too many", "POST", "/v1/uploads", strings.NewReader(`{"name":"u","size_bytes":1}`), 429, "too_many"},
		{"staged bytes count", "POST", "/v1/artifacts?name=b", bytes.NewReader(make([]byte, 11)), 507, "quota_exceeded"},
		{"up to the quota", "POST", "/v1/artifacts?name=b", bytes.NewReader(make([]byte, 10)), 201, ""},
		{"non-admin sets a quota", "PUT", "/v1/agents/bob/quota", strings.NewReader(`{"bytes":-1}`), 403, "permission_denied"},
		{"non-admin sets defaults", "PUT", "/v1/mesh/quota", strings.NewReader(`{"bytes":-1}`), 403, "permission_denied"},
		{"another's quota", "GET", "/v1/agents/admin/quota", nil, 403, "permission_denied"},
		{"own quota", "GET", "/v1/agents/bob/quota", nil, 200, ""},
	} {
		resp, data := send(t, srv, bob, tc.method, tc.path, tc.body)
		if resp.StatusCode != tc.status || (tc.code != "" && errCode(data) != tc.code) {
			t.Fatalf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, data, tc.status, tc.code)
		}
		if tc.name == "create over, declared" {
			if after := blocks(t, srv, admin); after != before {
				t.Fatalf("a refused create stored blocks: %d, had %d", after, before)
			}
		}
	}
	st := quotaOf(t, srv, admin, "bob")
	want := artmesh.QuotaStatus{
		Agent:    "bob",
		Usage:    artmesh.Usage{Bytes: 70, Staged: 30, Uploads: 1},
		Limits:   artmesh.Quota{Bytes: 100, Staged: 30, Uploads: 1, Streams: 2},
		Defaults: artmesh.Quota{Bytes: 100, Staged: 30, Uploads: 1, Streams: 2},
	}
	if st != want {
		t.Fatalf("bob's quota %+v, want %+v", st, want)
	}
	resp, data = send(t, srv, bob, "GET", "/v1/artifacts", nil)
	var page artmesh.Page[artmesh.Artifact]
	json.Unmarshal(data, &page)
	if resp.StatusCode != 200 || len(page.Items) != 2 {
		t.Fatalf("bob has %d artifacts, want 2: %d %s", len(page.Items), resp.StatusCode, data)
	}

	// Admins are unlimited by default.
	resp, data = send(t, srv, admin, "POST", "/v1/artifacts?name=big", bytes.NewReader(make([]byte, 1000)))
	if resp.StatusCode != 201 {
		t.Fatalf("admin create: %d %s", resp.StatusCode, data)
	}
	// An override lifts the default for one agent.
	resp, data = send(t, srv, admin, "PUT", "/v1/agents/bob/quota", strings.NewReader(`{"bytes":-1}`))
	if resp.StatusCode != 200 {
		t.Fatalf("set bob's quota: %d %s", resp.StatusCode, data)
	}
	if st := quotaOf(t, srv, admin, "bob"); st.Override != (artmesh.Quota{Bytes: artmesh.Unlimited}) || st.Limits.Bytes != artmesh.Unlimited || st.Limits.Uploads != 1 {
		t.Fatalf("after the override: %+v", st)
	}
	resp, data = send(t, srv, bob, "POST", "/v1/artifacts?name=big", bytes.NewReader(make([]byte, 1000)))
	if resp.StatusCode != 201 {
		t.Fatalf("create with an unlimited override: %d %s", resp.StatusCode, data)
	}
	// And binds an admin.
	resp, data = send(t, srv, admin, "PUT", "/v1/agents/admin/quota", strings.NewReader(`{"bytes":1000}`))
	if resp.StatusCode != 200 {
		t.Fatalf("set admin's quota: %d %s", resp.StatusCode, data)
	}
	resp, data = send(t, srv, admin, "POST", "/v1/artifacts?name=big", bytes.NewReader(make([]byte, 1)))
	if resp.StatusCode != 507 || errCode(data) != "quota_exceeded" {
		t.Fatalf("admin over its own quota: %d %s", resp.StatusCode, data)
	}
}

// openStream opens an event stream and reads its first frame.
func openStream(t *testing.T, srv *httptest.Server, key string) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode == 200 {
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return resp, cancel
}

func TestQuotaStreams(t *testing.T) {
	srv, admin := newTestServer(t)
	bob := createAgentKey(t, srv, admin, "bob")
	resp, data := send(t, srv, admin, "PUT", "/v1/mesh/quota", strings.NewReader(`{"streams":2}`))
	if resp.StatusCode != 200 {
		t.Fatalf("set defaults: %d %s", resp.StatusCode, data)
	}
	var cancels []context.CancelFunc
	for i := range 2 {
		resp, cancel := openStream(t, srv, bob)
		if resp.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
		cancels = append(cancels, cancel)
	}
	resp, _ = openStream(t, srv, bob)
	if resp.StatusCode != 429 {
		t.Fatalf("third stream: %d, want 429", resp.StatusCode)
	}
	data, _ = io.ReadAll(resp.Body)
	if errCode(data) != "too_many" {
		t.Fatalf("third stream: %s", data)
	}
	if st := quotaOf(t, srv, admin, "bob"); st.Usage.Streams != 2 {
		t.Fatalf("bob holds %d streams, want 2", st.Usage.Streams)
	}
	// Admins are unlimited by default.
	for i := range 3 {
		if resp, _ := openStream(t, srv, admin); resp.StatusCode != 200 {
			t.Fatalf("admin stream %d: %d", i, resp.StatusCode)
		}
	}
	// A closed stream makes room.
	cancels[0]()
	deadline := time.Now().Add(5 * time.Second)
	for quotaOf(t, srv, admin, "bob").Usage.Streams != 1 {
		if time.Now().After(deadline) {
			t.Fatal("a closed stream is still counted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp, _ := openStream(t, srv, bob); resp.StatusCode != 200 {
		t.Fatalf("stream after one closed: %d", resp.StatusCode)
	}
}
