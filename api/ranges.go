package api

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/artmesh/artmesh"
)

// byteRange is a satisfiable range of content: Length bytes from Start.
type byteRange struct {
	Start, Length int64
}

// parseRange reads a Range header for content of size bytes. It returns
// ok=false when the whole content is to be served: no header, a unit other
// than bytes, or several ranges (which, like S3, we do not serve as
// multipart; RFC 9110 lets a server ignore Range). A malformed or
// unsatisfiable byte range is a RangeNotSatisfiable error, so that a client
// learns its mistake rather than silently getting everything.
func parseRange(header string, size int64) (r byteRange, ok bool, err error) {
	if header == "" {
		return r, false, nil
	}
	spec, found := strings.CutPrefix(header, "bytes=")
	if !found {
		if strings.Contains(header, "=") && !strings.HasPrefix(strings.TrimSpace(header), "bytes") {
			return r, false, nil // another unit: ignored
		}
		return r, false, unsatisfiable(header, size)
	}
	if strings.Contains(spec, ",") {
		return r, false, nil
	}
	spec = strings.TrimSpace(spec)
	first, last, found := strings.Cut(spec, "-")
	if !found {
		return r, false, unsatisfiable(header, size)
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	switch {
	case first == "":
		// A suffix: the last N bytes.
		n, err := parseDigits(last)
		if err != nil || n == 0 || size == 0 {
			return r, false, unsatisfiable(header, size)
		}
		if n > size {
			n = size
		}
		return byteRange{Start: size - n, Length: n}, true, nil
	default:
		start, err := parseDigits(first)
		if err != nil || start >= size {
			return r, false, unsatisfiable(header, size)
		}
		end := size - 1
		if last != "" {
			e, err := parseDigits(last)
			if err != nil || e < start {
				return r, false, unsatisfiable(header, size)
			}
			if e < end {
				end = e
			}
		}
		return byteRange{Start: start, Length: end - start + 1}, true, nil
	}
}

// parseDigits parses a non-negative decimal made only of ASCII digits.
func parseDigits(s string) (int64, error) {
	if s == "" || len(s) > 19 {
		return 0, fmt.Errorf("bad number %q", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad number %q", s)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func unsatisfiable(header string, size int64) error {
	if len(header) > 64 {
		header = header[:64] + "..."
	}
	return artmesh.E(artmesh.RangeNotSatisfiable, fmt.Sprintf("range %q cannot be served from content of %d bytes; use bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX", header, size))
}
