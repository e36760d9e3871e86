package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// failingReader yields some bytes, then fails.
type failingReader struct{ sent bool }

func (f *failingReader) Read(p []byte) (int, error) {
	if !f.sent {
		f.sent = true
		return copy(p, "partial"), nil
	}
	return 0, errors.New("connection reset")
}

func TestWriteAtomic(t *testing.T) {
	tests := []struct {
		name    string
		r       io.Reader
		size    int64
		wantErr bool
	}{
		{"whole", strings.NewReader("hello"), 5, false},
		{"unknown size", strings.NewReader("hello"), -1, false},
		{"short", strings.NewReader("hel"), 5, true},
		{"broken", &failingReader{}, 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.bin")
			err := writeAtomic(path, tt.r, tt.size)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			entries, _ := os.ReadDir(dir)
			if tt.wantErr {
				if len(entries) != 0 {
					t.Errorf("a failed download left %v", entries)
				}
				return
			}
			data, err := os.ReadFile(path)
			if err != nil || string(data) != "hello" || len(entries) != 1 {
				t.Errorf("file %q, %v; folder %v", data, err, entries)
			}
		})
	}
}

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
