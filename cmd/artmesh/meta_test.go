package main

import (
	"errors"
	"reflect"
	"testing"

	"github.com/artmesh/artmesh"
)

func TestParseMeta(t *testing.T) {
	tests := []struct {
		name  string
		pairs []string
		want  map[string]string // key to JSON text
		usage bool              // a usage error is expected
	}{
		{"none", nil, nil, false},
		{"string stays a string", []string{"ver=1.0", "year=2025", "ok=true", "n=null"}, map[string]string{"ver": `"1.0"`, "year": `"2025"`, "ok": `"true"`, "n": `"null"`}, false},
		{"typed number", []string{"year:=2025", "ratio:=0.5"}, map[string]string{"year": "2025", "ratio": "0.5"}, false},
		{"typed bool and null", []string{"ok:=true", "gone:=null"}, map[string]string{"ok": "true", "gone": "null"}, false},
		{"string", []string{"quarter=Q4"}, map[string]string{"quarter": `"Q4"`}, false},
		{"quoted text is text", []string{`q="Q4"`}, map[string]string{"q": `"\"Q4\""`}, false},
		{"typed string", []string{`q:="Q4"`}, map[string]string{"q": `"Q4"`}, false},
		{"typed array compacted", []string{`tags:=[ "a", 1 ]`}, map[string]string{"tags": `["a",1]`}, false},
		{"typed object", []string{`o:={"a":{"b":2}}`}, map[string]string{"o": `{"a":{"b":2}}`}, false},
		{"empty value", []string{"k="}, map[string]string{"k": `""`}, false},
		{"value with =", []string{"eq=a=b"}, map[string]string{"eq": `"a=b"`}, false},
		{"value with :=", []string{"expr=a:=b"}, map[string]string{"expr": `"a:=b"`}, false},
		{"colon in key", []string{"a:b=c"}, map[string]string{"a:b": `"c"`}, false},
		{"quotes in string", []string{`s=say "hi"`}, map[string]string{"s": `"say \"hi\""`}, false},
		{"typed not json", []string{"v:=1.2.3"}, nil, true},
		{"typed empty", []string{"v:="}, nil, true},
		{"typed without key", []string{":=1"}, nil, true},
		{"typed and plain same key", []string{"a=1", "a:=1"}, nil, true},
		{"no equals", []string{"year"}, nil, true},
		{"empty key", []string{"=1"}, nil, true},
		{"duplicate", []string{"a=1", "a=2"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMeta(tt.pairs)
			if tt.usage {
				var ue usageError
				if !errors.As(err, &ue) {
					t.Fatalf("got %v, %v; want a usage error", m, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string(nil)
			if m != nil {
				got = map[string]string{}
				for k, v := range m {
					got[k] = string(v)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseMetaFilter(t *testing.T) {
	got, err := parseMetaFilter([]string{"year=2025", "q=Q4", "year=2026", "empty="})
	if err != nil {
		t.Fatal(err)
	}
	want := []artmesh.MetaMatch{{Key: "year", Value: "2025"}, {Key: "q", Value: "Q4"}, {Key: "year", Value: "2026"}, {Key: "empty", Value: ""}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// KEY:=JSON spells the same match as put spells a typed value.
	got, err = parseMetaFilter([]string{"year:=2025", `name:="x y"`, `tags:=[ "a" ]`})
	if err != nil {
		t.Fatal(err)
	}
	want = []artmesh.MetaMatch{{Key: "year", Value: "2025"}, {Key: "name", Value: "x y"}, {Key: "tags", Value: `["a"]`}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf(":= got %v, want %v", got, want)
	}
	for _, bad := range []string{"novalue", ":=1", "year:=20x5"} {
		if _, err := parseMetaFilter([]string{bad}); err == nil || exitCode(err) != exitUsage {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
}
