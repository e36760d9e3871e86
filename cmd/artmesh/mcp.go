package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/mcp"
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
		Long: `Serve the node's artifacts to an LLM agent over the Model Context Protocol,
on stdin and stdout, as the agent whose API key the CLI finds ($ARTMESH_API_KEY,
else <repo>/api.key) on the node it finds (--api, $ARTMESH_API, else the repo's).

Tools: create, create_snippet, get, list, list_shared, download, list_versions,
update, share, unshare, get_signed_url, delete, delete_version. Resources:
artmesh://<artifact id> and artmesh://<artifact id>/versions/<n>.

stdout carries only the protocol; logs go to stderr. The server ends when the
client closes stdin.`,
		Args: cobra.NoArgs,
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
			t := &mcp.IOTransport{Reader: io.NopCloser(c.stdin), Writer: nopWriteCloser{c.stdout}}
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

// nopWriteCloser is a writer whose Close does nothing: the server does not
// close the process's stdout.
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
