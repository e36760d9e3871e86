package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/artmesh/artmesh"
)

// splitPair splits a --meta k=v argument.
func splitPair(pair string) (key, value string, err error) {
	key, value, ok := strings.Cut(pair, "=")
	if !ok || key == "" {
		return "", "", usageErrorf("--meta %q: give it as KEY=VALUE (or KEY:=JSON)", pair)
	}
	return key, value, nil
}

// parseMeta turns --meta arguments into metadata, in httpie's manner:
// KEY=VALUE stores VALUE as a string, always (ver=1.0 is the string
// "1.0"), and KEY:=JSON stores the JSON value (year:=2025 is a number,
// ok:=true a bool, tags:='["a","b"]' an array, k:=null removes k on
// update). JSON that does not parse, and a key given twice, are usage
// errors.
func parseMeta(pairs []string) (artmesh.Metadata, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	m := make(artmesh.Metadata, len(pairs))
	for _, p := range pairs {
		k, v, err := splitPair(p)
		if err != nil {
			return nil, err
		}
		typed := strings.HasSuffix(k, ":")
		if typed {
			k = strings.TrimSuffix(k, ":")
			if k == "" {
				return nil, usageErrorf("--meta %q: give it as KEY=VALUE or KEY:=JSON", p)
			}
		}
		if _, dup := m[k]; dup {
			return nil, usageErrorf("--meta %s is given twice", k)
		}
		if typed {
			var b bytes.Buffer
			if err := json.Compact(&b, []byte(v)); err != nil {
				return nil, usageErrorf("--meta %s:=%s: the value after := must be JSON (for a string, use %s=...): %v", k, v, k, err)
			}
			m[k] = json.RawMessage(b.Bytes())
			continue
		}
		s, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("--meta %s: %w", k, err)
		}
		m[k] = s
	}
	return m, nil
}

// parseMetaFilter turns --meta arguments of a listing into conditions.
// KEY=VALUE is text: it matches a string value equal to it, or another
// value whose JSON text it is (year=2025 matches the number 2025).
// KEY:=JSON is the same match spelled as put spells a typed value, so
// that the --meta of a put also finds what it stored: year:=2025 matches
// the number 2025, name:='"x"' the string x. JSON that does not parse is
// a usage error, not a filter that silently matches nothing.
func parseMetaFilter(pairs []string) ([]artmesh.MetaMatch, error) {
	var out []artmesh.MetaMatch
	for _, p := range pairs {
		k, v, err := splitPair(p)
		if err != nil {
			return nil, err
		}
		if typed, ok := strings.CutSuffix(k, ":"); ok {
			if typed == "" {
				return nil, usageErrorf("--meta %q: give it as KEY=VALUE or KEY:=JSON", p)
			}
			var b bytes.Buffer
			if err := json.Compact(&b, []byte(v)); err != nil {
				return nil, usageErrorf("--meta %s:=%s: the value after := must be JSON (for text, use %s=...): %v", typed, v, typed, err)
			}
			k, v = typed, b.String()
			var s string
			if json.Unmarshal(b.Bytes(), &s) == nil {
				v = s // a JSON string matches as its text
			}
		}
		out = append(out, artmesh.MetaMatch{Key: k, Value: v})
	}
	return out, nil
}
