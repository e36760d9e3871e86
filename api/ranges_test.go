package api

import (
	"errors"
	"testing"

	"github.com/artmesh/artmesh"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		header  string
		size    int64
		want    byteRange
		partial bool
		bad     bool
	}{
		{"", 100, byteRange{}, false, false},
		{"bytes=0-9", 100, byteRange{0, 10}, true, false},
		{"bytes=10-", 100, byteRange{10, 90}, true, false},
		{"bytes=-10", 100, byteRange{90, 10}, true, false},
		{"bytes=-1000", 100, byteRange{0, 100}, true, false},
		{"bytes=90-1000", 100, byteRange{90, 10}, true, false},
		{"bytes=99-99", 100, byteRange{99, 1}, true, false},
		{"bytes= 5 - 6", 100, byteRange{5, 2}, true, false},
		{"bytes=0-1,5-6", 100, byteRange{}, false, false},
		{"items=0-1", 100, byteRange{}, false, false},
		{"bytes=100-", 100, byteRange{}, false, true},
		{"bytes=5-2", 100, byteRange{}, false, true},
		{"bytes=-0", 100, byteRange{}, false, true},
		{"bytes=abc", 100, byteRange{}, false, true},
		{"bytes=1-x", 100, byteRange{}, false, true},
		{"bytes=+1-2", 100, byteRange{}, false, true},
		{"bytes=0-0", 0, byteRange{}, false, true},
		{"bytes=-5", 0, byteRange{}, false, true},
		{"bytes=99999999999999999999-", 100, byteRange{}, false, true},
		{"garbage", 100, byteRange{}, false, true},
	} {
		got, partial, err := parseRange(tc.header, tc.size)
		if tc.bad {
			if !errors.Is(err, artmesh.RangeNotSatisfiable) {
				t.Errorf("parseRange(%q, %d): err %v, want RangeNotSatisfiable", tc.header, tc.size, err)
			}
			continue
		}
		if err != nil || partial != tc.partial || got != tc.want {
			t.Errorf("parseRange(%q, %d) = %+v, %v, %v; want %+v, %v", tc.header, tc.size, got, partial, err, tc.want, tc.partial)
		}
	}
}

// FuzzParseRange checks that parseRange never panics and that every range
// it accepts lies inside the content.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=5-", "bytes=0-1,2-3", "bytes=abc", "bytes=9223372036854775807-"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			size = -size
			if size < 0 {
				size = 0
			}
		}
		r, partial, err := parseRange(header, size)
		if err != nil || !partial {
			return
		}
		if r.Start < 0 || r.Length <= 0 || r.Start+r.Length > size || r.Start+r.Length < r.Start {
			t.Fatalf("parseRange(%q, %d) = %+v: outside the content", header, size, r)
		}
	})
}
