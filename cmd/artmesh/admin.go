package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// agentIDs converts command arguments to agent ids.
func agentIDs(args []string) []artmesh.AgentID {
	ids := make([]artmesh.AgentID, len(args))
	for i, a := range args {
		ids[i] = artmesh.AgentID(a)
	}
	return ids
}

// yesNo formats a flag.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// parentCmd returns a command that only groups subcommands.
func parentCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: groupRunE}
	cmd.AddCommand(subs...)
	return cmd
}

func (c *cli) agentCmd() *cobra.Command {
	var groups []string
	var admin bool
	add := &cobra.Command{
		Use:   "add ID",
		Short: "Add an agent and print its API key, shown only this once (-q: the key alone)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			ak, err := api.CreateAgent(cmd.Context(), artmesh.AgentID(args[0]), groups, admin)
			if err != nil {
				return err
			}
			return c.printAgentKey(ak)
		},
	}
	add.Flags().StringSliceVar(&groups, "group", nil, "a group the agent is a member of (repeatable, or comma-separated)")
	add.Flags().BoolVar(&admin, "admin", false, "make the agent an admin (it may manage agents and groups)")

	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the agents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			as, err := api.Agents(cmd.Context())
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, items(as))
			}
			if c.quiet {
				for _, a := range as {
					fmt.Fprintln(c.stdout, a.ID)
				}
				return nil
			}
			rows := make([][]string, 0, len(as))
			for _, a := range as {
				rows = append(rows, []string{string(a.ID), yesNo(a.Admin), joinOrDash(a.Groups), shortTime(a.CreatedAt)})
			}
			return table(c.stdout, []string{"ID", "ADMIN", "GROUPS", "CREATED"}, rows)
		},
	}

	rm := &cobra.Command{
		Use:   "rm ID",
		Short: "Remove an agent; its keys stop working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			if err := api.DeleteAgent(cmd.Context(), artmesh.AgentID(args[0])); err != nil {
				return err
			}
			c.say("removed agent %s", args[0])
			return nil
		},
	}

	rotate := &cobra.Command{
		Use:   "rotate ID",
		Short: "Give an agent a new API key, shown only this once (-q: the key alone)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			ak, err := api.RotateKey(cmd.Context(), artmesh.AgentID(args[0]))
			if err != nil {
				return err
			}
			return c.printAgentKey(ak)
		},
	}
	return parentCmd("agent", "Manage agents and their quotas (mesh admins; node agents may add and list ordinary agents)", add, ls, rm, rotate, c.agentQuotaCmd())
}

// printAgentKey prints an agent with its new key, and on stderr that the
// key is shown only now.
func (c *cli) printAgentKey(ak client.AgentKey) error {
	if c.jsonOut {
		return printJSON(c.stdout, ak)
	}
	if c.quiet {
		// The key alone, for KEY=$(artmesh agent add bob -q).
		_, err := fmt.Fprintln(c.stdout, ak.APIKey)
		return err
	}
	if err := fields(c.stdout,
		"agent", string(ak.ID),
		"admin", yesNo(ak.Admin),
		"groups", joinOrDash(ak.Groups),
		"api key", ak.APIKey,
	); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "The API key is shown only now: keep it safe. The agent uses it as %s=<key> or as Authorization: Bearer <key>.\n", envAPIKey)
	return nil
}

func (c *cli) groupCmd() *cobra.Command {
	var members []string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			gs, err := api.Groups(cmd.Context())
			if err != nil {
				return err
			}
			for _, g := range gs {
				if g.Name == args[0] {
					return fmt.Errorf("group %s exists: set its members with `artmesh group members %s AGENT...`", args[0], args[0])
				}
			}
			return c.putGroup(cmd, args[0], members)
		},
	}
	add.Flags().StringSliceVar(&members, "member", nil, "an agent in the group (repeatable, or comma-separated)")

	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the groups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			gs, err := api.Groups(cmd.Context())
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, items(gs))
			}
			rows := make([][]string, 0, len(gs))
			for _, g := range gs {
				rows = append(rows, []string{g.Name, joinOrDash(g.Members)})
			}
			return table(c.stdout, []string{"NAME", "MEMBERS"}, rows)
		},
	}

	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			if err := api.DeleteGroup(cmd.Context(), args[0]); err != nil {
				return err
			}
			c.say("removed group %s", args[0])
			return nil
		},
	}

	setMembers := &cobra.Command{
		Use:   "members NAME [AGENT...]",
		Short: "Set a group's members (none empties it)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.putGroup(cmd, args[0], args[1:])
		},
	}
	return parentCmd("group", "Manage groups of agents (admins only)", add, ls, rm, setMembers)
}

// putGroup sets a group's members and prints the group.
func (c *cli) putGroup(cmd *cobra.Command, name string, members []string) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	g, err := api.PutGroup(cmd.Context(), name, agentIDs(members))
	if err != nil {
		return err
	}
	if c.jsonOut {
		return printJSON(c.stdout, g)
	}
	return fields(c.stdout, "group", g.Name, "members", joinOrDash(g.Members))
}

