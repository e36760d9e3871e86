package main

import (
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasExample walks the whole command tree: every command
// a user can see has an Example section in its help.
func TestEveryCommandHasExample(t *testing.T) {
	c := &cli{getenv: envOf(map[string]string{})}
	root := c.newRootCmd()
	var missing []string
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.Hidden {
			return
		}
		if cmd.Example == "" {
			missing = append(missing, cmd.CommandPath())
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if len(missing) > 0 {
		t.Errorf("commands without an Example: %q", missing)
	}
}
