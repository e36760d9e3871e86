package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// meshCmds are the commands about the mesh and what this node keeps.
func (c *cli) meshCmds() []*cobra.Command {
	return []*cobra.Command{c.meshCmd(), c.pinCmd(), c.unpinCmd(), c.pinsCmd(), c.placementCmd(), c.replicationCmd()}
}

// meshCmd is `artmesh mesh invite|members|remove|leave|policy|quota`.
func (c *cli) meshCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mesh",
		Short: "Invite nodes to the mesh, list its members, take nodes out, set its replication policy",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}
	var expires time.Duration
	invite := &cobra.Command{
		Use:   "invite",
		Short: "Print a one-time ticket for `artmesh init --join TICKET` on a new host (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			inv, err := api.CreateInvite(cmd.Context(), expires)
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, inv)
			}
			fmt.Fprintln(c.stdout, inv.Ticket)
			fmt.Fprintf(c.stderr, "On the new host: artmesh init --join <ticket> && artmesh daemon (the ticket works once, until %s).\n", longTime(inv.ExpiresAt))
			return nil
		},
	}
	invite.Flags().DurationVar(&expires, "expires", time.Hour, "how long the ticket stays valid")
	members := &cobra.Command{
		Use:   "members",
		Short: "List the mesh's members: role, reachability, the leader, bytes held and under-replicated versions",
		Long: `List the mesh's members, one a row under a header: THIS is * for the node
this CLI talks to; then the peer id, the Raft role (voter or nonvoter),
whether this node reaches it, whether it is the leader, the bytes it holds,
the versions it holds that are under-replicated, and its addresses.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			ms, err := api.Members(cmd.Context())
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, map[string]any{"items": ms})
			}
			if c.quiet {
				for _, m := range ms {
					fmt.Fprintln(c.stdout, m.PeerID)
				}
				return nil
			}
			// The node the CLI talks to is marked, as kubectl marks the
			// current context.
			self, err := api.Node(cmd.Context())
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(ms))
			for _, m := range ms {
				current := ""
				if m.PeerID == self.PeerID {
					current = "*"
				}
				rows = append(rows, []string{current, m.PeerID, m.Role, yesNo(m.Reachable), yesNo(m.Leader),
					artmesh.FormatBytes(m.BytesHeld), strconv.Itoa(m.UnderReplicated), orDash(strings.Join(m.Addresses, " "))})
			}
			return table(c.stdout, []string{"THIS", "PEER", "ROLE", "REACHABLE", "LEADER", "HELD", "UNDER-REPLICATED", "ADDRESSES"}, rows)
		},
	}
	remove := &cobra.Command{
		Use:   "remove PEER_ID",
		Short: "Take a node out of the mesh (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			ms, err := api.Members(cmd.Context())
			if err != nil {
				return err
			}
			if err := api.RemoveMember(cmd.Context(), args[0]); err != nil {
				return err
			}
			c.say("removed %s from the mesh", args[0])
			c.warnFewVoters(ms, args[0])
			return nil
		},
	}
	leave := &cobra.Command{
		Use:   "leave",
		Short: "Take this node out of the mesh (admin); stop its daemon afterwards",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			n, err := api.Node(cmd.Context())
			if err != nil {
				return err
			}
			ms, err := api.Members(cmd.Context())
			if err != nil {
				return err
			}
			if err := api.RemoveMember(cmd.Context(), n.PeerID); err != nil {
				return err
			}
			c.say("this node (%s) left the mesh; stop its daemon now", n.PeerID)
			c.warnFewVoters(ms, n.PeerID)
			return nil
		},
	}
	cmd.AddCommand(invite, members, remove, leave, c.meshPolicyCmd(), c.meshQuotaCmd())
	return cmd
}

// pinCmd is `artmesh pin ID [--version N]`: fetch and keep a full copy
// here, with a progress bar until it is pinned.
func (c *cli) pinCmd() *cobra.Command {
	var version int
	var wait bool
	cmd := &cobra.Command{
		Use:   "pin ID|NAME",
		Short: "Make this node fetch and keep a full copy of an artifact's version",
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
			p, err := api.Pin(cmd.Context(), id, version)
			if err != nil {
				return err
			}
			if wait {
				bar := c.newProgress(p.SizeBytes, "pin "+args[0])
				for p.State == client.PinQueued || p.State == client.PinFetching {
					select {
					case <-cmd.Context().Done():
						return cmd.Context().Err()
					case <-time.After(200 * time.Millisecond):
					}
					ps, err := api.Pins(cmd.Context())
					if err != nil {
						return err
					}
					for _, q := range ps {
						if q.ArtifactID == p.ArtifactID && q.Version == p.Version {
							p = q
						}
					}
					bar.set(p.BytesDone)
				}
				if p.State == client.PinFailed {
					bar.done(fmt.Errorf("failed"))
					return fmt.Errorf("pinning %s failed: %s", args[0], p.Error)
				}
				bar.done(nil)
			}
			if c.jsonOut {
				return printJSON(c.stdout, p)
			}
			c.say("%s version %d: %s (%s)", p.ArtifactID, p.Version, p.State, artmesh.FormatBytes(p.SizeBytes))
			return nil
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "the version to keep (default: the current one)")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait until the copy is complete, showing progress")
	return cmd
}

// unpinCmd is `artmesh unpin ID [--version N]`.
func (c *cli) unpinCmd() *cobra.Command {
	var version int
	cmd := &cobra.Command{
		Use:   "unpin ID|NAME",
		Short: "Stop keeping an artifact's version (default: every pinned version) on this node",
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
			if err := api.Unpin(cmd.Context(), id, version); err != nil {
				return err
			}
			c.say("unpinned %s", args[0])
			return nil
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "the version to stop keeping (default: all)")
	return cmd
}

// pinsCmd is `artmesh pins`.
func (c *cli) pinsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pins",
		Short: "List what this node keeps, with the state of each pin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			ps, err := api.Pins(cmd.Context())
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, map[string]any{"items": ps})
			}
			if c.quiet {
				for _, p := range ps {
					fmt.Fprintln(c.stdout, p.ArtifactID)
				}
				return nil
			}
			rows := make([][]string, 0, len(ps))
			for _, p := range ps {
				state := p.State
				if p.State == client.PinFetching {
					state = fmt.Sprintf("fetching %s of %s", artmesh.FormatBytes(p.BytesDone), artmesh.FormatBytes(p.SizeBytes))
				}
				if p.Error != "" {
					state += ": " + p.Error
				}
				rows = append(rows, []string{string(p.ArtifactID), strconv.Itoa(p.Version), artmesh.FormatBytes(p.SizeBytes), state})
			}
			return table(c.stdout, []string{"ID", "VERSION", "SIZE", "STATE"}, rows)
		},
	}
}

// warnFewVoters warns on stderr when, without the member gone, the mesh
// (whose members were ms) keeps fewer than 3 voters, counting the
// nonvoters the leader can give a vote to: with 2 voters, losing either
// stops every write; with 1, that node is a single point of failure.
func (c *cli) warnFewVoters(ms []client.Member, gone string) {
	voters, others := 0, 0
	for _, m := range ms {
		switch {
		case m.PeerID == gone:
		case m.Role == "voter":
			voters++
		case m.Role == "nonvoter":
			others++
		}
	}
	if voters+others >= 3 || voters+others == 0 {
		return
	}
	left := voters + others
	fmt.Fprintf(c.stderr, "warning: the mesh has %d member(s) left that can vote; a catalog needs 3 voters to survive the loss of one (with %d, %s). Add members with 'artmesh mesh invite'.\n",
		left, left, map[bool]string{true: "losing either stops every write", false: "this node is a single point of failure"}[left == 2])
}
