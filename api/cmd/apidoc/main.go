// Command apidoc writes docs/API.md, the API's contract, from api/openapi.json (see
// package api/apidoc). Run it from the repo's root after changing
// api/openapi.json:
//
//	go run ./api/cmd/apidoc
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/artmesh/artmesh/api/apidoc"
)

func main() {
	in := flag.String("in", "api/openapi.json", "the OpenAPI document")
	out := flag.String("out", "docs/API.md", "the Markdown page to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "apidoc:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	src, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	page, err := apidoc.Render(src)
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(page, '\n'), 0o644)
}
