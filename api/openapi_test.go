package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node"
)

// documentedRoutes is the route table of server.go, copied: every pattern
// the server registers, and whether it needs an API key. A route added to
// server.go belongs here and in openapi.json.
var documentedRoutes = []struct {
	method, path string
	auth         bool
}{
	{"POST", "/v1/artifacts", true},
	{"GET", "/v1/artifacts", true},
	{"POST", "/v1/snippets", true},
	{"GET", "/v1/artifacts/{id}", true},
	{"GET", "/v1/artifacts/{id}/content", true},
	{"PUT", "/v1/artifacts/{id}/content", true},
	{"PATCH", "/v1/artifacts/{id}", true},
	{"GET", "/v1/artifacts/{id}/versions", true},
	{"DELETE", "/v1/artifacts/{id}", true},
	{"DELETE", "/v1/artifacts/{id}/versions/{n}", true},
	{"GET", "/v1/shared", true},
	{"GET", "/v1/events", true},
	{"POST", "/v1/artifacts/{id}/share", true},
	{"POST", "/v1/artifacts/{id}/unshare", true},
	{"GET", "/v1/artifacts/{id}/access", true},
	{"PUT", "/v1/artifacts/{id}/replication", true},
	{"GET", "/v1/artifacts/{id}/placement", true},
	{"POST", "/v1/agents", true},
	{"GET", "/v1/agents", true},
	{"DELETE", "/v1/agents/{id}", true},
	{"POST", "/v1/agents/{id}/keys", true},
	{"GET", "/v1/agents/{id}/quota", true},
	{"PUT", "/v1/agents/{id}/quota", true},
	{"GET", "/v1/groups", true},
	{"PUT", "/v1/groups/{name}", true},
	{"DELETE", "/v1/groups/{name}", true},
	{"POST", "/v1/artifacts/{id}/signed-url", true},
	{"GET", "/v1/artifacts/{id}/signed-urls", true},
	{"DELETE", "/v1/tokens/{token_id}", true},
	{"POST", "/v1/uploads", true},
	{"GET", "/v1/uploads", true},
	{"GET", "/v1/uploads/{id}", true},
	{"DELETE", "/v1/uploads/{id}", true},
	{"POST", "/v1/uploads/{id}/confirm", true},
	{"GET", "/v1/node", true},
	{"GET", "/v1/mesh/members", true},
	{"POST", "/v1/mesh/invites", true},
	{"DELETE", "/v1/mesh/members/{peer_id}", true},
	{"POST", "/v1/mesh/stream-bench", true},
	{"GET", "/v1/mesh/policy", true},
	{"PUT", "/v1/mesh/policy", true},
	{"GET", "/v1/mesh/quota", true},
	{"PUT", "/v1/mesh/quota", true},
	{"PUT", "/v1/pins/{id}", true},
	{"GET", "/v1/pins", true},
	{"DELETE", "/v1/pins/{id}", true},
	{"POST", "/v1/repo/gc", true},
	{"GET", "/v1/repo/stat", true},
	{"POST", "/v1/repo/verify", true},
	{"GET", "/v1/cap/{token}", false},
	{"PUT", "/v1/uploads/{id}/content", false},
	{"HEAD", "/v1/uploads/{id}/content", false},
	{"GET", "/v1/openapi.json", false},
	{"GET", "/healthz", false},
	{"GET", "/readyz", false},
	{"GET", "/metrics", false},
	{"GET", "/ui/", false},
	{"GET", "/ui", false},
	{"GET", "/", false}, // registered as "GET /{$}": the root only
}

// openAPIOperation is the part of an operation the tests read.
type openAPIOperation struct {
	OperationID string                     `json:"operationId"`
	Security    *[]map[string][]string     `json:"security"`
	Responses   map[string]json.RawMessage `json:"responses"`
	Decisions   []string                   `json:"x-artmesh-decisions"`
}

func loadOpenAPI(t *testing.T, data []byte) (doc map[string]any, paths map[string]map[string]json.RawMessage) {
	t.Helper()
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	return doc, d.Paths
}

var httpMethods = []string{"get", "put", "post", "delete", "head", "patch", "options", "trace"}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc, paths := loadOpenAPI(t, openAPIDoc)
	if v := doc["openapi"]; v != "3.1.0" {
		t.Errorf("openapi %v, want 3.1.0", v)
	}
	if info, _ := doc["info"].(map[string]any); info["version"] == nil {
		t.Error("openapi.json has no info.version (the server fills in node.Version)")
	}

	routes := map[string]bool{} // "METHOD path" -> needs a key
	for _, rt := range documentedRoutes {
		routes[rt.method+" "+rt.path] = rt.auth
	}
	ids := map[string]string{}
	for path, item := range paths {
		for m, raw := range item {
			if !slices.Contains(httpMethods, m) {
				continue
			}
			key := strings.ToUpper(m) + " " + path
			auth, registered := routes[key]
			if !registered && m == "head" {
				// Go's router answers HEAD on GET patterns.
				auth, registered = routes["GET "+path]
			}
			if !registered {
				t.Errorf("openapi.json describes %s, which the route table does not have", key)
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Errorf("%s: %v", key, err)
				continue
			}
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", key)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("operationId %s of %s is also %s's", op.OperationID, key, other)
			}
			ids[op.OperationID] = key
			if open := op.Security != nil && len(*op.Security) == 0; open == auth {
				t.Errorf("%s: security %v, but the route needs a key: %v", key, op.Security, auth)
			}
			if len(op.Responses) == 0 {
				t.Errorf("%s has no responses", key)
			}
			if auth {
				if _, ok := op.Responses["401"]; !ok {
					t.Errorf("%s needs a key but documents no 401", key)
				}
			}
			for code := range op.Responses {
				if len(code) != 3 || code[0] < '1' || code[0] > '5' {
					t.Errorf("%s: response %q is not a status code", key, code)
				}
			}
			if len(op.Decisions) == 0 {
				t.Errorf("%s has no x-artmesh-decisions", key)
			}
		}
	}
	for _, rt := range documentedRoutes {
		if _, ok := paths[rt.path][strings.ToLower(rt.method)]; !ok {
			t.Errorf("openapi.json does not describe %s %s", rt.method, rt.path)
		}
	}
}

