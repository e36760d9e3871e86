package apidoc

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestReferenceIsCurrent fails when docs/API-reference.md is not what
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
	got, err := os.ReadFile("../../docs/API-reference.md")
	if err != nil {
		t.Fatalf("%v: run `go run ./api/cmd/apidoc` from the repo's root to write it", err)
	}
	if !bytes.Equal(bytes.TrimRight(got, "\n"), want) {
		t.Fatal("docs/API-reference.md is stale: api/openapi.json changed since it was generated. " +
			"Run `go run ./api/cmd/apidoc` from the repo's root and commit docs/API-reference.md.")
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
