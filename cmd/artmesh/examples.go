package main

import "github.com/spf13/cobra"

// commandExamples returns the Example section of the commands whose
// definitions do not carry their own, by command path.
func commandExamples() map[string]string {
	return map[string]string{
		"artmesh": `  artmesh put report.pdf --meta quarter=Q4
  artmesh ls
  artmesh get report.pdf -o copy.pdf
  artmesh --json mesh members`,
		"artmesh init": `  artmesh init
  ARTMESH_PATH=/srv/artmesh artmesh init --api 127.0.0.1:7490
  artmesh init --join <ticket from 'artmesh mesh invite'> --listen /ip4/0.0.0.0/tcp/7481`,
		"artmesh daemon": `  artmesh daemon
  artmesh daemon --init --api 127.0.0.1:7490 --log-level debug`,
		"artmesh upload": `  artmesh upload weights.bin --meta epoch:=3
  artmesh upload weights.bin --artifact $ID
  artmesh upload --resume '<upload URL printed when an upload failed>' weights.bin`,
		"artmesh share":                "  artmesh share $ID --agent bob\n  artmesh share $ID --group team,eval",
		"artmesh unshare":              "  artmesh unshare $ID --agent bob",
		"artmesh access":               "  artmesh access $ID\n  artmesh access $ID --json",
		"artmesh url":                  "  artmesh url $ID --expires 10m\n  curl -o copy.pdf \"$(artmesh url $ID --json | jq -r .url)\"",
		"artmesh token":                "  artmesh token revoke <token id>",
		"artmesh token revoke":         "  artmesh token revoke tok_01JD8X3V6Q4Z2M5N7P9R1S3T5V   # the token_id that url --json prints",
		"artmesh agent":                "  artmesh agent add bob --group team\n  artmesh agent ls",
		"artmesh agent add":            "  artmesh agent add bob --group team,eval\n  artmesh agent add ops --admin",
		"artmesh agent ls":             "  artmesh agent ls\n  artmesh agent ls -q",
		"artmesh agent rm":             "  artmesh agent rm bob",
		"artmesh agent rotate":         "  artmesh agent rotate bob",
		"artmesh group":                "  artmesh group add team --member alice,bob\n  artmesh group ls",
		"artmesh group add":            "  artmesh group add team --member alice --member bob",
		"artmesh group ls":             "  artmesh group ls --json",
		"artmesh group rm":             "  artmesh group rm team",
		"artmesh group members":        "  artmesh group members team alice bob carol   # sets the members\n  artmesh group members team                   # shows them",
		"artmesh repo":                 "  artmesh repo stat\n  artmesh repo gc",
		"artmesh mcp":                  "  ARTMESH_API_KEY=$(cat ${ARTMESH_PATH:-$HOME/.artmesh}/api.key) artmesh mcp   # an MCP client starts this\n  artmesh mcp --log-level debug 2>mcp.log",
		"artmesh repo gc":              "  artmesh repo gc\n  artmesh repo gc --json",
		"artmesh repo stat":            "  artmesh repo stat",
		"artmesh repo verify":          "  artmesh repo verify\n  artmesh repo verify --json   # the pass and up to 100 quarantined blocks",
		"artmesh repo recover-catalog": "  artmesh repo recover-catalog   # with the daemon stopped",
		"artmesh node":                 "  artmesh node\n  artmesh node --json",
		"artmesh mesh":                 "  artmesh mesh members\n  artmesh mesh invite --expires 1h",
		"artmesh mesh invite":          "  artmesh mesh invite --expires 30m",
		"artmesh mesh members":         "  artmesh mesh members\n  artmesh mesh members -q   # peer ids only",
		"artmesh mesh remove":          "  artmesh mesh remove 12D3KooW...",
		"artmesh mesh leave":           "  artmesh mesh leave && kill <daemon pid>",
		"artmesh mesh policy":          "  artmesh mesh policy\n  artmesh mesh policy --replication-factor 3 --write-replicas 2",
		"artmesh pin":                  "  artmesh pin $ID\n  artmesh pin $ID --version 2 --wait=false",
		"artmesh unpin":                "  artmesh unpin $ID\n  artmesh unpin $ID --version 2",
		"artmesh pins":                 "  artmesh pins\n  artmesh pins -q",
		"artmesh placement":            "  artmesh placement $ID",
		"artmesh replication":          "  artmesh replication $ID 3",
	}
}

// addExamples sets the Example of every command in the tree under root
// that has none and that commandExamples knows.
func addExamples(root *cobra.Command) {
	ex := commandExamples()
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if e, ok := ex[cmd.CommandPath()]; ok && cmd.Example == "" {
			cmd.Example = e
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
