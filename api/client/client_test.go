package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
)

const testKey = "k-secret"

// seen is one request as the test server received it.
type seen struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
	contentLength          int64
	chunked                bool
}

// recorder starts a server that records each request and answers with
// status and body.
func recorder(t *testing.T, status int, body string) (*Client, *[]seen) {
	t.Helper()
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading request body: %v", err)
		}
		got = append(got, seen{
			method: r.Method, path: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery, header: r.Header.Clone(),
			body: data, contentLength: r.ContentLength,
			chunked: len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked",
		})
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return New(srv.URL, testKey, WithRetries(0)), &got
}

// TestRoutes checks that each call sends the method, path, query and JSON
// body that API.md gives it, with the API key.
func TestRoutes(t *testing.T) {
	ctx := context.Background()
	id := artmesh.ArtifactID("art_01JD0000000000000000000000")
	tests := []struct {
		name   string
		status int
		call   func(c *Client) error
		method string
		path   string
		query  string
		body   string // the JSON body, compared as JSON; "" for none
	}{
		{"Artifact", 200, func(c *Client) error { _, err := c.Artifact(ctx, id); return err },
			"GET", "/v1/artifacts/" + string(id), "", ""},
		{"Versions", 200, func(c *Client) error { _, err := c.Versions(ctx, id); return err },
			"GET", "/v1/artifacts/" + string(id) + "/versions", "", ""},
		{"DeleteArtifact", 204, func(c *Client) error { return c.DeleteArtifact(ctx, id) },
			"DELETE", "/v1/artifacts/" + string(id), "", ""},
		{"DeleteVersion", 204, func(c *Client) error { return c.DeleteVersion(ctx, id, 3) },
			"DELETE", "/v1/artifacts/" + string(id) + "/versions/3", "", ""},
		{"ListArtifacts", 200, func(c *Client) error {
			_, err := c.ListArtifacts(ctx, artmesh.Filter{ContentType: "text/csv", Name: "a b",
				Meta: []artmesh.MetaMatch{{Key: "year", Value: "2025"}, {Key: "year", Value: "2026"}, {Key: "q", Value: "Q4"}}, Limit: 10, Offset: 20})
			return err
		}, "GET", "/v1/artifacts", "content_type=text%2Fcsv&limit=10&metadata.q=Q4&metadata.year=2025&metadata.year=2026&name=a+b&offset=20", ""},
		{"ListShared", 200, func(c *Client) error { _, err := c.ListShared(ctx, artmesh.Filter{}); return err },
			"GET", "/v1/shared", "", ""},
		{"CreateSnippet", 201, func(c *Client) error {
			_, err := c.CreateSnippet(ctx, "s", json.RawMessage(`{"a":[1,2]}`), artmesh.Metadata{"k": json.RawMessage(`true`)})
			return err
		}, "POST", "/v1/snippets", "", `{"name":"s","content":{"a":[1,2]},"metadata":{"k":true}}`},
		{"Share", 200, func(c *Client) error { _, err := c.Share(ctx, id, []artmesh.AgentID{"bob"}, nil); return err },
			"POST", "/v1/artifacts/" + string(id) + "/share", "", `{"agents":["bob"],"groups":[]}`},
		{"Unshare", 200, func(c *Client) error { _, err := c.Unshare(ctx, id, nil, []string{"team"}); return err },
			"POST", "/v1/artifacts/" + string(id) + "/unshare", "", `{"agents":[],"groups":["team"]}`},
		{"Access", 200, func(c *Client) error { _, err := c.Access(ctx, id); return err },
			"GET", "/v1/artifacts/" + string(id) + "/access", "", ""},
		{"CreateSignedURL", 201, func(c *Client) error {
			_, err := c.CreateSignedURL(ctx, id, SignedURLOptions{ExpiresIn: 2 * time.Hour, Version: 2})
			return err
		}, "POST", "/v1/artifacts/" + string(id) + "/signed-url", "", `{"expires_in":7200,"version":2}`},
		{"CreateSignedURL defaults", 201, func(c *Client) error { _, err := c.CreateSignedURL(ctx, id, SignedURLOptions{}); return err },
			"POST", "/v1/artifacts/" + string(id) + "/signed-url", "", `{}`},
		{"SignedURLs", 200, func(c *Client) error { _, err := c.SignedURLs(ctx, id); return err },
			"GET", "/v1/artifacts/" + string(id) + "/signed-urls", "", ""},
		{"UpdateMetadata", 201, func(c *Client) error {
			_, err := c.UpdateMetadata(ctx, id, artmesh.Metadata{"stage": json.RawMessage(`"eval"`), "epoch": json.RawMessage(`3`), "draft": json.RawMessage(`null`)})
			return err
		}, "PATCH", "/v1/artifacts/" + string(id), "", `{"metadata":{"stage":"eval","epoch":3,"draft":null}}`},
		{"RevokeToken", 204, func(c *Client) error { return c.RevokeToken(ctx, "tok_1") },
			"DELETE", "/v1/tokens/tok_1", "", ""},
		{"CreateUpload", 201, func(c *Client) error {
			_, err := c.CreateUpload(ctx, UploadRequest{Name: "big", ContentType: "x/y", SizeBytes: 5, ArtifactID: id})
			return err
		}, "POST", "/v1/uploads", "", `{"name":"big","content_type":"x/y","size_bytes":5,"artifact_id":"` + string(id) + `"}`},
		{"ConfirmUpload", 201, func(c *Client) error { _, err := c.ConfirmUpload(ctx, "upl_1", "abcd"); return err },
			"POST", "/v1/uploads/upl_1/confirm", "", `{"sha256":"abcd"}`},
		{"GetUpload", 200, func(c *Client) error { _, err := c.GetUpload(ctx, "upl_1"); return err },
			"GET", "/v1/uploads/upl_1", "", ""},
		{"AbortUpload", 204, func(c *Client) error { return c.AbortUpload(ctx, "upl_1") },
			"DELETE", "/v1/uploads/upl_1", "", ""},
		{"CreateAgent", 201, func(c *Client) error { _, err := c.CreateAgent(ctx, "bob", nil, true); return err },
			"POST", "/v1/agents", "", `{"id":"bob","groups":[],"admin":true}`},
		{"Agents", 200, func(c *Client) error { _, err := c.Agents(ctx); return err }, "GET", "/v1/agents", "", ""},
		{"DeleteAgent", 204, func(c *Client) error { return c.DeleteAgent(ctx, "bob") }, "DELETE", "/v1/agents/bob", "", ""},
		{"RotateKey", 201, func(c *Client) error { _, err := c.RotateKey(ctx, "bob"); return err }, "POST", "/v1/agents/bob/keys", "", ""},
		{"Groups", 200, func(c *Client) error { _, err := c.Groups(ctx); return err }, "GET", "/v1/groups", "", ""},
		{"PutGroup", 200, func(c *Client) error { _, err := c.PutGroup(ctx, "team", []artmesh.AgentID{"a", "b"}); return err },
			"PUT", "/v1/groups/team", "", `{"members":["a","b"]}`},
		{"DeleteGroup", 204, func(c *Client) error { return c.DeleteGroup(ctx, "team") }, "DELETE", "/v1/groups/team", "", ""},
		{"Pin", 202, func(c *Client) error { _, err := c.Pin(ctx, id, 2); return err }, "PUT", "/v1/pins/" + string(id), "version=2", ""},
		{"Pins", 200, func(c *Client) error { _, err := c.Pins(ctx); return err }, "GET", "/v1/pins", "", ""},
		{"Unpin", 204, func(c *Client) error { return c.Unpin(ctx, id, 0) }, "DELETE", "/v1/pins/" + string(id), "", ""},
		{"Node", 200, func(c *Client) error { _, err := c.Node(ctx); return err }, "GET", "/v1/node", "", ""},
		{"Members", 200, func(c *Client) error { _, err := c.Members(ctx); return err }, "GET", "/v1/mesh/members", "", ""},
		{"CreateInvite", 201, func(c *Client) error { _, err := c.CreateInvite(ctx, time.Minute); return err },
			"POST", "/v1/mesh/invites", "", `{"expires_in":60}`},
		{"CreateInvite default", 201, func(c *Client) error { _, err := c.CreateInvite(ctx, 0); return err },
			"POST", "/v1/mesh/invites", "", `{}`},
		{"CreateSnippet replicas", 201, func(c *Client) error {
			_, err := c.CreateSnippet(ctx, "s", 1, nil, Replicas(2))
			return err
		}, "POST", "/v1/snippets", "replicas=2", `{"name":"s","content":1}`},
		{"CreateSnippet replicas 0", 201, func(c *Client) error { _, err := c.CreateSnippet(ctx, "s", 1, nil, Replicas(0)); return err },
			"POST", "/v1/snippets", "", `{"name":"s","content":1}`},
		{"ConfirmUpload replicas", 201, func(c *Client) error { _, err := c.ConfirmUpload(ctx, "upl_1", "", Replicas(3)); return err },
			"POST", "/v1/uploads/upl_1/confirm", "replicas=3", `{}`},
		{"MeshPolicy", 200, func(c *Client) error { _, err := c.MeshPolicy(ctx); return err }, "GET", "/v1/mesh/policy", "", ""},
		{"SetMeshPolicy both", 200, func(c *Client) error { _, err := c.SetMeshPolicy(ctx, ptr(3), ptr(2)); return err },
			"PUT", "/v1/mesh/policy", "", `{"replication_factor":3,"write_replicas":2}`},
		{"SetMeshPolicy one", 200, func(c *Client) error { _, err := c.SetMeshPolicy(ctx, nil, ptr(1)); return err },
			"PUT", "/v1/mesh/policy", "", `{"write_replicas":1}`},
		{"SetMeshPolicy none", 200, func(c *Client) error { _, err := c.SetMeshPolicy(ctx, nil, nil); return err },
			"PUT", "/v1/mesh/policy", "", `{}`},
		{"SetReplication", 200, func(c *Client) error { return c.SetReplication(ctx, id, 3) },
			"PUT", "/v1/artifacts/" + string(id) + "/replication", "", `{"factor":3}`},
		{"SetReplication to the policy", 200, func(c *Client) error { return c.SetReplication(ctx, id, 0) },
			"PUT", "/v1/artifacts/" + string(id) + "/replication", "", `{"factor":0}`},
		{"Placement", 200, func(c *Client) error { _, err := c.Placement(ctx, id); return err },
			"GET", "/v1/artifacts/" + string(id) + "/placement", "", ""},
		{"Quota", 200, func(c *Client) error { _, err := c.Quota(ctx, "bob"); return err }, "GET", "/v1/agents/bob/quota", "", ""},
		{"SetQuota", 200, func(c *Client) error {
			_, err := c.SetQuota(ctx, "bob", QuotaRequest{Bytes: ptr64(10 << 30), Streams: ptr64(-1)})
			return err
		}, "PUT", "/v1/agents/bob/quota", "", `{"bytes":10737418240,"streams":-1}`},
		{"MeshQuota", 200, func(c *Client) error { _, err := c.MeshQuota(ctx); return err }, "GET", "/v1/mesh/quota", "", ""},
		{"SetMeshQuota", 200, func(c *Client) error { _, err := c.SetMeshQuota(ctx, QuotaRequest{Uploads: ptr64(0)}); return err },
			"PUT", "/v1/mesh/quota", "", `{"uploads":0}`},
		{"RepoGC", 200, func(c *Client) error { _, err := c.RepoGC(ctx); return err }, "POST", "/v1/repo/gc", "", ""},
		{"RepoStat", 200, func(c *Client) error { _, err := c.RepoStat(ctx); return err }, "GET", "/v1/repo/stat", "", ""},
		{"escaped id", 200, func(c *Client) error { _, err := c.Artifact(ctx, "a/b c"); return err },
			"GET", "/v1/artifacts/a%2Fb%20c", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := "{}"
			if tt.status == 204 {
				body = ""
			}
			c, got := recorder(t, tt.status, body)
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			if len(*got) != 1 {
				t.Fatalf("%d requests, want 1", len(*got))
			}
			r := (*got)[0]
			if r.method != tt.method || r.path != tt.path || r.rawQuery != tt.query {
				t.Errorf("sent %s %s?%s, want %s %s?%s", r.method, r.path, r.rawQuery, tt.method, tt.path, tt.query)
			}
			if a := r.header.Get("Authorization"); a != "Bearer "+testKey {
				t.Errorf("Authorization %q", a)
			}
			if tt.body == "" {
				if len(r.body) != 0 {
					t.Errorf("sent body %s, want none", r.body)
				}
				return
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var gotJSON, wantJSON any
			if err := json.Unmarshal(r.body, &gotJSON); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			json.Unmarshal([]byte(tt.body), &wantJSON)
			g, _ := json.Marshal(gotJSON)
			w, _ := json.Marshal(wantJSON)
			if !bytes.Equal(g, w) {
				t.Errorf("body %s, want %s", g, w)
			}
		})
	}
}

