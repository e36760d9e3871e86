package main

import (
	"strings"
	"testing"
)

// TestMCPCommand: `artmesh mcp` finds its key like every command, prints
// nothing but the protocol on stdout, and ends when stdin closes.
func TestMCPCommand(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       map[string]string
		args      []string
		code      int
		errSubstr string
	}{
		{"no key", map[string]string{}, nil, 1, "no API key"},
		{"bad log level", map[string]string{envAPIKey: "k"}, []string{"--log-level", "loud"}, 2, `--log-level "loud"`},
		{"stdin closed at once", map[string]string{envAPIKey: "k", envAPI: "http://127.0.0.1:1"}, nil, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.env, append([]string{"mcp"}, tc.args...)...)
			if code != tc.code || out != "" || !strings.Contains(errOut, tc.errSubstr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, no stdout, stderr with %q", code, out, errOut, tc.code, tc.errSubstr)
			}
		})
	}
}
