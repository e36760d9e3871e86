package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh/api/mcpserver"
	"github.com/artmesh/artmesh/node"
)

// mcpCmd is `artmesh mcp`: a Model Context Protocol server on stdin and
// stdout, acting on the node as the agent whose key the CLI finds.
func (c *cli) mcpCmd() *cobra.Command {
	var logLevel string
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve the node to an MCP client (Claude Desktop, IDEs, agents) over stdio",
		Long:  mcpLong(),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErrorf("--log-level %q: use debug, info, warn or error", logLevel)
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
			s := mcpserver.New(api, mcpserver.Options{Version: node.Version, Logger: log})
			log.Info("artmesh mcp: serving over stdio", "api", api.BaseURL(), "key_from", c.keySource)
			// The package's transport, not the SDK's: it answers every
			// request read before stdin closes, and a line that is not
			// JSON-RPC gets an error answer instead of ending the session.
			t := &mcpserver.StdioTransport{In: c.stdin, Out: c.stdout, Logger: log}
			err = s.Run(cmd.Context(), t)
			if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("mcp: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "log level on stderr: debug, info, warn or error")
	return cmd
}

// mcpLong is the help of `artmesh mcp`. Its list of tools comes from the
// table the server registers them from, so it names every tool.
func mcpLong() string {
	var b strings.Builder
	b.WriteString(`Serve the node's artifacts to an LLM agent over the Model Context Protocol,
on stdin and stdout, as the agent whose API key the CLI finds ($ARTMESH_API_KEY,
else <repo>/api.key) on the node it finds (--api, $ARTMESH_API, else the repo's).

Tools:
`)
	tools := mcpserver.Tools()
	width := 0
	for _, t := range tools {
		width = max(width, len(t.Name))
	}
	for _, t := range tools {
		desc, _, _ := strings.Cut(t.Description, ". ")
		desc = strings.TrimSuffix(desc, ".")
		// Wrapped at 80 columns, under the descriptions' column.
		indent := 2 + width + 2
		line := fmt.Sprintf("  %-*s ", width, t.Name)
		for _, w := range strings.Fields(desc) {
			if len(line)+1+len(w) > 80 && len(line) > indent {
				b.WriteString(line + "\n")
				line = strings.Repeat(" ", indent-1)
			}
			line += " " + w
		}
		b.WriteString(line + "\n")
	}
	fmt.Fprintf(&b, `
Resources (resources/templates/list):
  artmesh://artifacts/{artifact_id}                      the current version
  artmesh://artifacts/{artifact_id}/versions/{version}   one version
Content up to %d bytes (1 MiB) is returned inline, as text when it is UTF-8,
else base64; larger content is returned as a signed URL (text/uri-list, valid
%d minutes) with its size, type, CID and sha256, to fetch without a key.
resources/subscribe (or subscriptions/listen) sends notifications/resources/updated
when the node's change feed reports a change to a subscribed artifact.

Errors of protocol requests carry JSON-RPC codes: -32602 for a bad URI or
argument and for a resource not found, -32603 for the rest (the API's error
code is in the error's data); a failed tool call is a result with isError.

stdout carries only the protocol; logs go to stderr. Every request read before
stdin closes is answered before the server ends. A line that is not JSON gets a
-32700 parse error answer (id null), one that is not a JSON-RPC message -32600,
and the session goes on.`, mcpserver.MaxInlineBytes, int(mcpserver.LinkExpiry.Minutes()))
	return b.String()
}