func TestCreateArtifact(t *testing.T) {
	ctx := context.Background()
	meta := artmesh.Metadata{"year": json.RawMessage(`2025`), "who": json.RawMessage(`"Zoë <🙂>"`)}
	tests := []struct {
		name        string
		size        int64
		wantLength  int64
		wantChunked bool
	}{
		{"known size", 11, 11, false},
		{"unknown size", -1, -1, true},
		{"zero means unknown", 0, -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, got := recorder(t, 201, `{"id":"art_1","name":"r.txt","size_bytes":11,"version":1,"metadata":{"year":2025}}`)
			a, err := c.CreateArtifact(ctx, strings.NewReader("hello world"), CreateOptions{Name: "r.txt", ContentType: "text/plain", Metadata: meta, Size: tt.size})
			if err != nil {
				t.Fatal(err)
			}
			if a.ID != "art_1" || a.SizeBytes != 11 || string(a.Metadata["year"]) != "2025" {
				t.Errorf("artifact %+v", a)
			}
			r := (*got)[0]
			if r.method != "POST" || r.path != "/v1/artifacts" || r.rawQuery != "name=r.txt" {
				t.Errorf("sent %s %s?%s", r.method, r.path, r.rawQuery)
			}
			if string(r.body) != "hello world" || r.header.Get("Content-Type") != "text/plain" {
				t.Errorf("body %q, type %q", r.body, r.header.Get("Content-Type"))
			}
			if r.contentLength != tt.wantLength || r.chunked != tt.wantChunked {
				t.Errorf("Content-Length %d chunked %v, want %d %v", r.contentLength, r.chunked, tt.wantLength, tt.wantChunked)
			}
			h := r.header.Get(MetadataHeader)
			m, err := artmesh.ParseMetadata([]byte(h))
			if err != nil || string(m["who"]) != `"Zoë <🙂>"` || string(m["year"]) != "2025" {
				t.Errorf("%s header %q parses to %v, %v", MetadataHeader, h, m, err)
			}
		})
	}
}

