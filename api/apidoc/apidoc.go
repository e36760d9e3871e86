// Package apidoc renders the node's OpenAPI description (api/openapi.json)
// as a Markdown page, docs/API.md in the repo: the HTTP API's contract, which
// comments and the SDKs cite as API.md. The page is generated, never edited
// by hand: `go run ./api/cmd/apidoc` from the repo's root writes it, and this
// package's test fails when the committed page differs from what the current
// openapi.json renders to.
package apidoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// methods are the HTTP methods an OpenAPI path item may hold, in the order
// the page lists them.
var methods = []string{"get", "head", "post", "put", "patch", "delete", "options"}

// doc is the part of an OpenAPI document the page shows.
type doc struct {
	Info struct {
		Title       string `json:"title"`
		Summary     string `json:"summary"`
		Description string `json:"description"`
		Version     string `json:"version"`
	} `json:"info"`
	Tags []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"tags"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas    map[string]schema    `json:"schemas"`
		Parameters map[string]parameter `json:"parameters"`
		Responses  map[string]response  `json:"responses"`
		Headers    map[string]header    `json:"headers"`
	} `json:"components"`
}

// header is a response header, given in a response's headers or in
// components.headers.
type header struct {
	Ref         string `json:"$ref"`
	Description string `json:"description"`
}

// errorCode is one row of the ErrorCode schema's x-artmesh-errors: an
// error code, its one HTTP status and what it means.
type errorCode struct {
	Code        string `json:"code"`
	Status      int    `json:"status"`
	Description string `json:"description"`
}

type operation struct {
	OperationID string      `json:"operationId"`
	Summary     string      `json:"summary"`
	Description string      `json:"description"`
	Tags        []string    `json:"tags"`
	Parameters  []parameter `json:"parameters"`
	RequestBody *struct {
		Required bool                       `json:"required"`
		Content  map[string]json.RawMessage `json:"content"`
	} `json:"requestBody"`
	Responses map[string]response    `json:"responses"`
	Security  *[]map[string][]string `json:"security"`
}

type parameter struct {
	Ref         string `json:"$ref"`
	Name        string `json:"name"`
	In          string `json:"in"`
	Required    bool   `json:"required"`
	Description string `json:"description"`
	Schema      schema `json:"schema"`
}

type response struct {
	Ref         string                     `json:"$ref"`
	Description string                     `json:"description"`
	Content     map[string]json.RawMessage `json:"content"`
	Headers     map[string]header          `json:"headers"`
}

type schema struct {
	Ref         string            `json:"$ref"`
	Type        any               `json:"type"`
	Format      string            `json:"format"`
	Description string            `json:"description"`
	Required    []string          `json:"required"`
	Properties  map[string]schema `json:"properties"`
	Items       *schema           `json:"items"`
	Enum        []any             `json:"enum"`
	Minimum     *float64          `json:"minimum"`
	Maximum     *float64          `json:"maximum"`
	MinLength   *int              `json:"minLength"`
	MaxLength   *int              `json:"maxLength"`
	Default     any               `json:"default"`
	Errors      []errorCode       `json:"x-artmesh-errors"`
}

