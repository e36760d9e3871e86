package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node"
)

// replicationFixture is a single node with an artifact of admin's, shared
// with bob, and a stranger, carol, who may not see it.
type replicationFixture struct {
	srv        *httptest.Server
	admin, bob string // API keys
	carol      string
	id         string
}

func newReplicationFixture(t *testing.T) replicationFixture {
	t.Helper()
	srv, admin := newTestServer(t)
	f := replicationFixture{srv: srv, admin: admin}
	f.bob = createAgentKey(t, srv, admin, "bob")
	f.carol = createAgentKey(t, srv, admin, "carol")
	resp, data := send(t, srv, admin, "POST", "/v1/artifacts?name=r.txt", strings.NewReader("replicate me"))
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, data)
	}
	var a artmesh.Artifact
	json.Unmarshal(data, &a)
	f.id = string(a.ID)
	if resp, data := send(t, srv, admin, "POST", "/v1/artifacts/"+f.id+"/share", strings.NewReader(`{"agents":["bob"]}`)); resp.StatusCode != 200 {
		t.Fatalf("share: %d %s", resp.StatusCode, data)
	}
	return f
}

func createAgentKey(t *testing.T, srv *httptest.Server, admin, id string) string {
	t.Helper()
	resp, data := send(t, srv, admin, "POST", "/v1/agents", strings.NewReader(`{"id":"`+id+`"}`))
	if resp.StatusCode != 201 {
		t.Fatalf("create agent %s: %d %s", id, resp.StatusCode, data)
	}
	var out struct {
		APIKey string `json:"api_key"`
	}
	json.Unmarshal(data, &out)
	return out.APIKey
}

// wantError checks an answer's status and, for errors, the error shape's code.
func wantError(t *testing.T, what string, status int, data []byte, wantStatus int) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d %s, want %d", what, status, data, wantStatus)
		return
	}
	if status < 400 {
		return
	}
	var e apitype.ErrorBody
	if err := json.Unmarshal(data, &e); err != nil || e.Error.Code != codeOfStatus(status) || e.Error.Message == "" {
		t.Errorf("%s: error body %s", what, data)
	}
}

// codeOfStatus is the error code the API sends with status.
func codeOfStatus(status int) string {
	for k := artmesh.Other; k <= artmesh.InsufficientStorage; k++ {
		if statusOf(k) == status {
			return k.String()
		}
	}
	return ""
}

func TestMeshPolicyRoutes(t *testing.T) {
	f := newReplicationFixture(t)
	// A fresh mesh has the default policy, which every agent may read.
	for _, key := range []string{f.admin, f.carol} {
		resp, data := send(t, f.srv, key, "GET", "/v1/mesh/policy", nil)
		var p catalog.Policy
		if resp.StatusCode != 200 || json.Unmarshal(data, &p) != nil || p != catalog.DefaultPolicy {
			t.Fatalf("GET policy: %d %s, want %+v", resp.StatusCode, data, catalog.DefaultPolicy)
		}
	}
	// One node is one member: a factor of 2 cannot be met, so the
	// default policy must come down to 1 before anything else is set.
	for _, tt := range []struct {
		name, key, body string
		status          int
		want            catalog.Policy // after the call
	}{
		{"not an admin", f.bob, `{"replication_factor":1,"write_replicas":1}`, 403, catalog.DefaultPolicy},
		{"not an admin, bad body", f.carol, `{nope`, 403, catalog.DefaultPolicy},
		{"malformed JSON", f.admin, `{"replication_factor":`, 400, catalog.DefaultPolicy},
		{"empty body", f.admin, ``, 400, catalog.DefaultPolicy},
		{"unknown field", f.admin, `{"factor":1}`, 400, catalog.DefaultPolicy},
		{"wrong type", f.admin, `{"replication_factor":"1"}`, 400, catalog.DefaultPolicy},
		{"trailing data", f.admin, `{"replication_factor":1} {}`, 400, catalog.DefaultPolicy},
		{"factor above the members", f.admin, `{"replication_factor":3,"write_replicas":1}`, 400, catalog.DefaultPolicy},
		{"write replicas above the members", f.admin, `{"replication_factor":1,"write_replicas":2}`, 400, catalog.DefaultPolicy},
		{"zero", f.admin, `{"replication_factor":0}`, 400, catalog.DefaultPolicy},
		{"negative", f.admin, `{"write_replicas":-1}`, 400, catalog.DefaultPolicy},
		{"both", f.admin, `{"replication_factor":1,"write_replicas":1}`, 200, catalog.Policy{ReplicationFactor: 1, WriteReplicas: 1}},
		{"one field keeps the other", f.admin, `{"write_replicas":1}`, 200, catalog.Policy{ReplicationFactor: 1, WriteReplicas: 1}},
		{"null keeps the value", f.admin, `{"replication_factor":null}`, 200, catalog.Policy{ReplicationFactor: 1, WriteReplicas: 1}},
		{"empty object keeps both", f.admin, `{}`, 200, catalog.Policy{ReplicationFactor: 1, WriteReplicas: 1}},
		{"back above the members", f.admin, `{"replication_factor":2}`, 400, catalog.Policy{ReplicationFactor: 1, WriteReplicas: 1}},
	} {
		resp, data := send(t, f.srv, tt.key, "PUT", "/v1/mesh/policy", strings.NewReader(tt.body))
		wantError(t, tt.name, resp.StatusCode, data, tt.status)
		if resp.StatusCode == 200 {
			var p catalog.Policy
			if json.Unmarshal(data, &p) != nil || p != tt.want {
				t.Errorf("%s: answered %s, want %+v", tt.name, data, tt.want)
			}
		}
		resp, data = send(t, f.srv, f.bob, "GET", "/v1/mesh/policy", nil)
		var p catalog.Policy
		if resp.StatusCode != 200 || json.Unmarshal(data, &p) != nil || p != tt.want {
			t.Errorf("%s: then GET policy %d %s, want %+v", tt.name, resp.StatusCode, data, tt.want)
		}
	}
	resp, data := send(t, f.srv, "", "PUT", "/v1/mesh/policy", strings.NewReader(`{}`))
	wantError(t, "no key", resp.StatusCode, data, 401)
}

