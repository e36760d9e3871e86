package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"

	"github.com/artmesh/artmesh/api/client"
)

// defaultContentType is the type of content whose type is not known.
const defaultContentType = "application/octet-stream"

// contentTypeFor guesses a content type from a file name's extension.
func contentTypeFor(name string) string {
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		return t
	}
	return defaultContentType
}

// openInput opens a file to upload ("-" is stdin) and returns its size,
// or -1 when it is not known (a pipe). The caller closes the reader.
func openInput(path string, stdin io.Reader) (io.ReadCloser, int64, error) {
	if path == "-" {
		size := int64(-1)
		if f, ok := stdin.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				size = st.Size()
			}
		}
		return io.NopCloser(stdin), size, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, inputError{err}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, inputError{err}
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, inputError{fmt.Errorf("%s is a directory: give a file", path)}
	}
	size := int64(-1)
	if st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, nil
}

// outputPath returns the file to write a download to: out itself, or,
// when out is a directory, the artifact's file name inside it (its id when
// the name is not a plain file name).
func outputPath(out, filename, id string) string {
	st, err := os.Stat(out)
	if err != nil || !st.IsDir() {
		return out
	}
	name := filepath.Base(filepath.FromSlash(filename))
	if name == "." || name == ".." || name == string(filepath.Separator) || name == "" || strings.ContainsAny(name, `/\`) {
		name = id
	}
	return filepath.Join(out, name)
}

// errShort reports a stream that ended before its announced size.
var errShort = errors.New("the download ended early")

// copyExact copies r to w and checks that size bytes came, when size is
// not negative.
func copyExact(w io.Writer, r io.Reader, size int64) error {
	n, err := io.Copy(w, r)
	if err != nil {
		return fmt.Errorf("download failed after %d bytes: %w", n, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%w: %d of %d bytes", errShort, n, size)
	}
	return nil
}

// digestInput returns ctx declaring the SHA-256 of in when in is a
// regular file, which it reads once and rewinds: the node then checks the
// content it receives against it and records it (Content-Digest). Other
// inputs (a pipe) are sent without one.
func digestInput(ctx context.Context, in io.Reader) (context.Context, error) {
	f, ok := in.(*os.File)
	if !ok {
		return ctx, nil
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return ctx, nil
	}
	start, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return ctx, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ctx, fmt.Errorf("reading the input for its SHA-256: %w", err)
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return ctx, err
	}
	return client.WithContentSHA256(ctx, [32]byte(h.Sum(nil))), nil
}
