package node

import (
	"fmt"
	"testing"
)

// TestCidMapLimit checks that a bounded cidMap never holds more than its
// limit, keeps the entry just set, and that setting a key it holds
// forgets nothing; an unbounded one keeps everything.
func TestCidMapLimit(t *testing.T) {
	cases := []struct {
		name  string
		limit int
		sets  int
		want  int
	}{
		{"unbounded", 0, 1000, 1000},
		{"under the limit", 100, 50, 50},
		{"at the limit", 100, 100, 100},
		{"past the limit", 100, 1000, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := cidMap[struct{}]{limit: tc.limit}
			for i := range tc.sets {
				c := fmt.Sprintf("cid-%d", i)
				m.set(c, struct{}{})
				if _, ok := m.get(c); !ok {
					t.Fatalf("%s is not held right after it was set", c)
				}
			}
			if got := m.len(); got != tc.want {
				t.Fatalf("holds %d entries after %d sets, want %d", got, tc.sets, tc.want)
			}
			// Setting a key it holds again forgets nothing.
			held := m.keys()
			for _, c := range held {
				m.set(c, struct{}{})
			}
			for _, c := range held {
				if _, ok := m.get(c); !ok {
					t.Fatalf("%s was forgotten when a key already held was set again", c)
				}
			}
		})
	}
}