func TestReplicationRoute(t *testing.T) {
	f := newReplicationFixture(t)
	path := "/v1/artifacts/" + f.id + "/replication"
	for _, tt := range []struct {
		name, key, path, body string
		status                int
	}{
		{"owner, one copy", f.admin, path, `{"factor":1}`, 200},
		{"owner, back to the policy", f.admin, path, `{"factor":0}`, 200},
		{"grantee", f.bob, path, `{"factor":1}`, 403},
		{"stranger", f.carol, path, `{"factor":1}`, 404},
		{"unknown artifact", f.admin, "/v1/artifacts/art_01JD0000000000000000000000/replication", `{"factor":1}`, 404},
		{"malformed id", f.admin, "/v1/artifacts/nope/replication", `{"factor":1}`, 404},
		{"above the members", f.admin, path, `{"factor":2}`, 400},
		{"above the cap", f.admin, path, `{"factor":17}`, 400},
		{"negative", f.admin, path, `{"factor":-1}`, 400},
		{"no factor", f.admin, path, `{}`, 400},
		{"null factor", f.admin, path, `{"factor":null}`, 400},
		{"not a number", f.admin, path, `{"factor":"1"}`, 400},
		{"malformed JSON", f.admin, path, `{"factor":`, 400},
		{"empty body", f.admin, path, ``, 400},
		{"unknown field", f.admin, path, `{"factor":1,"replicas":1}`, 400},
		{"no key", "", path, `{"factor":1}`, 401},
	} {
		resp, data := send(t, f.srv, tt.key, "PUT", tt.path, strings.NewReader(tt.body))
		wantError(t, tt.name, resp.StatusCode, data, tt.status)
		if resp.StatusCode == 200 && strings.TrimSpace(string(data)) != strings.TrimSpace(tt.body) {
			t.Errorf("%s: answered %s, want %s", tt.name, data, tt.body)
		}
	}
}

