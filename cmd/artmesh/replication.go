package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh/api/apitype"
	"github.com/artmesh/artmesh/api/client"
)

// replicasFlag defines --replicas on a write command.
func replicasFlag(cmd *cobra.Command, n *int) {
	cmd.Flags().IntVar(n, "replicas", 0, "answer only once this many members hold the content durably (default: the mesh policy's write_replicas)")
}

// checkReplicas refuses a --replicas below 0.
func checkReplicas(n int) error {
	if n < 0 {
		return usageErrorf("--replicas must be 1 or more (leave it out for the mesh policy's write_replicas)")
	}
	return nil
}

// shortPeer shortens a peer id for a table: the end of it, where ids of
// one key type differ (they all begin 12D3KooW).
func shortPeer(id string) string {
	const keep = 8
	if utf8.RuneCountInString(id) <= keep+4 {
		return id
	}
	return "…" + id[len(id)-keep:]
}

// placementCmd is `artmesh placement ID`.
func (c *cli) placementCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "placement ID|NAME",
		Short: "Show where each version of an artifact is held and whether it has its copies",
		Long: `Show, for each version of an artifact (oldest first), its replication
factor, its state (ok, repairing, under_replicated) and the members that
hold it, and the members fetching it right now (partial holders, which
serve what they have to other fetchers). The table shortens peer ids to
their last characters; --json gives them whole, with the members
allocated to hold each version.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			id, err := c.artifactArg(cmd.Context(), api, args[0])
			if err != nil {
				return err
			}
			ps, err := api.Placement(cmd.Context(), id)
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, items(ps))
			}
			rows := make([][]string, 0, len(ps))
			shorten := func(ids []string) string {
				short := make([]string, len(ids))
				for i, h := range ids {
					short[i] = shortPeer(h)
				}
				return orDash(strings.Join(short, ", "))
			}
			for _, p := range ps {
				state := p.State
				if p.State != client.PlacementOK {
					state = fmt.Sprintf("%s (%d of %d)", p.State, len(p.Holders), p.Factor)
				}
				rows = append(rows, []string{strconv.Itoa(p.Version), strconv.Itoa(p.Factor), state, shorten(p.Holders), shorten(p.Fetching)})
			}
			return table(c.stdout, []string{"VERSION", "FACTOR", "STATE", "HOLDERS", "FETCHING"}, rows)
		},
	}
}

// replicationCmd is `artmesh replication ID N`.
func (c *cli) replicationCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "replication ID|NAME N",
		Short: "Set how many members keep every version of an artifact you own (0: the mesh policy)",
		Long: `Set how many members keep every version of an artifact you own; 0 makes it
follow the mesh policy's replication factor again. The leader allocates
the copies in the background: see artmesh placement ID.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 0 {
				return usageErrorf("N must be a whole number of members, or 0 for the mesh policy: got %q", args[1])
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			id, err := c.artifactArg(cmd.Context(), api, args[0])
			if err != nil {
				return err
			}
			if err := api.SetReplication(cmd.Context(), id, n); err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, map[string]int{"factor": n})
			}
			if n == 0 {
				c.say("%s follows the mesh policy's replication factor; see artmesh placement %s", args[0], args[0])
			} else {
				members := "members"
				if n == 1 {
					members = "member"
				}
				c.say("%s: every version is kept on %d %s; see artmesh placement %s", args[0], n, members, args[0])
			}
			return nil
		},
	}
}

// meshPolicyCmd is `artmesh mesh policy [--replication-factor N]
// [--write-replicas M]`.
func (c *cli) meshPolicyCmd() *cobra.Command {
	var factor, writes int
	var nodeInvite bool
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Show the mesh's replication policy, or change it (admin)",
		Long: `Show the mesh's replication policy: how many members keep every version
(replication factor) and how many must hold a write before it is
acknowledged (write replicas). With --replication-factor or
--write-replicas, change it (admin only); a value not given is kept.
--node-agents-invite=true lets the agent each node got when it joined
create invites (off by default: only mesh admins may).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rf, wr *int
			if cmd.Flags().Changed("replication-factor") {
				rf = &factor
			}
			if cmd.Flags().Changed("write-replicas") {
				wr = &writes
			}
			var ni *bool
			if cmd.Flags().Changed("node-agents-invite") {
				ni = &nodeInvite
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			var p client.Policy
			if rf == nil && wr == nil && ni == nil {
				p, err = api.MeshPolicy(cmd.Context())
			} else {
				p, err = api.SetMeshPolicyRequest(cmd.Context(), apitype.PolicyRequest{ReplicationFactor: rf, WriteReplicas: wr, NodeAgentsInvite: ni})
			}
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, p)
			}
			return fields(c.stdout,
				"replication factor", strconv.Itoa(p.ReplicationFactor),
				"write replicas", strconv.Itoa(p.WriteReplicas),
				"node agents invite", yesNo(p.NodeAgentsInvite),
			)
		},
	}
	cmd.Flags().IntVar(&factor, "replication-factor", 0, "how many members keep every version (admin)")
	cmd.Flags().IntVar(&writes, "write-replicas", 0, "how many members must hold a write before it is acknowledged (admin)")
	cmd.Flags().BoolVar(&nodeInvite, "node-agents-invite", false, "let node agents create invites (admin)")
	return cmd
}
