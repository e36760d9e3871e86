package apidoc

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestReferenceIsCurrent fails when docs/API.md is not what
// api/openapi.json renders to, such as after a route was added.
func TestReferenceIsCurrent(t *testing.T) {
	src, err := os.ReadFile("../openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := Render(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/API.md")
	if err != nil {
		t.Fatalf("%v: run `go run ./api/cmd/apidoc` from the repo's root to write it", err)
	}
	if !bytes.Equal(bytes.TrimRight(got, "\n"), want) {
		t.Fatal("docs/API.md is stale: api/openapi.json changed since it was generated. " +
			"Run `go run ./api/cmd/apidoc` from the repo's root and commit docs/API.md.")
	}
}

func TestRenderListsRoutesAndSchemas(t *testing.T) {
	src := []byte(`{"openapi":"3.1.0","info":{"title":"t","version":"1"},
	"tags":[{"name":"a","description":"Tag a."}],
	"paths":{"/v1/x/{id}":{"get":{"operationId":"getX","summary":"Get an x","tags":["a"],
		"parameters":[{"$ref":"#/components/parameters/ID"}],
		"responses":{"200":{"description":"The x","content":{"application/json":{}}},"404":{"$ref":"#/components/responses/NotFound"}}},
	  "delete":{"operationId":"delX","summary":"Drop | it","security":[],"responses":{"204":{"description":"Gone"}}}}},
	"components":{"parameters":{"ID":{"name":"id","in":"path","required":true,"description":"The id."}},
	  "responses":{"NotFound":{"description":"No x"}},
	  "schemas":{"X":{"type":"object","required":["id"],"properties":{"id":{"type":"string"},"tags":{"type":"array","items":{"$ref":"#/components/schemas/Tag"}}}}}}}`)
	page, err := Render(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| GET | `/v1/x/{id}` | Get an x |",
		"| DELETE | `/v1/x/{id}` | Drop \\| it |",
		"### GET `/v1/x/{id}`\n\n**Get an x** (`getX`)\n",
		"**Drop | it** (`delX`). No API key needed\n",
		"| `id` | path | yes | The id. |",
		"| 200 | The x (`application/json`) |",
		"| 404 | No x |",
		"| `tags` | array of [Tag](#tag) | no |  |",
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}
}

// TestRenderContract checks the parts of the page that the code cites
// API.md for: the errors and their statuses, the shared headers and query
// parameters, the response headers under their own names, a reference's
// own description, and a schema's bounds.
func TestRenderContract(t *testing.T) {
	src := []byte(`{"openapi":"3.1.0","info":{"title":"t","version":"1"},
	"paths":{"/v1/x":{"get":{"operationId":"getX","summary":"Get x",
		"parameters":[{"$ref":"#/components/parameters/Limit"}],
		"responses":{
			"200":{"description":"The x","headers":{"Repr-Digest":{"$ref":"#/components/headers/Repr-Digest"},"ETag":{"$ref":"#/components/headers/ETag"}}},
			"416":{"$ref":"#/components/responses/Bad","description":"This route's own reason"}}}}},
	"components":{
	  "parameters":{
		"Limit":{"name":"limit","in":"query","description":"Page size."},
		"Key":{"name":"Idempotency-Key","in":"header","description":"Once only."},
		"ID":{"name":"id","in":"path","description":"Not shared."}},
	  "headers":{
		"ETag":{"description":"The CID."},
		"Repr-Digest":{"description":"The SHA-256."},
		"Range-Bad":{"description":"The size."}},
	  "responses":{"Bad":{"description":"Generic","headers":{"Content-Range":{"$ref":"#/components/headers/Range-Bad"}}}},
	  "schemas":{
		"ErrorCode":{"type":"string","enum":["not_found"],"x-artmesh-errors":[{"code":"not_found","status":404,"description":"Not | there."}]},
		"Req":{"type":"object","properties":{"expires_in":{"type":"integer","minimum":0,"maximum":604800,"default":3600},"n":{"type":"integer","minimum":1000000}}}}}}`)
	page, err := Render(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
	}{
		{"errors table", "| `not_found` | 404 | Not \\| there. |"},
		{"shared header", "| `Idempotency-Key` | header | Once only. |"},
		{"shared query parameter", "| `limit` | query | Page size. |"},
		{"response header", "| `Repr-Digest` | The SHA-256. |"},
		{"response header under the name responses give it", "| `Content-Range` | The size. |"},
		{"a response's headers", "| 200 | The x<br>Headers: `ETag`, `Repr-Digest` |"},
		{"a reference's own description", "| 416 | This route's own reason<br>Headers: `Content-Range` |"},
		{"bounds and default", "| `expires_in` | integer, 0 to 604800, default 3600 | no |  |"},
		{"no exponent", "| `n` | integer, at least 1000000 | no |  |"},
	} {
		if !strings.Contains(string(page), tc.want) {
			t.Errorf("%s: the page lacks %q:\n%s", tc.name, tc.want, page)
		}
	}
	for _, bad := range []string{"| `id` | path |", "| `Range-Bad` |"} {
		if strings.Contains(string(page), bad) {
			t.Errorf("the page has %q:\n%s", bad, page)
		}
	}
}