// Render returns the Markdown page for the OpenAPI document openapi.
func Render(openapi []byte) ([]byte, error) {
	var d doc
	if err := json.Unmarshal(openapi, &d); err != nil {
		return nil, fmt.Errorf("apidoc: reading the OpenAPI document: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", d.Info.Title)
	b.WriteString("<!-- Generated from api/openapi.json by `go run ./api/cmd/apidoc`. Do not edit. -->\n\n")
	if d.Info.Summary != "" {
		b.WriteString(d.Info.Summary + "\n\n")
	}
	b.WriteString("This page is the API's contract, which the code and the SDKs cite as API.md. ")
	b.WriteString("It is [api/openapi.json](../api/openapi.json) rendered as Markdown; ")
	b.WriteString("a running node serves the same description, with its version, at `GET /v1/openapi.json` (no key needed). ")
	b.WriteString("Errors always have the shape `{\"error\": {\"code\", \"message\"}}`.\n\n")
	if d.Info.Description != "" {
		b.WriteString(strings.TrimSpace(d.Info.Description) + "\n\n")
	}
	writeErrors(&b, d)
	writeSharedParameters(&b, d)
	writeResponseHeaders(&b, d)

	// Operations grouped by their first tag, tags in the document's order.
	type op struct {
		method, path string
		o            operation
	}
	byTag := map[string][]op{}
	paths := make([]string, 0, len(d.Paths))
	for p := range d.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		for _, m := range methods {
			raw, ok := d.Paths[p][m]
			if !ok {
				continue
			}
			var o operation
			if err := json.Unmarshal(raw, &o); err != nil {
				return nil, fmt.Errorf("apidoc: %s %s: %w", strings.ToUpper(m), p, err)
			}
			tag := "other"
			if len(o.Tags) > 0 {
				tag = o.Tags[0]
			}
			byTag[tag] = append(byTag[tag], op{m, p, o})
		}
	}
	tagOrder := []string{}
	tagDesc := map[string]string{}
	for _, t := range d.Tags {
		tagOrder = append(tagOrder, t.Name)
		tagDesc[t.Name] = t.Description
	}
	var rest []string
	for t := range byTag {
		if _, ok := tagDesc[t]; !ok {
			rest = append(rest, t)
		}
	}
	sort.Strings(rest)
	tagOrder = append(tagOrder, rest...)

	b.WriteString("## Routes\n\n| method | path | summary |\n| --- | --- | --- |\n")
	for _, t := range tagOrder {
		for _, o := range byTag[t] {
			fmt.Fprintf(&b, "| %s | `%s` | %s |\n", strings.ToUpper(o.method), o.path, cell(o.o.Summary))
		}
	}
	b.WriteString("\n")

	for _, t := range tagOrder {
		ops := byTag[t]
		if len(ops) == 0 {
			continue
		}
		fmt.Fprintf(&b, "## %s\n\n", t)
		if tagDesc[t] != "" {
			b.WriteString(tagDesc[t] + "\n\n")
		}
		for _, o := range ops {
			fmt.Fprintf(&b, "### %s `%s`\n\n", strings.ToUpper(o.method), o.path)
			if o.o.Summary != "" {
				fmt.Fprintf(&b, "**%s** (`%s`)", o.o.Summary, o.o.OperationID)
			} else {
				fmt.Fprintf(&b, "`%s`", o.o.OperationID)
			}
			if o.o.Security != nil && len(*o.o.Security) == 0 {
				b.WriteString(". No API key needed")
			}
			b.WriteString("\n\n")
			if desc := strings.TrimSpace(o.o.Description); desc != "" {
				b.WriteString(desc + "\n\n")
			}
			if len(o.o.Parameters) > 0 {
				b.WriteString("| parameter | in | required | description |\n| --- | --- | --- | --- |\n")
				for _, p := range o.o.Parameters {
					if p.Ref != "" {
						own := p.Description
						p = d.Components.Parameters[refName(p.Ref)]
						if own != "" {
							p.Description = own
						}
					}
					fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", p.Name, p.In, yesNo(p.Required), cell(p.Description))
				}
				b.WriteString("\n")
			}
			if rb := o.o.RequestBody; rb != nil {
				fmt.Fprintf(&b, "Request body (%s): %s\n\n", map[bool]string{true: "required", false: "optional"}[rb.Required], mediaTypes(rb.Content))
			}
			if len(o.o.Responses) > 0 {
				b.WriteString("| status | answer |\n| --- | --- |\n")
				codes := make([]string, 0, len(o.o.Responses))
				for c := range o.o.Responses {
					codes = append(codes, c)
				}
				sort.Strings(codes)
				for _, c := range codes {
					r := o.o.Responses[c]
					if r.Ref != "" {
						// OpenAPI 3.1 lets a reference override the
						// description of what it refers to.
						own := r.Description
						r = d.Components.Responses[refName(r.Ref)]
						if own != "" {
							r.Description = own
						}
					}
					text := cell(r.Description)
					if mt := mediaTypes(r.Content); mt != "" {
						text += " (" + mt + ")"
					}
					if hs := headerNames(r.Headers); hs != "" {
						text += "<br>Headers: " + hs
					}
					fmt.Fprintf(&b, "| %s | %s |\n", c, text)
				}
				b.WriteString("\n")
			}
		}
	}

	b.WriteString("## Schemas\n\n")
	names := make([]string, 0, len(d.Components.Schemas))
	for n := range d.Components.Schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := d.Components.Schemas[n]
		fmt.Fprintf(&b, "### %s\n\n", n)
		if s.Description != "" {
			b.WriteString(strings.TrimSpace(s.Description) + "\n\n")
		}
		if len(s.Properties) == 0 {
			fmt.Fprintf(&b, "Type: %s.\n\n", typeOf(s))
			continue
		}
		req := map[string]bool{}
		for _, r := range s.Required {
			req[r] = true
		}
		props := make([]string, 0, len(s.Properties))
		for p := range s.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
		b.WriteString("| field | type | required | description |\n| --- | --- | --- | --- |\n")
		for _, p := range props {
			ps := s.Properties[p]
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", p, typeOf(ps), yesNo(req[p]), cell(ps.Description))
		}
		b.WriteString("\n")
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// writeErrors writes the table of error codes, their statuses and their
// meanings, from the ErrorCode schema's x-artmesh-errors.
func writeErrors(b *bytes.Buffer, d doc) {
	codes := d.Components.Schemas["ErrorCode"].Errors
	if len(codes) == 0 {
		return
	}
	b.WriteString("## Errors\n\n")
	b.WriteString("Every error has exactly one status; the Go client and the SDKs map the code back to a kind.\n\n")
	b.WriteString("| code | status | meaning |\n| --- | --- | --- |\n")
	for _, e := range codes {
		fmt.Fprintf(b, "| `%s` | %d | %s |\n", e.Code, e.Status, cell(e.Description))
	}
	b.WriteString("\n")
}

// writeSharedParameters writes the parameters several routes take (paging,
// filters, conditions, idempotency, digests), from components.parameters:
// request headers first, then query parameters. Their descriptions give
// their bounds and defaults.
func writeSharedParameters(b *bytes.Buffer, d doc) {
	if len(d.Components.Parameters) == 0 {
		return
	}
	b.WriteString("## Request headers and query parameters\n\n")
	b.WriteString("Those that several routes share; each route's section lists the ones it takes.\n\n")
	b.WriteString("| parameter | in | description |\n| --- | --- | --- |\n")
	for _, in := range []string{"header", "query"} {
		var ps []parameter
		for _, p := range d.Components.Parameters {
			if p.In == in {
				ps = append(ps, p)
			}
		}
		sort.Slice(ps, func(i, j int) bool {
			return ps[i].Name < ps[j].Name || ps[i].Name == ps[j].Name && ps[i].Description < ps[j].Description
		})
		for _, p := range ps {
			fmt.Fprintf(b, "| `%s` | %s | %s |\n", p.Name, p.In, cell(p.Description))
		}
	}
	b.WriteString("\n")
}

// writeResponseHeaders writes the headers the node sends, from
// components.headers, each under the name the responses send it as.
func writeResponseHeaders(b *bytes.Buffer, d doc) {
	if len(d.Components.Headers) == 0 {
		return
	}
	// A component's key is not always the header's name (two components
	// describe Content-Range, on 206 and on 416): take the name from the
	// responses that use it.
	names := map[string]string{}
	note := func(hs map[string]header) {
		for name, h := range hs {
			if h.Ref != "" {
				names[refName(h.Ref)] = name
			}
		}
	}
	for _, r := range d.Components.Responses {
		note(r.Headers)
	}
	for _, item := range d.Paths {
		for _, raw := range item {
			var o operation
			if json.Unmarshal(raw, &o) == nil {
				for _, r := range o.Responses {
					note(r.Headers)
				}
			}
		}
	}
	type row struct{ name, desc string }
	rows := make([]row, 0, len(d.Components.Headers))
	for key, h := range d.Components.Headers {
		name := key
		if n, ok := names[key]; ok {
			name = n
		}
		rows = append(rows, row{name, h.Description})
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].name < rows[j].name || rows[i].name == rows[j].name && rows[i].desc < rows[j].desc
	})
	b.WriteString("## Response headers\n\n")
	b.WriteString("| header | description |\n| --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(b, "| `%s` | %s |\n", r.name, cell(r.desc))
	}
	b.WriteString("\n")
}