func TestOpenAPIErrorCodes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				ErrorCode struct {
					Enum []string `json:"enum"`
				} `json:"ErrorCode"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	var want []string
	// Every kind has a code; past the last, String says "internal".
	for k := artmesh.Other; k == artmesh.Other || k.String() != artmesh.Other.String(); k++ {
		want = append(want, k.String())
	}
	got := doc.Components.Schemas.ErrorCode.Enum
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("ErrorCode enum %v, want the codes of every kind %v", got, want)
	}
}

// TestOpenAPIErrorStatuses checks the table of error codes that
// docs/API.md shows (the ErrorCode schema's x-artmesh-errors): every code
// once, each with the status writeError answers it with.
func TestOpenAPIErrorStatuses(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				ErrorCode struct {
					Errors []struct {
						Code   string `json:"code"`
						Status int    `json:"status"`
					} `json:"x-artmesh-errors"`
				} `json:"ErrorCode"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for k := artmesh.Other; k == artmesh.Other || k.String() != artmesh.Other.String(); k++ {
		want[k.String()] = statusOf(k)
	}
	got := map[string]int{}
	for _, e := range doc.Components.Schemas.ErrorCode.Errors {
		if _, dup := got[e.Code]; dup {
			t.Errorf("x-artmesh-errors lists %q twice", e.Code)
		}
		got[e.Code] = e.Status
	}
	for code, status := range want {
		if got[code] != status {
			t.Errorf("x-artmesh-errors gives %q status %d; the server answers %d", code, got[code], status)
		}
	}
	for code := range got {
		if _, ok := want[code]; !ok {
			t.Errorf("x-artmesh-errors lists %q, which is no kind's code", code)
		}
	}
}

// TestOpenAPIRefsResolve checks that every $ref points into the document.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc, _ := loadOpenAPI(t, openAPIDoc)
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "$ref" {
					ref, _ := x.(string)
					if resolveRef(doc, ref) == nil {
						t.Errorf("%s: $ref %q does not resolve", at, ref)
					}
					continue
				}
				walk(x, at+"/"+k)
			}
		case []any:
			for _, x := range v {
				walk(x, at)
			}
		}
	}
	walk(doc, "#")
}

func resolveRef(doc map[string]any, ref string) any {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = doc
	for _, part := range strings.Split(rest, "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// TestOpenAPIRouteTableMatchesServer checks the test's copy of the route
// table against the server's router: each pattern is registered as such.
func TestOpenAPIRouteTableMatchesServer(t *testing.T) {
	srv, _ := newTestServer(t)
	s := srv.Config.Handler.(*Server)
	param := regexp.MustCompile(`\{[^}]+\}`)
	for _, rt := range documentedRoutes {
		path := param.ReplaceAllString(rt.path, "x")
		req := httptest.NewRequest(rt.method, path, nil)
		want := rt.method + " " + rt.path
		if rt.path == "/" {
			want += "{$}"
		}
		if _, pattern := s.mux.Handler(req); pattern != want {
			t.Errorf("%s %s: the server's router matches pattern %q", rt.method, path, pattern)
		}
	}
}

func TestOpenAPIServedWithoutKey(t *testing.T) {
	srv, _ := newTestServer(t)
	resp, data := send(t, srv, "", "GET", "/v1/openapi.json", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/openapi.json without a key: %d %s", resp.StatusCode, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	doc, paths := loadOpenAPI(t, data)
	if info, _ := doc["info"].(map[string]any); info["version"] != node.Version {
		t.Errorf("served info.version %v, want %q", info["version"], node.Version)
	}
	_, want := loadOpenAPI(t, openAPIDoc)
	if len(paths) != len(want) {
		t.Errorf("served %d paths, the file has %d", len(paths), len(want))
	}
	// The same document, but for the version.
	var served, file map[string]any
	json.Unmarshal(data, &served)
	json.Unmarshal(openAPIDoc, &file)
	served["info"].(map[string]any)["version"] = nil
	file["info"].(map[string]any)["version"] = nil
	a, _ := json.Marshal(served)
	b, _ := json.Marshal(file)
	if string(a) != string(b) {
		t.Error("the served document differs from openapi.json beyond info.version")
	}
}

func TestReplaceMemberKeepsOrder(t *testing.T) {
	in := []byte(`{"b": 1, "info": {"title": "x", "version": "0", "z": [1]}, "a": "<&>"}`)
	out, err := replaceMember(in, "info", func(info json.RawMessage) (json.RawMessage, error) {
		return replaceMember(info, "version", func(json.RawMessage) (json.RawMessage, error) { return json.RawMessage(`"9.9"`), nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"b":1,"info":{"title":"x","version":"9.9","z":[1]},"a":"<&>"}`; string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
	if _, err := replaceMember([]byte(`{"a":1}`), "info", nil); err == nil {
		t.Error("a missing member is not an error")
	}
}
