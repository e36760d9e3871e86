// Package apidoc renders the node's OpenAPI description (api/openapi.json)
// as a Markdown reference page, docs/API-reference.md in the repo. The page
// is generated, never edited by hand: `go run ./api/cmd/apidoc` from the
// repo's root writes it, and this package's test fails when the committed
// page differs from what the current openapi.json renders to.
package apidoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
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
	} `json:"components"`
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
}

// Render returns the Markdown page for the OpenAPI document openapi.
func Render(openapi []byte) ([]byte, error) {
	var d doc
	if err := json.Unmarshal(openapi, &d); err != nil {
		return nil, fmt.Errorf("apidoc: reading the OpenAPI document: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s: reference\n\n", d.Info.Title)
	b.WriteString("<!-- Generated from api/openapi.json by `go run ./api/cmd/apidoc`. Do not edit. -->\n\n")
	if d.Info.Summary != "" {
		b.WriteString(d.Info.Summary + "\n\n")
	}
	b.WriteString("A running node serves the same description, with its version, at `GET /v1/openapi.json` (no key needed). ")
	b.WriteString("The contract in prose is API.md; errors always have the shape `{\"error\": {\"code\", \"message\"}}`.\n\n")
	if d.Info.Description != "" {
		b.WriteString(strings.TrimSpace(d.Info.Description) + "\n\n")
	}

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
						p = d.Components.Parameters[refName(p.Ref)]
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
						r = d.Components.Responses[refName(r.Ref)]
					}
					text := cell(r.Description)
					if mt := mediaTypes(r.Content); mt != "" {
						text += " (" + mt + ")"
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
