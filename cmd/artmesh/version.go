package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh/node"
)

// versionInfo is what `artmesh version` and `artmesh --version` print:
// the node's protocol version, the module version the binary was built
// from and, when the build recorded them, the VCS revision and time.
type versionInfo struct {
	Version  string `json:"version"`            // node.Version, the version the node reports on GET /v1/node
	Module   string `json:"module,omitempty"`   // the main module's version from the build info, such as v0.1.0 or a pseudo-version
	Commit   string `json:"commit,omitempty"`   // vcs.revision
	Time     string `json:"time,omitempty"`     // vcs.time
	Modified bool   `json:"modified,omitempty"` // vcs.modified: the work tree had uncommitted changes
	Go       string `json:"go"`                 // the Go toolchain that built it
}

// buildCommit is the commit the Makefile builds from, set at link time
// (-ldflags -X main.buildCommit=...) for builds in which Go records no VCS
// information (-buildvcs=false, a tree copied without .git); it ends in
// "-dirty" for a tree with uncommitted changes. It is never changed at run
// time.
var buildCommit string

// buildVersion reads the version from the binary's build info.
func buildVersion() versionInfo {
	v := versionInfo{Version: node.Version, Go: runtime.Version()}
	if c, dirty := strings.CutSuffix(buildCommit, "-dirty"); c != "" {
		v.Commit, v.Modified = c, dirty
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if m := bi.Main.Version; m != "" && m != "(devel)" {
		v.Module = m
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the text form: one line "artmesh version X", then the build's
// details, one "key: value" a line.
func (v versionInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "artmesh version %s\n", v.Version)
	if v.Module != "" {
		fmt.Fprintf(&b, "module: %s\n", v.Module)
	}
	if v.Commit != "" {
		commit := v.Commit
		if v.Modified {
			commit += " (modified)"
		}
		fmt.Fprintf(&b, "commit: %s\n", commit)
	}
	if v.Time != "" {
		fmt.Fprintf(&b, "built: %s\n", v.Time)
	}
	fmt.Fprintf(&b, "go: %s\n", v.Go)
	return b.String()
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary (also: artmesh --version)",
		Long: `Print the version of this binary: the node version it runs and reports on
GET /v1/node, the module version it was built from, and the commit and time
of the build when Go recorded them. It does not talk to the node.`,
		Example: `  artmesh version
  artmesh --version
  artmesh version --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := buildVersion()
			if c.jsonOut {
				return printJSON(c.stdout, v)
			}
			_, err := fmt.Fprint(c.stdout, v.String())
			return err
		},
	}
}