// headerNames lists the names of a response's headers, sorted.
func headerNames(hs map[string]header) string {
	names := make([]string, 0, len(hs))
	for n := range hs {
		names = append(names, "`"+n+"`")
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// limits describes a schema's bounds and default, such as "1 to 1000,
// default 50", or returns "".
func limits(s schema) string {
	var parts []string
	switch {
	case s.Minimum != nil && s.Maximum != nil:
		parts = append(parts, num(*s.Minimum)+" to "+num(*s.Maximum))
	case s.Minimum != nil:
		parts = append(parts, "at least "+num(*s.Minimum))
	case s.Maximum != nil:
		parts = append(parts, "at most "+num(*s.Maximum))
	}
	switch {
	case s.MinLength != nil && s.MaxLength != nil:
		parts = append(parts, fmt.Sprintf("%d to %d characters", *s.MinLength, *s.MaxLength))
	case s.MaxLength != nil:
		parts = append(parts, fmt.Sprintf("at most %d characters", *s.MaxLength))
	}
	if s.Default != nil {
		parts = append(parts, fmt.Sprintf("default %v", s.Default))
	}
	return strings.Join(parts, ", ")
}

// num writes a JSON number as it was written, never with an exponent.
func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// refName is the last element of a $ref such as
// "#/components/schemas/Artifact".
func refName(ref string) string {
	return ref[strings.LastIndexByte(ref, '/')+1:]
}

// typeOf describes a schema's type in a few words.
func typeOf(s schema) string {
	if s.Ref != "" {
		return "[" + refName(s.Ref) + "](#" + strings.ToLower(refName(s.Ref)) + ")"
	}
	var t string
	switch v := s.Type.(type) {
	case string:
		t = v
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = fmt.Sprint(p)
		}
		t = strings.Join(parts, " or ")
	default:
		t = "any"
	}
	if t == "array" && s.Items != nil {
		t = "array of " + typeOf(*s.Items)
	}
	if s.Format != "" {
		t += " (" + s.Format + ")"
	}
	if lim := limits(s); lim != "" {
		t += ", " + lim
	}
	if len(s.Enum) > 0 {
		parts := make([]string, len(s.Enum))
		for i, e := range s.Enum {
			parts[i] = fmt.Sprintf("`%v`", e)
		}
		t += ": " + strings.Join(parts, ", ")
	}
	return t
}

// mediaTypes lists the media types of a content map, sorted.
func mediaTypes(content map[string]json.RawMessage) string {
	ts := make([]string, 0, len(content))
	for t := range content {
		ts = append(ts, "`"+t+"`")
	}
	sort.Strings(ts)
	return strings.Join(ts, ", ")
}

// cell makes text fit in one Markdown table cell.
func cell(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\n\n", "<br>")
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
