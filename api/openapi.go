package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/artmesh/artmesh/node"
)

// openAPIDoc is the OpenAPI 3.1 description of this API: every route, its
// parameters, bodies, answers and statuses, and — where HTTP and S3
// conventions leave a choice — the decision the code makes, in each
// operation's description and its x-artmesh-decisions list. Keep it in step
// with the routes and handlers: openapi_test.go checks that every route is
// described. docs/API.md, the contract that comments cite as API.md, is this
// document rendered by `go run ./api/cmd/apidoc`.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPIBody is the document as served: info.version is the node's
// software version. Members keep the file's order.
var openAPIBody = sync.OnceValue(func() []byte {
	ver, _ := json.Marshal(node.Version)
	doc, err := replaceMember(openAPIDoc, "info", func(info json.RawMessage) (json.RawMessage, error) {
		return replaceMember(info, "version", func(json.RawMessage) (json.RawMessage, error) { return ver, nil })
	})
	if err != nil {
		return openAPIDoc // the test keeps this from happening
	}
	var out bytes.Buffer
	if json.Indent(&out, doc, "", "  ") != nil {
		return openAPIDoc
	}
	out.WriteByte('\n')
	return out.Bytes()
})

// openAPI serves the OpenAPI description. It needs no API key.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	body := openAPIBody()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// replaceMember returns the JSON object obj with the value of its member key
// replaced by what f makes of it, keeping the members' order. It is an error
// for obj not to be an object or not to have the member.
func replaceMember(obj []byte, key string, f func(json.RawMessage) (json.RawMessage, error)) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("api: not a JSON object")
	}
	var out bytes.Buffer
	out.WriteByte('{')
	found := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if name == key && !found {
			if v, err = f(v); err != nil {
				return nil, err
			}
			found = true
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		k, _ := json.Marshal(name)
		out.Write(k)
		out.WriteByte(':')
		out.Write(v)
	}
	if !found {
		return nil, errors.New("api: no member " + key)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}
