package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// ownerFixture is a node with an admin, alice who owns an artifact, bob
// it is shared with, and carol, a stranger to it.
type ownerFixture struct {
	srv                      *httptest.Server
	admin, alice, bob, carol string
	art                      artmesh.Artifact
}

func newOwnerFixture(t *testing.T) ownerFixture {
	t.Helper()
	srv, admin := newTestServer(t)
	f := ownerFixture{srv: srv, admin: admin}
	f.alice = createAgentKey(t, srv, admin, "alice")
	f.bob = createAgentKey(t, srv, admin, "bob")
	f.carol = createAgentKey(t, srv, admin, "carol")
	resp, data := send(t, srv, f.alice, "POST", "/v1/artifacts?name=model.bin", strings.NewReader("the weights"),
		"Content-Type", "application/octet-stream", MetadataHeader, `{"stage":"train","epoch":2}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, data)
	}
	json.Unmarshal(data, &f.art)
	if resp, data := send(t, srv, f.alice, "POST", "/v1/artifacts/"+string(f.art.ID)+"/share", strings.NewReader(`{"agents":["bob"]}`)); resp.StatusCode != 200 {
		t.Fatalf("share: %d %s", resp.StatusCode, data)
	}
	return f
}

// versions returns the artifact's versions as alice sees them.
func (f ownerFixture) versions(t *testing.T) []artmesh.Version {
	t.Helper()
	resp, data := send(t, f.srv, f.alice, "GET", "/v1/artifacts/"+string(f.art.ID)+"/versions", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("versions: %d %s", resp.StatusCode, data)
	}
	var vs apitype.Items[artmesh.Version]
	json.Unmarshal(data, &vs)
	return vs.Items
}

// TestUpdateMetadata checks PATCH /v1/artifacts/{id}: who may, what it
// makes (a new version with the same content and the merged metadata),
// and the bad requests, which change nothing.
func TestUpdateMetadata(t *testing.T) {
	f := newOwnerFixture(t)
	path := "/v1/artifacts/" + string(f.art.ID)
	big := `{"metadata":{"k":"` + strings.Repeat("x", maxJSONBody) + `"}}`
	bigMeta := `{"metadata":{"k":"` + strings.Repeat("x", artmesh.MaxMetadataBytes) + `"}}`
	for _, tc := range []struct {
		name, key, path, body string
		headers               []string
		status                int
	}{
		{"no key", "", path, `{"metadata":{"k":"v"}}`, nil, 401},
		{"grantee", f.bob, path, `{"metadata":{"k":"v"}}`, nil, 403},
		{"stranger", f.carol, path, `{"metadata":{"k":"v"}}`, nil, 404},
		{"admin, not the owner", f.admin, path, `{"metadata":{"k":"v"}}`, nil, 404},
		{"unknown id", f.alice, "/v1/artifacts/art_01JD0000000000000000000000", `{"metadata":{"k":"v"}}`, nil, 404},
		{"not an id", f.alice, "/v1/artifacts/nope", `{"metadata":{"k":"v"}}`, nil, 404},
		{"malformed JSON", f.alice, path, `{"metadata":{"k":`, nil, 400},
		{"empty body", f.alice, path, ``, nil, 400},
		{"metadata a string", f.alice, path, `{"metadata":"k=v"}`, nil, 400},
		{"metadata a number", f.alice, path, `{"metadata":5}`, nil, 400},
		{"metadata an array", f.alice, path, `{"metadata":[{"k":"v"}]}`, nil, 400},
		{"metadata null", f.alice, path, `{"metadata":null}`, nil, 400},
		{"no metadata", f.alice, path, `{}`, nil, 400},
		{"empty patch", f.alice, path, `{"metadata":{}}`, nil, 400},
		{"unknown field", f.alice, path, `{"metadata":{"k":"v"},"content":"x"}`, nil, 400},
		{"data after the object", f.alice, path, `{"metadata":{"k":"v"}} {}`, nil, 400},
		{"too deep", f.alice, path, `{"metadata":` + deepMetadata(artmesh.MaxMetadataDepth+1) + `}`, nil, 400},
		{"oversize body", f.alice, path, big, nil, 413},
		{"oversize metadata", f.alice, path, bigMeta, nil, 413},
		{"If-Match of other content", f.alice, path, `{"metadata":{"k":"v"}}`, []string{"If-Match", `"bafyother"`}, 412},
		{"If-None-Match", f.alice, path, `{"metadata":{"k":"v"}}`, []string{"If-None-Match", "*"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := send(t, f.srv, tc.key, "PATCH", tc.path, strings.NewReader(tc.body), tc.headers...)
			if tc.status == http.StatusPreconditionFailed {
				if resp.StatusCode != tc.status || errCode(data) != "precondition_failed" {
					t.Errorf("%d %s, want 412 precondition_failed", resp.StatusCode, data)
				}
				return
			}
			wantError(t, tc.name, resp.StatusCode, data, tc.status)
		})
	}
	if vs := f.versions(t); len(vs) != 1 {
		t.Fatalf("after the refused patches the artifact has %d versions, want 1", len(vs))
	}

	// The owner: a new version with the same content and the merged
	// metadata; a non-string value stays what it is, null removes.
	resp, data := send(t, f.srv, f.alice, "PATCH", path, strings.NewReader(`{"metadata":{"stage":"eval","epoch":null,"year":2025,"tags":["a","b"]}}`),
		"If-Match", `"`+f.art.CID+`"`)
	if resp.StatusCode != 201 {
		t.Fatalf("owner's patch: %d %s", resp.StatusCode, data)
	}
	var a artmesh.Artifact
	json.Unmarshal(data, &a)
	if a.Version != 2 || a.CID != f.art.CID || a.SizeBytes != f.art.SizeBytes || a.ContentType != f.art.ContentType {
		t.Errorf("after the patch: version %d cid %s size %d type %s, want version 2 with the same content", a.Version, a.CID, a.SizeBytes, a.ContentType)
	}
	if resp.Header.Get("ETag") != `"`+f.art.CID+`"` {
		t.Errorf("ETag %q, want the content's", resp.Header.Get("ETag"))
	}
	meta, _ := json.Marshal(a.Metadata)
	if string(meta) != `{"stage":"eval","tags":["a","b"],"year":2025}` {
		t.Errorf("metadata after the patch %s, want stage eval, tags, year 2025 and no epoch", meta)
	}
	vs := f.versions(t)
	if len(vs) != 2 || vs[1].CID != vs[0].CID || vs[1].CreatedBy != "alice" || string(vs[0].Metadata["epoch"]) != "2" {
		t.Errorf("versions after the patch: %+v, want 2 with one CID, version 1 keeping its metadata", vs)
	}
	resp, data = send(t, f.srv, f.bob, "GET", path+"/content", nil)
	if resp.StatusCode != 200 || string(data) != "the weights" {
		t.Errorf("the content of the new version, as bob: %d %q", resp.StatusCode, data)
	}

	// Sent again with its key: the first answer, no third version.
	for i := range 2 {
		resp, data = send(t, f.srv, f.alice, "PATCH", path, strings.NewReader(`{"metadata":{"stage":"final"}}`), IdempotencyKeyHeader, "patch-once")
		json.Unmarshal(data, &a)
		if resp.StatusCode != 201 || a.Version != 3 || (i == 1) != (resp.Header.Get(ReplayedHeader) == "true") {
			t.Errorf("keyed patch #%d: %d version %d replayed %q %s", i+1, resp.StatusCode, a.Version, resp.Header.Get(ReplayedHeader), data)
		}
	}
	if vs := f.versions(t); len(vs) != 3 {
		t.Errorf("%d versions after a keyed patch sent twice, want 3", len(vs))
	}
	// Patches of new keys cannot grow the metadata past its bound: two
	// of 40 keys of 1 KiB each are 80 KiB together.
	patch := func(prefix string, value func(i int) string) string {
		var b strings.Builder
		b.WriteString(`{"metadata":{`)
		for i := range 40 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"%s%d":%s`, prefix, i, value(i))
		}
		b.WriteString("}}")
		return b.String()
	}
	kib := func(int) string { return `"` + strings.Repeat("y", 1024) + `"` }
	if resp, data := send(t, f.srv, f.alice, "PATCH", path, strings.NewReader(patch("g", kib))); resp.StatusCode != 201 {
		t.Fatalf("the first 40 KiB: %d %s", resp.StatusCode, data)
	}
	resp, data = send(t, f.srv, f.alice, "PATCH", path, strings.NewReader(patch("h", kib)))
	wantError(t, "a patch that grows the metadata past its bound", resp.StatusCode, data, 413)
	if resp, data := send(t, f.srv, f.alice, "PATCH", path, strings.NewReader(patch("g", func(int) string { return "null" }))); resp.StatusCode != 201 {
		t.Errorf("a patch that removes what it added: %d %s", resp.StatusCode, data)
	}
	if resp, data := send(t, f.srv, f.alice, "PATCH", path, strings.NewReader(patch("h", kib))); resp.StatusCode != 201 {
		t.Errorf("40 KiB again, after the removal: %d %s", resp.StatusCode, data)
	}
}

// TestListSignedURLs checks GET /v1/artifacts/{id}/signed-urls: the owner
// and admins see every live URL, a grantee its own, a stranger nothing
// (404); revoked URLs and those whose grant is gone drop out; no token is
// ever listed.
func TestListSignedURLs(t *testing.T) {
	f := newOwnerFixture(t)
	path := "/v1/artifacts/" + string(f.art.ID)
	issue := func(key, body string) apitype.SignedURL {
		t.Helper()
		resp, data := send(t, f.srv, key, "POST", path+"/signed-url", strings.NewReader(body))
		if resp.StatusCode != 201 {
			t.Fatalf("signed-url: %d %s", resp.StatusCode, data)
		}
		var su apitype.SignedURL
		json.Unmarshal(data, &su)
		return su
	}
	a1 := issue(f.alice, `{"expires_in": 600}`)
	a2 := issue(f.alice, `{"version": 1}`)
	b1 := issue(f.bob, `{}`)
	secrets := []string{a1.Token, a2.Token, b1.Token}

	list := func(key string) (int, []apitype.SignedURLInfo) {
		t.Helper()
		resp, data := send(t, f.srv, key, "GET", path+"/signed-urls", nil)
		for _, s := range secrets {
			if strings.Contains(string(data), s) {
				t.Fatalf("the listing carries a token: %s", data)
			}
		}
		if resp.StatusCode != 200 {
			wantError(t, "list", resp.StatusCode, data, resp.StatusCode)
			return resp.StatusCode, nil
		}
		var raw map[string][]map[string]any
		json.Unmarshal(data, &raw)
		for _, it := range raw["items"] {
			if _, ok := it["token"]; ok {
				t.Errorf("an item has a token field: %v", it)
			}
		}
		var out apitype.Items[apitype.SignedURLInfo]
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatal(err)
		}
		return 200, out.Items
	}
	ids := func(items []apitype.SignedURLInfo) []string {
		var out []string
		for _, it := range items {
			out = append(out, it.TokenID)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		key    string
		status int
		want   []string // newest first
	}{
		{"owner", f.alice, 200, []string{b1.TokenID, a2.TokenID, a1.TokenID}},
		{"admin", f.admin, 200, []string{b1.TokenID, a2.TokenID, a1.TokenID}},
		{"grantee", f.bob, 200, []string{b1.TokenID}},
		{"stranger", f.carol, 404, nil},
		{"no key", "", 401, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, items := list(tc.key)
			if status != tc.status || !slices.Equal(ids(items), tc.want) {
				t.Errorf("%d %v, want %d %v", status, ids(items), tc.status, tc.want)
			}
		})
	}
	_, items := list(f.alice)
	byID := map[string]apitype.SignedURLInfo{}
	for _, it := range items {
		byID[it.TokenID] = it
	}
	if it := byID[a1.TokenID]; it.Agent != "alice" || it.Version != 0 || !it.ExpiresAt.Equal(a1.ExpiresAt) || it.ArtifactID != f.art.ID {
		t.Errorf("alice's first URL is listed as %+v, want agent alice, version 0, expiring %s", it, a1.ExpiresAt)
	}
	if it := byID[a2.TokenID]; it.Version != 1 {
		t.Errorf("the URL pinned to version 1 is listed with version %d", it.Version)
	}
	if it := byID[b1.TokenID]; it.Agent != "bob" {
		t.Errorf("bob's URL is listed with agent %q", it.Agent)
	}
	for _, bad := range []string{"/v1/artifacts/art_01JD0000000000000000000000/signed-urls", "/v1/artifacts/nope/signed-urls"} {
		resp, data := send(t, f.srv, f.admin, "GET", bad, nil)
		wantError(t, "admin lists "+bad, resp.StatusCode, data, 404)
	}

	// A revoked URL drops out, and so do bob's once his grant is gone.
	if resp, data := send(t, f.srv, f.alice, "DELETE", "/v1/tokens/"+a1.TokenID, nil); resp.StatusCode != 204 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, data)
	}
	if _, items := list(f.alice); !slices.Equal(ids(items), []string{b1.TokenID, a2.TokenID}) {
		t.Errorf("after revoking %s the owner sees %v", a1.TokenID, ids(items))
	}
	// The owner, who sees bob's URL, may revoke it too; carol may not.
	b2 := issue(f.bob, `{}`)
	if resp, data := send(t, f.srv, f.carol, "DELETE", "/v1/tokens/"+b2.TokenID, nil); resp.StatusCode != 403 {
		t.Errorf("carol revokes bob's URL: %d %s, want 403", resp.StatusCode, data)
	}
	if resp, data := send(t, f.srv, f.alice, "DELETE", "/v1/tokens/"+b2.TokenID, nil); resp.StatusCode != 204 {
		t.Fatalf("the owner revokes bob's URL: %d %s", resp.StatusCode, data)
	}
	if _, items := list(f.alice); slices.Contains(ids(items), b2.TokenID) {
		t.Errorf("bob's revoked URL is still listed: %v", ids(items))
	}
	if resp, data := send(t, f.srv, f.alice, "POST", path+"/unshare", strings.NewReader(`{"agents":["bob"]}`)); resp.StatusCode != 200 {
		t.Fatalf("unshare: %d %s", resp.StatusCode, data)
	}
	if _, items := list(f.alice); !slices.Equal(ids(items), []string{a2.TokenID}) {
		t.Errorf("after unsharing with bob the owner sees %v, want only %s", ids(items), a2.TokenID)
	}
	if status, _ := list(f.bob); status != http.StatusNotFound {
		t.Errorf("bob, no longer a grantee, lists: %d, want 404", status)
	}
}