func (c *cli) repoCmd() *cobra.Command {
	gc := &cobra.Command{
		Use:   "gc",
		Short: "Remove the blocks that nothing references any more",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			r, err := api.RepoGC(cmd.Context())
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, r)
			}
			fmt.Fprintf(c.stdout, "removed %d blocks (%s) in %s\n", r.BlocksRemoved, artmesh.FormatBytes(r.BytesRemoved),
				(time.Duration(r.DurationMS) * time.Millisecond).String())
			if r.PacksRemoved > 0 || r.DiskBytesFreed > 0 {
				fmt.Fprintf(c.stdout, "freed %s of disk, %d pack files\n", artmesh.FormatBytes(r.DiskBytesFreed), r.PacksRemoved)
			}
			return nil
		},
	}
	stat := &cobra.Command{
		Use:   "stat",
		Short: "Show the size of the node's block store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			s, err := api.RepoStat(cmd.Context())
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, s)
			}
			return fields(c.stdout,
				"path", orDash(s.Path),
				"blocks", strconv.FormatInt(s.Blocks, 10),
				"data", fmt.Sprintf("%s (%d bytes)", artmesh.FormatBytes(s.Bytes), s.Bytes),
				"packs", strconv.Itoa(s.Packs),
				"on disk", fmt.Sprintf("%s (%d bytes)", artmesh.FormatBytes(s.PackBytes), s.PackBytes),
				"quarantined", strconv.Itoa(s.QuarantinedBlocks),
				"last scrub", describeScrub(s.ScrubLast),
				"scrubbing", describeScrub(s.ScrubCurrent),
			)
		},
	}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Read every block of the node's store now and check it against its CID",
		Long: `Read every block of the node's store and hash it against its CID, at full
speed, in place of the background scrubber's pass. A block that fails is
quarantined: it is never served again, and each version that needs it is
fetched again from another holder. Exits 1 when this pass found a bad block.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			r, err := api.RepoVerify(cmd.Context())
			if err != nil {
				return err
			}
			if c.jsonOut {
				if err := printJSON(c.stdout, r); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(c.stdout, "checked %d blocks (%s): %d bad\n", r.Pass.Blocks, artmesh.FormatBytes(r.Pass.Bytes), r.Pass.Corrupt)
				for _, q := range r.Quarantined {
					fmt.Fprintf(c.stdout, "quarantined %s  %s  %s\n", q.CID, q.At.Local().Format(time.DateTime), q.Reason)
				}
				if r.QuarantinedTotal > len(r.Quarantined) {
					fmt.Fprintf(c.stdout, "... %d quarantined in all\n", r.QuarantinedTotal)
				}
			}
			if r.Pass.Corrupt > 0 {
				return fmt.Errorf("%d blocks failed their check and were quarantined; the versions that need them are fetched again from other holders", r.Pass.Corrupt)
			}
			return nil
		},
	}
	return parentCmd("repo", "Look after the node's repo: its block store (admins only) and, with the daemon stopped, its catalog", gc, stat, verify, c.recoverCatalogCmd())
}

// describeScrub is a line about a scrub pass ("-": none).
func describeScrub(p *client.ScrubPass) string {
	if p == nil {
		return "-"
	}
	s := fmt.Sprintf("%d blocks (%s), %d bad, started %s", p.Blocks, artmesh.FormatBytes(p.Bytes), p.Corrupt, p.Started.Local().Format(time.DateTime))
	if p.Finished != nil {
		s += ", finished " + p.Finished.Local().Format(time.DateTime)
	}
	return s
}

func (c *cli) nodeCmd() *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Show the node: peer id, addresses, version, API URL",
		Long: `Show the node: peer id, addresses, version, API URL.

--wait D first waits up to D until the node answers and is ready (its
/readyz: started, joined, caught up with the catalog), as scripts need
after starting a daemon; it exits 5 if the node is not ready by then.`,
		Example: `  artmesh node
  artmesh daemon > node.log 2>&1 & artmesh node --wait 60s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if wait > 0 {
				if err := c.waitReady(cmd.Context(), wait); err != nil {
					return err
				}
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			n, err := api.Node(cmd.Context())
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, n)
			}
			return fields(c.stdout,
				"peer id", orDash(n.PeerID),
				"version", orDash(n.Version),
				"api", orDash(n.APIURL),
				"addresses", orDash(strings.Join(n.Addresses, " ")),
				"started", longTime(n.StartedAt),
			)
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "first wait up to this long until the node is ready, such as 60s")
	return cmd
}

// waitReady polls the node's /readyz until it answers ready or d has
// passed. It needs no API key: a joining node has none until it joined.
func (c *cli) waitReady(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		// Found again each time: a daemon that is starting may not have
		// made its repo, or written where its API listens, yet.
		u, err := apiURL(c.apiFlag, c.getenv, repoDir(c.getenv))
		if err != nil {
			return usageError{err}
		}
		c.apiURL = u
		probe := client.New(u, "", client.WithUserAgent("artmesh-cli/1"), client.WithRetries(0))
		if err = probe.Ready(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if cerr := context.Cause(ctx); errors.Is(cerr, context.DeadlineExceeded) {
				return artmesh.E(artmesh.Unavailable, fmt.Sprintf("the node at %s was not ready within %s: %s", c.apiURL, d, artmesh.Message(err)))
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
