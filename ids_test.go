package artmesh

import (
	"errors"
	"strings"
	"testing"
)

// nested returns a metadata object nested depth levels deep in all (the
// object itself counts as one), alternating objects and arrays.
func nested(depth int) string {
	var b strings.Builder
	b.WriteString(`{"k":`)
	for i := 1; i < depth; i++ {
		if i%2 == 1 {
			b.WriteString(`[`)
		} else {
			b.WriteString(`{"k":`)
		}
	}
	b.WriteString(`"{[\"}]"`) // brackets in a string do not count
	for i := depth - 1; i >= 1; i-- {
		if i%2 == 1 {
			b.WriteString(`]`)
		} else {
			b.WriteString(`}`)
		}
	}
	b.WriteString(`}`)
	return b.String()
}

func TestParseMetadataDepth(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		kind Kind // Other: accepted
	}{
		{"flat", `{"a":1,"b":"x"}`, Other},
		{"empty", ``, Other},
		{"at the cap", nested(MaxMetadataDepth), Other},
		{"one past the cap", nested(MaxMetadataDepth + 1), Invalid},
		{"deep arrays", `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, Invalid},
		{"9,990 levels", nested(9990), Invalid},
		{"past Go's decoder limit", nested(10_050), Invalid},
		{"deep but too large", `{"a":` + strings.Repeat("[", MaxMetadataBytes) + `}`, TooLarge},
	} {
		_, err := ParseMetadata([]byte(tc.data))
		if tc.kind == Other {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, tc.kind) {
			t.Errorf("%s: err %v, want %s", tc.name, err, tc.kind)
		}
	}
}

func TestValidateArtifactName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"report.pdf", true},
		{"déjà vu.txt", true},
		{"日本語のファイル", true},
		{"عربي.txt", true}, // right-to-left text itself is fine
		{"", false},
		{"tab\tname", false},
		{"del\x7f", false},
		{"bad\xffutf8", false},
		{"c1\u0080start", false},
		{"c1\u0085nel", false},
		{"c1\u009fend", false},
		{"invoice\u202Efdp.exe", false}, // right-to-left override
		{"\u202Aembedding", false},
		{"\u202Bembedding", false},
		{"pop\u202C", false},
		{"\u202Doverride", false},
		{"isolate\u2066x", false},
		{"isolate\u2067x", false},
		{"isolate\u2068x", false},
		{"pop isolate\u2069", false},
		{strings.Repeat("a", MaxNameBytes), true},
		{strings.Repeat("a", MaxNameBytes+1), false},
	} {
		err := ValidateArtifactName(tc.name)
		if tc.ok && err != nil {
			t.Errorf("%q: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, Invalid) {
			t.Errorf("%q: err %v, want Invalid", tc.name, err)
		}
	}
}