func TestPlacementRoute(t *testing.T) {
	f := newReplicationFixture(t)
	path := "/v1/artifacts/" + f.id + "/placement"
	// A second version, so that the order shows.
	if resp, data := send(t, f.srv, f.admin, "PUT", "/v1/artifacts/"+f.id+"/content", strings.NewReader("version two")); resp.StatusCode != 201 {
		t.Fatalf("update: %d %s", resp.StatusCode, data)
	}
	resp, data := send(t, f.srv, f.admin, "GET", "/v1/node", nil)
	var info struct {
		PeerID string `json:"peer_id"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(data, &info) != nil || info.PeerID == "" {
		t.Fatalf("node: %d %s", resp.StatusCode, data)
	}
	for _, tt := range []struct {
		name, key, path string
		status          int
	}{
		{"owner", f.admin, path, 200},
		{"grantee", f.bob, path, 200},
		{"stranger", f.carol, path, 404},
		{"unknown artifact", f.admin, "/v1/artifacts/art_01JD0000000000000000000000/placement", 404},
		{"no key", "", path, 401},
	} {
		resp, data := send(t, f.srv, tt.key, "GET", tt.path, nil)
		wantError(t, tt.name, resp.StatusCode, data, tt.status)
		if resp.StatusCode != 200 {
			continue
		}
		var out struct {
			Items []node.VersionPlacement `json:"items"`
		}
		if err := json.Unmarshal(data, &out); err != nil || len(out.Items) != 2 {
			t.Fatalf("%s: placement %s", tt.name, data)
		}
		for i, vp := range out.Items {
			// One member: the effective factor is 1, and this node holds
			// what it took.
			if vp.Version != i+1 || vp.CID == "" || vp.Factor != 1 || vp.State != node.PlacementOK ||
				len(vp.Holders) != 1 || vp.Holders[0] != info.PeerID || vp.Allocated == nil {
				t.Errorf("%s: item %d is %+v", tt.name, i, vp)
			}
		}
	}
}

// TestWriteReplicas checks ?replicas=N on every write route: a number of
// copies one node cannot give is a 503 and nothing is recorded; a bad
// number is a 400.
func TestWriteReplicas(t *testing.T) {
	f := newReplicationFixture(t)
	count := func() int {
		resp, data := send(t, f.srv, f.admin, "GET", "/v1/artifacts", nil)
		var page artmesh.Page[artmesh.Artifact]
		if resp.StatusCode != 200 || json.Unmarshal(data, &page) != nil {
			t.Fatalf("list: %d %s", resp.StatusCode, data)
		}
		return len(page.Items)
	}
	versions := func() int {
		resp, data := send(t, f.srv, f.admin, "GET", "/v1/artifacts/"+f.id+"/versions", nil)
		var out struct {
			Items []artmesh.Version `json:"items"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(data, &out) != nil {
			t.Fatalf("versions: %d %s", resp.StatusCode, data)
		}
		return len(out.Items)
	}
	multipart := "--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.txt\"\r\n\r\nhello\r\n--XYZ--\r\n"
	for _, tt := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
	}{
		{"create, one copy", "POST", "/v1/artifacts?name=a&replicas=1", "a", nil, 201},
		{"create, two copies", "POST", "/v1/artifacts?name=a&replicas=2", "a", nil, 503},
		{"create, zero", "POST", "/v1/artifacts?name=a&replicas=0", "a", nil, 400},
		{"create, not a number", "POST", "/v1/artifacts?name=a&replicas=two", "a", nil, 400},
		{"create, above the cap", "POST", "/v1/artifacts?name=a&replicas=17", "a", nil, 400},
		{"multipart, two copies", "POST", "/v1/artifacts?replicas=2", multipart, []string{"Content-Type", "multipart/form-data; boundary=XYZ"}, 503},
		{"multipart, one copy", "POST", "/v1/artifacts?replicas=1", multipart, []string{"Content-Type", "multipart/form-data; boundary=XYZ"}, 201},
		{"snippet, two copies", "POST", "/v1/snippets?replicas=2", `{"name":"s","content":[1]}`, nil, 503},
		{"snippet, bad", "POST", "/v1/snippets?replicas=-1", `{"name":"s","content":[1]}`, nil, 400},
		{"snippet, one copy", "POST", "/v1/snippets?replicas=1", `{"name":"s","content":[1]}`, nil, 201},
		{"update, two copies", "PUT", "/v1/artifacts/" + f.id + "/content?replicas=2", "v", nil, 503},
		{"update, bad", "PUT", "/v1/artifacts/" + f.id + "/content?replicas=x", "v", nil, 400},
	} {
		before, beforeV := count(), versions()
		resp, data := send(t, f.srv, f.admin, tt.method, tt.path, strings.NewReader(tt.body), tt.headers...)
		wantError(t, tt.name, resp.StatusCode, data, tt.status)
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", tt.name)
		}
		if tt.status >= 400 {
			if after, afterV := count(), versions(); after != before || afterV != beforeV {
				t.Errorf("%s: artifacts %d -> %d, versions %d -> %d: a refused write was recorded", tt.name, before, after, beforeV, afterV)
			}
		}
	}

	// An upload confirmed with replicas=2 stays unconfirmed and can be
	// confirmed again with what one node can give.
	resp, data := send(t, f.srv, f.admin, "POST", "/v1/uploads", strings.NewReader(`{"name":"u.bin","size_bytes":5}`))
	if resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, data)
	}
	var up struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}
	json.Unmarshal(data, &up)
	if resp, data := send(t, f.srv, "", "PUT", strings.TrimPrefix(up.URL, f.srv.URL), strings.NewReader("12345")); resp.StatusCode/100 != 2 {
		t.Fatalf("upload PUT: %d %s", resp.StatusCode, data)
	}
	before := count()
	for _, tt := range []struct {
		name, query string
		status      int
	}{
		{"confirm, bad", "?replicas=0", 400},
		{"confirm, two copies", "?replicas=2", 503},
		{"confirm, one copy", "?replicas=1", 201},
	} {
		resp, data := send(t, f.srv, f.admin, "POST", "/v1/uploads/"+up.ID+"/confirm"+tt.query, nil)
		wantError(t, tt.name, resp.StatusCode, data, tt.status)
	}
	if after := count(); after != before+1 {
		t.Errorf("artifacts %d -> %d after one confirm that worked", before, after)
	}
}
