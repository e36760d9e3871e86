package main

import (
	"strings"
	"testing"

	"github.com/artmesh/artmesh/api/mcpserver"
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

// TestMCPHelp: `artmesh mcp --help` names every tool the server serves
// (from the server's own table), the resource templates, the size limit
// and subscriptions.
func TestMCPHelp(t *testing.T) {
	code, out, errOut := runCLI(t, map[string]string{}, "mcp", "--help")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := []string{"watch", "artmesh://artifacts/{artifact_id}", "artmesh://artifacts/{artifact_id}/versions/{version}",
		"1048576 bytes", "signed URL", "resources/subscribe", "-32700"}
	for _, tool := range mcpserver.Tools() {
		want = append(want, "\n  "+tool.Name+" ")
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("the help does not say %q:\n%s", w, out)
		}
	}
}
