package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// maxURLExpiry is the longest a signed URL may live (API.md: 604800 s).
const maxURLExpiry = 7 * 24 * time.Hour

// sharingCmds returns share, unshare, access, url and token.
func (c *cli) sharingCmds() []*cobra.Command {
	return []*cobra.Command{c.shareCmd(false), c.shareCmd(true), c.accessCmd(), c.urlCmd(), c.tokenCmd()}
}

// printAccess prints who may read an artifact.
func (c *cli) printAccess(acc artmesh.Access) error {
	if c.jsonOut {
		return printJSON(c.stdout, acc)
	}
	return fields(c.stdout,
		"owner", orDash(string(acc.Owner)),
		"agents", joinOrDash(acc.Agents),
		"groups", joinOrDash(acc.Groups),
	)
}

// shareCmd is `share`, or with unshare, `unshare`.
func (c *cli) shareCmd(unshare bool) *cobra.Command {
	var agents, groups []string
	cmd := &cobra.Command{
		Use:   "share ID|NAME",
		Short: "Let agents and groups read an artifact",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(agents) == 0 && len(groups) == 0 {
				return usageErrorf("name at least one --agent or --group")
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			id, err := c.artifactArg(cmd.Context(), api, args[0])
			if err != nil {
				return err
			}
			ids := make([]artmesh.AgentID, len(agents))
			for i, a := range agents {
				ids[i] = artmesh.AgentID(a)
			}
			do := api.Share
			if unshare {
				do = api.Unshare
			}
			acc, err := do(cmd.Context(), id, ids, groups)
			if err != nil {
				return err
			}
			return c.printAccess(acc)
		},
	}
	if unshare {
		cmd.Use, cmd.Short = "unshare ID|NAME", "Take back what share gave; their signed URLs stop working"
	}
	cmd.Flags().StringSliceVar(&agents, "agent", nil, "an agent id (repeatable, or comma-separated)")
	cmd.Flags().StringSliceVar(&groups, "group", nil, "a group name (repeatable, or comma-separated)")
	return cmd
}

func (c *cli) accessCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "access ID|NAME",
		Short: "Show who may read an artifact",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			id, err := c.artifactArg(cmd.Context(), api, args[0])
			if err != nil {
				return err
			}
			acc, err := api.Access(cmd.Context(), id)
			if err != nil {
				return err
			}
			return c.printAccess(acc)
		},
	}
}

func (c *cli) urlCmd() *cobra.Command {
	var expires time.Duration
	var version int
	cmd := &cobra.Command{
		Use:   "url ID|NAME",
		Short: "Make a signed URL that reads an artifact without an API key",
		Long: `Make a signed URL (a capability token) that reads an artifact without an
API key, on any node of the mesh, until it expires or the access that
granted it is taken back.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("expires") && (expires < time.Second || expires > maxURLExpiry) {
				return usageErrorf("--expires must be from 1s to %s", maxURLExpiry)
			}
			if version < 0 {
				return usageErrorf("--version must be 1 or more")
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			id, err := c.artifactArg(cmd.Context(), api, args[0])
			if err != nil {
				return err
			}
			u, err := api.CreateSignedURL(cmd.Context(), id, client.SignedURLOptions{ExpiresIn: expires, Version: version})
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, u)
			}
			fmt.Fprintln(c.stdout, u.URL)
			if c.quiet {
				return nil // the URL alone, for $(artmesh url -q ...)
			}
			return fields(c.stdout,
				"expires", fmt.Sprintf("%s (in %s)", longTime(u.ExpiresAt), time.Until(u.ExpiresAt).Round(time.Second)),
				"token id", orDash(u.TokenID))
		},
	}
	cmd.Flags().DurationVar(&expires, "expires", 0, "how long the URL works (default 1h, at most 168h)")
	cmd.Flags().IntVar(&version, "version", 0, "only this version (default: the current one when the URL is used)")
	return cmd
}

func (c *cli) tokenCmd() *cobra.Command {
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a capability token by its id, ending its signed URL",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			if err := api.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			c.say("revoked %s", args[0])
			return nil
		},
	}
	return parentCmd("token", "Manage capability tokens (signed URLs)", revoke)
}
