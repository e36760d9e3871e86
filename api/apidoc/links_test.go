package apidoc

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// linkRE matches the target of an inline Markdown link or image,
// [text](target) or ![alt](target), with an optional "title".
var linkRE = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)

// refDefRE matches a reference definition, [name]: target.
var refDefRE = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)

// codeSpanRE matches an inline code span, whose text is not Markdown.
var codeSpanRE = regexp.MustCompile("`+[^`]*`+")

// brokenLinks returns the targets of the links in the Markdown file md that
// name a file or folder that does not exist. Links to other sites, to
// anchors of the same page and inside code are not checked; a target's
// #fragment and ?query are ignored.
func brokenLinks(md string) ([]string, error) {
	src, err := os.ReadFile(md)
	if err != nil {
		return nil, err
	}
	var text strings.Builder
	inFence := false
	for line := range strings.Lines(string(src)) {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			inFence = !inFence
			continue
		}
		if !inFence {
			text.WriteString(codeSpanRE.ReplaceAllString(line, ""))
		}
	}
	var targets []string
	for _, m := range linkRE.FindAllStringSubmatch(text.String(), -1) {
		targets = append(targets, m[1])
	}
	for _, m := range refDefRE.FindAllStringSubmatch(text.String(), -1) {
		targets = append(targets, m[1])
	}
	var broken []string
	for _, t := range targets {
		if strings.Contains(t, "://") || strings.HasPrefix(t, "mailto:") || strings.HasPrefix(t, "#") {
			continue
		}
		p, _, _ := strings.Cut(t, "#")
		p, _, _ = strings.Cut(p, "?")
		if p == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(md), filepath.FromSlash(p))); err != nil {
			broken = append(broken, t)
		}
	}
	return broken, nil
}

// TestMarkdownLinksResolve fails when a link in the repository's Markdown
// (README.md, sdk/python/README.md, docs/*.md) names a file that does not
// exist, such as after a page was renamed.
func TestMarkdownLinksResolve(t *testing.T) {
	root := filepath.Join("..", "..")
	pages := []string{filepath.Join(root, "README.md"), filepath.Join(root, "sdk", "python", "README.md")}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md: is the test running from api/apidoc?")
	}
	for _, md := range append(pages, docs...) {
		broken, err := brokenLinks(md)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range broken {
			rel, _ := filepath.Rel(root, md)
			t.Errorf("%s links to %s, which does not exist", filepath.ToSlash(rel), b)
		}
	}
}

// TestBrokenLinks checks which links brokenLinks reports, on pages written
// into a temporary folder.
func TestBrokenLinks(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"docs/API.md", "docs/pic.png"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, page string
		want       []string
	}{
		{"a file that exists", "[API](docs/API.md)", nil},
		{"a file that does not", "See [the API](docs/API-reference.md).", []string{"docs/API-reference.md"}},
		{"an anchor in a file", "[errors](docs/API.md#errors)", nil},
		{"an anchor in a missing file", "[errors](API.md#errors)", []string{"API.md#errors"}},
		{"an image", "![a picture](docs/pic.png) ![gone](docs/gone.png)", []string{"docs/gone.png"}},
		{"a link with a title", `[API](docs/API.md "the contract")`, nil},
		{"a folder", "[docs](docs/)", nil},
		{"a reference definition", "[api]: docs/nothing.md", []string{"docs/nothing.md"}},
		{"other sites and anchors", "[x](https://example.com/a.md) [y](#errors) [z](mailto:a@b.c)", nil},
		{"a code span", "`[not](a/link.md)`", nil},
		{"a fenced block", "```\n[not](a/link.md)\n```\n[yes](b.md)", []string{"b.md"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := filepath.Join(dir, "page.md")
			if err := os.WriteFile(md, []byte(tc.page), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := brokenLinks(md)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("brokenLinks(%q) = %q, want %q", tc.page, got, tc.want)
			}
		})
	}
}
