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
		return "", "", usageErrorf("--meta %q: give it as KEY=VALUE", pair)
	}
	return key, value, nil
}

// parseMeta turns --meta k=v arguments into metadata. A value that is
// valid JSON is taken as that JSON (year=2025 is the number 2025, ok=true a
// bool, tags=["a","b"] an array, k=null removes k on update); anything else
// is a string. A key given twice is an error.
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
		if _, dup := m[k]; dup {
			return nil, usageErrorf("--meta %s is given twice", k)
		}
		var b bytes.Buffer
		if json.Valid([]byte(v)) && json.Compact(&b, []byte(v)) == nil {
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

// parseMetaFilter turns --meta k=v arguments of a listing into conditions.
// The value is text: it matches a string value equal to it, or another
// value whose JSON text it is (year=2025 matches the number 2025).
func parseMetaFilter(pairs []string) ([]artmesh.MetaMatch, error) {
	var out []artmesh.MetaMatch
	for _, p := range pairs {
		k, v, err := splitPair(p)
		if err != nil {
			return nil, err
		}
		out = append(out, artmesh.MetaMatch{Key: k, Value: v})
	}
	return out, nil
}
