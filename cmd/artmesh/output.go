package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/artmesh/artmesh"
)

// printJSON prints v as indented JSON, the shape the API sends.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// itemsJSON is the {"items": [...]} shape of the API's unpaged lists.
type itemsJSON[T any] struct {
	Items []T `json:"items"`
}

// items wraps a list as the API sends it, never as null.
func items[T any](list []T) itemsJSON[T] {
	if list == nil {
		list = []T{}
	}
	return itemsJSON[T]{Items: list}
}

// shortTime formats t for a table, in local time.
func shortTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// longTime formats t for a detail view.
func longTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

// metaText formats metadata as one line of compact JSON, keys sorted.
func metaText(m artmesh.Metadata) string {
	if len(m) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		b.Write(kj)
		b.WriteByte(':')
		b.Write(artmesh.MetaCompact(m[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// joinOrDash joins a list with ", ", or gives "-" for an empty one.
func joinOrDash[T ~string](list []T) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = string(s)
	}
	return orDash(strings.Join(parts, ", "))
}

// fields prints aligned "key: value" lines.
func fields(w io.Writer, kv ...string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], kv[i+1])
	}
	return tw.Flush()
}

// table prints rows under a header, columns aligned.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printArtifact prints an artifact: its id alone on the first line, then
// its fields.
func printArtifact(w io.Writer, a artmesh.Artifact) error {
	fmt.Fprintln(w, a.ID)
	kv := []string{
		"  name", a.Name,
		"  owner", string(a.Owner),
		"  type", orDash(a.ContentType),
		"  size", fmt.Sprintf("%s (%d bytes)", artmesh.FormatBytes(a.SizeBytes), a.SizeBytes),
		"  version", fmt.Sprint(a.Version),
		"  cid", orDash(a.CID),
	}
	if a.SHA256 != "" {
		kv = append(kv, "  sha256", a.SHA256)
	}
	kv = append(kv,
		"  metadata", metaText(a.Metadata),
		"  created", longTime(a.CreatedAt),
		"  updated", longTime(a.UpdatedAt),
	)
	return fields(w, kv...)
}
