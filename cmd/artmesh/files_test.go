package main

import (
	"path/filepath"
	"testing"
)

func TestOutputPath(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ out, filename, want string }{
		{filepath.Join(dir, "f"), "report.pdf", filepath.Join(dir, "f")},
		{dir, "report.pdf", filepath.Join(dir, "report.pdf")},
		{dir, "../../etc/passwd", filepath.Join(dir, "passwd")},
		{dir, "..", filepath.Join(dir, "art_1")},
		{dir, "", filepath.Join(dir, "art_1")},
	}
	for _, tt := range tests {
		if got := outputPath(tt.out, tt.filename, "art_1"); got != tt.want {
			t.Errorf("outputPath(%q, %q) = %q, want %q", tt.out, tt.filename, got, tt.want)
		}
	}
}

func TestContentTypeFor(t *testing.T) {
	tests := []struct{ name, want string }{
		{"data.json", "application/json"},
		{"report.PDF", "application/pdf"},
		{"blob.no-such-ext", defaultContentType},
		{"noext", defaultContentType},
	}
	for _, tt := range tests {
		if got := contentTypeFor(tt.name); got != tt.want {
			t.Errorf("contentTypeFor(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