func ptr(n int) *int { return &n }

func ptr64(n int64) *int64 { return &n }

func TestWriteReplicasQuery(t *testing.T) {
	ctx := context.Background()
	c, got := recorder(t, 201, `{"id":"art_1"}`)
	if _, err := c.CreateArtifact(ctx, strings.NewReader("x"), CreateOptions{Name: "a b", Size: 1, Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateArtifact(ctx, "art_1", strings.NewReader("x"), UpdateOptions{Size: 1, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateArtifact(ctx, "art_1", strings.NewReader("x"), UpdateOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"name=a+b&replicas=2", "replicas=3", ""} {
		if q := (*got)[i].rawQuery; q != want {
			t.Errorf("request %d: query %q, want %q", i, q, want)
		}
	}
}

func TestMeshAnswers(t *testing.T) {
	ctx := context.Background()
	c, _ := recorder(t, 200, `{"replication_factor":3,"write_replicas":2}`)
	if p, err := c.MeshPolicy(ctx); err != nil || p != (Policy{ReplicationFactor: 3, WriteReplicas: 2}) {
		t.Errorf("MeshPolicy: %+v, %v", p, err)
	}
	c, _ = recorder(t, 200, `{"items":[{"version":1,"cid":"bafy1","factor":2,"holders":["12D3a","12D3b"],"allocated":["12D3a","12D3b"],"state":"ok"},
		{"version":3,"cid":"bafy3","factor":2,"holders":["12D3a"],"allocated":["12D3a","12D3c"],"state":"repairing"}]}`)
	ps, err := c.Placement(ctx, "art_1")
	if err != nil || len(ps) != 2 || ps[0].Version != 1 || ps[0].State != PlacementOK || len(ps[0].Holders) != 2 ||
		ps[1].State != PlacementRepairing || ps[1].Allocated[1] != "12D3c" {
		t.Errorf("Placement: %+v, %v", ps, err)
	}
	c, _ = recorder(t, 200, `{"items":[{"peer_id":"12D3a","addresses":[],"role":"voter","reachable":true,"leader":true,"bytes_held":1048576,"under_replicated":2}]}`)
	ms, err := c.Members(ctx)
	if err != nil || len(ms) != 1 || ms[0].BytesHeld != 1<<20 || ms[0].UnderReplicated != 2 {
		t.Errorf("Members: %+v, %v", ms, err)
	}
	c, _ = recorder(t, 400, `{"error":{"code":"invalid_argument","message":"replication_factor 3 is more than the 1 members of the mesh"}}`)
	if _, err := c.SetMeshPolicy(ctx, ptr(3), nil); !errors.Is(err, artmesh.Invalid) || artmesh.Message(err) != "replication_factor 3 is more than the 1 members of the mesh" {
		t.Errorf("SetMeshPolicy refused: %v", err)
	}
	c, _ = recorder(t, 503, `{"error":{"code":"unavailable","message":"replicas=3 needs 2 more reachable members to take copies; 0 are reachable"}}`)
	if _, err := c.CreateSnippet(ctx, "s", 1, nil, Replicas(3)); !errors.Is(err, artmesh.Unavailable) {
		t.Errorf("CreateSnippet refused: %v", err)
	}
}

func TestUpdateArtifact(t *testing.T) {
	c, got := recorder(t, 201, `{"id":"art_1","version":2}`)
	a, err := c.UpdateArtifact(context.Background(), "art_1", strings.NewReader("v2"), UpdateOptions{Size: 2})
	if err != nil || a.Version != 2 {
		t.Fatal(a, err)
	}
	r := (*got)[0]
	if r.method != "PUT" || r.path != "/v1/artifacts/art_1/content" || string(r.body) != "v2" || r.contentLength != 2 {
		t.Errorf("sent %s %s %q length %d", r.method, r.path, r.body, r.contentLength)
	}
	if r.header.Get(MetadataHeader) != "" || r.header.Get("Content-Type") != "" {
		t.Errorf("sent headers it was not given: %v", r.header)
	}
}

// TestUpdateMetadata checks what UpdateMetadata sends and returns: the
// patch as JSON merge patch (null kept, to remove a key), If-Match and an
// Idempotency-Key, and no request at all for an empty patch.
func TestUpdateMetadata(t *testing.T) {
	ctx := context.Background()
	c, got := recorder(t, 201, `{"id":"art_1","version":3,"cid":"bafyx","metadata":{"stage":"eval"}}`)
	a, err := c.UpdateMetadata(WithIfMatch(ctx, `"bafyx"`), "art_1", artmesh.Metadata{"stage": json.RawMessage(`"eval"`), "draft": json.RawMessage("null")})
	if err != nil || a.Version != 3 || a.CID != "bafyx" || string(a.Metadata["stage"]) != `"eval"` {
		t.Fatalf("UpdateMetadata: %+v, %v", a, err)
	}
	r := (*got)[0]
	if r.method != "PATCH" || r.path != "/v1/artifacts/art_1" || string(r.body) != `{"metadata":{"draft":null,"stage":"eval"}}` {
		t.Errorf("sent %s %s %s", r.method, r.path, r.body)
	}
	if r.header.Get("If-Match") != `"bafyx"` || r.header.Get(IdempotencyKeyHeader) == "" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v: want If-Match, an Idempotency-Key and JSON", r.header)
	}
	for _, empty := range []artmesh.Metadata{nil, {}} {
		if _, err := c.UpdateMetadata(ctx, "art_1", empty); !errors.Is(err, artmesh.Invalid) {
			t.Errorf("UpdateMetadata(%v): %v, want Invalid", empty, err)
		}
	}
	if len(*got) != 1 {
		t.Errorf("%d requests, want 1: an empty patch is refused before it is sent", len(*got))
	}
	// The node's refusal comes back with its kind.
	c, _ = recorder(t, 403, `{"error":{"code":"permission_denied","message":"only the owner may update"}}`)
	if _, err := c.UpdateMetadata(ctx, "art_1", artmesh.Metadata{"k": json.RawMessage(`"v"`)}); !errors.Is(err, artmesh.PermissionDenied) {
		t.Errorf("a 403: %v, want PermissionDenied", err)
	}
}

// TestSignedURLs checks that the listing decodes the node's items.
func TestSignedURLs(t *testing.T) {
	c, _ := recorder(t, 200, `{"items":[{"token_id":"tok_a","artifact_id":"art_1","version":2,"agent":"bob","expires_at":"2030-01-02T03:04:05Z"}]}`)
	got, err := c.SignedURLs(context.Background(), "art_1")
	if err != nil {
		t.Fatal(err)
	}
	want := SignedURLInfo{TokenID: "tok_a", ArtifactID: "art_1", Version: 2, Agent: "bob", ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	if len(got) != 1 || got[0] != want {
		t.Errorf("SignedURLs = %+v, want [%+v]", got, want)
	}
}

func TestDownload(t *testing.T) {
	var gotRange, gotQuery, gotINM string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/artifacts/art_1/content" {
			t.Errorf("path %s", r.URL.Path)
		}
		gotRange, gotQuery, gotINM = r.Header.Get("Range"), r.URL.RawQuery, r.Header.Get("If-None-Match")
		h := w.Header()
		h.Set("ETag", `"bafyX"`)
		h.Set("Artifact-Version", "2")
		h.Set("Content-Disposition", `attachment; filename="r.txt"`)
		if gotINM == `"bafyX"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "text/plain")
		if gotRange != "" {
			h.Set("Content-Range", "bytes 6-10/11")
			h.Set("Content-Length", "5")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "world")
			return
		}
		h.Set("Content-Length", "11")
		io.WriteString(w, "hello world")
	}))
	defer srv.Close()
	c := New(srv.URL, testKey)
	ctx := context.Background()

	ct, err := c.Download(ctx, "art_1", DownloadOptions{Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(ct.Body)
	ct.Body.Close()
	if string(data) != "hello world" || ct.Size != 11 || ct.TotalSize != 11 || ct.CID != "bafyX" || ct.Version != 2 ||
		ct.ContentType != "text/plain" || ct.Filename != "r.txt" || ct.Partial || gotQuery != "version=2" || gotRange != "" {
		t.Errorf("whole: %q %+v query %q range %q", data, ct, gotQuery, gotRange)
	}

	ct, err = c.Download(ctx, "art_1", DownloadOptions{Offset: 6, Length: 5})
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(ct.Body)
	ct.Body.Close()
	if string(data) != "world" || gotRange != "bytes=6-10" || !ct.Partial || ct.Offset != 6 || ct.Size != 5 || ct.TotalSize != 11 || gotQuery != "" {
		t.Errorf("range: %q %+v range %q", data, ct, gotRange)
	}

	if _, err = c.Download(ctx, "art_1", DownloadOptions{Offset: 6}); err != nil || gotRange != "bytes=6-" {
		t.Errorf("open range: %v, Range %q", err, gotRange)
	}

	ct, err = c.Download(ctx, "art_1", DownloadOptions{IfNoneMatch: "bafyX"})
	if err != nil || !ct.NotModified || gotINM != `"bafyX"` {
		t.Errorf("not modified: %+v %v, If-None-Match %q", ct, err, gotINM)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		kind       artmesh.Kind
		code       string
		message    string
		retryAfter time.Duration
	}{
		{"api shape", 404, nil, `{"error":{"code":"not_found","message":"no artifact art_1"}}`,
			artmesh.NotFound, "not_found", "no artifact art_1", 0},
		{"unavailable", 503, map[string]string{"Retry-After": "3"}, `{"error":{"code":"unavailable","message":"no quorum"}}`,
			artmesh.Unavailable, "unavailable", "no quorum", 3 * time.Second},
		{"outcome unknown", 503, map[string]string{"Retry-After": "1"}, `{"error":{"code":"outcome_unknown","message":"the leader lost its leadership"}}`,
			artmesh.OutcomeUnknown, "outcome_unknown", "the leader lost its leadership", time.Second},
		{"code wins over status", 400, nil, `{"error":{"code":"too_large","message":"big"}}`,
			artmesh.TooLarge, "too_large", "big", 0},
		{"not the API shape", 502, nil, `<html>bad gateway</html>`,
			artmesh.Other, "", "HTTP 502 Bad Gateway: <html>bad gateway</html>", 0},
		{"no body", 413, nil, ``, artmesh.TooLarge, "", "HTTP 413 Request Entity Too Large", 0},
		{"full disk", 507, nil, `{"error":{"code":"insufficient_storage","message":"the node's disk is full"}}`,
			artmesh.InsufficientStorage, "insufficient_storage", "the node's disk is full", 0},
		{"full disk, no body", 507, nil, ``, artmesh.InsufficientStorage, "", "HTTP 507 Insufficient Storage", 0},
		{"over quota", 507, nil, `{"error":{"code":"quota_exceeded","message":"over its byte quota"}}`,
			artmesh.QuotaExceeded, "quota_exceeded", "over its byte quota", 0},
		{"too many", 429, nil, `{"error":{"code":"too_many","message":"3 streams"}}`, artmesh.TooMany, "too_many", "3 streams", 0},
		{"too many, no body", 429, nil, ``, artmesh.TooMany, "", "HTTP 429 Too Many Requests", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			_, err := New(srv.URL, testKey, WithRetries(0)).Artifact(context.Background(), "art_1")
			if !errors.Is(err, tt.kind) || artmesh.KindOf(err) != tt.kind {
				t.Errorf("%v: Is(%v) false or KindOf %v", err, tt.kind, artmesh.KindOf(err))
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%v is not a *client.Error", err)
			}
			if ce.Status != tt.status || ce.Code != tt.code || ce.Message != tt.message || ce.RetryAfter != tt.retryAfter {
				t.Errorf("got %+v", ce)
			}
			if artmesh.Message(err) != tt.message {
				t.Errorf("artmesh.Message = %q", artmesh.Message(err))
			}
			if !strings.HasPrefix(err.Error(), "client.Artifact: ") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := New(url, testKey, WithRetries(0)).Node(context.Background())
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, artmesh.Unavailable) {
		t.Fatalf("%v: want ErrUnreachable and Unavailable", err)
	}
	if !strings.Contains(err.Error(), url) {
		t.Errorf("%q does not name %s", err, url)
	}
}

func TestUploadContent(t *testing.T) {
	c, got := recorder(t, 204, "")
	uploadURL := strings.TrimSuffix(c.BaseURL(), "/") + "/v1/uploads/upl_1/content?token=T"
	if err := c.PutUpload(context.Background(), uploadURL, strings.NewReader("world"), 6, 11); err != nil {
		t.Fatal(err)
	}
	if err := c.PutUpload(context.Background(), "/v1/uploads/upl_1/content?token=T", strings.NewReader("hello world"), 0, 11); err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct{ body, contentRange string }{{"world", "bytes 6-10/11"}, {"hello world", ""}} {
		r := (*got)[i]
		if r.method != "PUT" || r.path != "/v1/uploads/upl_1/content" || r.rawQuery != "token=T" {
			t.Errorf("sent %s %s?%s", r.method, r.path, r.rawQuery)
		}
		if string(r.body) != want.body || r.contentLength != int64(len(want.body)) || r.header.Get("Content-Range") != want.contentRange {
			t.Errorf("body %q length %d Content-Range %q", r.body, r.contentLength, r.header.Get("Content-Range"))
		}
		if r.header.Get("Authorization") != "" {
			t.Errorf("sent the API key with a token URL")
		}
	}
}

func TestUploadOffset(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead || r.Header.Get("Authorization") != "" {
			t.Errorf("%s with Authorization %q", r.Method, r.Header.Get("Authorization"))
		}
		w.Header().Set("Upload-Offset", "42")
	}))
	defer srv.Close()
	n, err := New(srv.URL, testKey).UploadOffset(context.Background(), srv.URL+"/v1/uploads/upl_1/content?token=T")
	if err != nil || n != 42 {
		t.Fatal(n, err)
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", DefaultBaseURL},
		{"127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"http://h:1/prefix/", "http://h:1/prefix"},
		{"ftp://h", ""},
	}
	for _, tt := range tests {
		if got := New(tt.in, "").BaseURL(); got != tt.want {
			t.Errorf("New(%q).BaseURL() = %q, want %q", tt.in, got, tt.want)
		}
	}
	_, err := New("ftp://h", "k").Node(context.Background())
	if !errors.Is(err, artmesh.Invalid) {
		t.Errorf("malformed base URL: %v", err)
	}
}

func TestHealthSendsNoKey(t *testing.T) {
	c, got := recorder(t, 200, `{"status":"ok"}`)
	if err := c.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if (*got)[0].path != "/healthz" || (*got)[1].path != "/readyz" || (*got)[0].header.Get("Authorization") != "" {
		t.Errorf("got %+v", *got)
	}
}
