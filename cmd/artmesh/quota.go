package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// quotaFlags are the limit flags of `agent quota` and `mesh quota`, as
// given: a size or count, "default" (0) or "unlimited" (-1).
type quotaFlags struct {
	bytes, staged, uploads, streams string
}

func (f *quotaFlags) add(cmd *cobra.Command, zero string) {
	fl := cmd.Flags()
	fl.StringVar(&f.bytes, "bytes", "", "limit on stored plus staged bytes: a size such as 10GiB, "+zero+" or unlimited")
	fl.StringVar(&f.staged, "staged", "", "limit on the declared sizes of open uploads: a size, "+zero+" or unlimited")
	fl.StringVar(&f.uploads, "uploads", "", "limit on open uploads: a count, "+zero+" or unlimited")
	fl.StringVar(&f.streams, "streams", "", "limit on event streams held open on one node: a count, "+zero+" or unlimited")
}

// request returns the change the flags ask for, and whether they ask for
// any.
func (f *quotaFlags) request(cmd *cobra.Command, zero string) (client.QuotaRequest, bool, error) {
	var req client.QuotaRequest
	changed := false
	for _, x := range []struct {
		flag  string
		val   string
		size  bool
		field **int64
	}{
		{"bytes", f.bytes, true, &req.Bytes},
		{"staged", f.staged, true, &req.Staged},
		{"uploads", f.uploads, false, &req.Uploads},
		{"streams", f.streams, false, &req.Streams},
	} {
		if !cmd.Flags().Changed(x.flag) {
			continue
		}
		n, err := parseLimit(x.val, x.size, zero)
		if err != nil {
			return req, false, usageErrorf("--%s: %v", x.flag, err)
		}
		*x.field = &n
		changed = true
	}
	return req, changed, nil
}

// parseLimit reads a limit: zero ("default" or "none") is 0, "unlimited"
// is -1, else a positive size or count.
func parseLimit(s string, size bool, zero string) (int64, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case zero, "0":
		return 0, nil
	case "unlimited", "-1":
		return artmesh.Unlimited, nil
	}
	var n int64
	var err error
	if size {
		n, err = parseByteSize(s)
	} else {
		n, err = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			err = fmt.Errorf("%q is not a count", s)
		}
	}
	if err != nil {
		return 0, err
	}
	if n <= 0 {
		return 0, fmt.Errorf("give a positive limit, %s or unlimited", zero)
	}
	return n, nil
}

// limitText formats a limit for a person.
func limitText(n int64, size bool) string {
	switch {
	case n == artmesh.Unlimited:
		return "unlimited"
	case n == 0:
		return "-"
	case size:
		return artmesh.FormatBytes(n)
	}
	return strconv.FormatInt(n, 10)
}

// agentQuotaCmd is `artmesh agent quota AGENT [--bytes S] [--staged S]
// [--uploads N] [--streams N]`.
func (c *cli) agentQuotaCmd() *cobra.Command {
	var f quotaFlags
	cmd := &cobra.Command{
		Use:   "quota AGENT",
		Short: "Show an agent's usage and limits, or set its own limits (admin)",
		Long: `Show what an agent holds (stored bytes, staged bytes of open uploads,
open uploads, event streams on this node) against its limits, and where
each limit comes from. An agent may see its own; mesh admins and node agents anyone's.

With --bytes, --staged, --uploads or --streams, set the agent's own limits
(admin only); a limit not given is kept, "default" returns it to the mesh
default ('artmesh mesh quota'), "unlimited" lifts it. Admins are unlimited
unless their own limits say otherwise. Writes over a byte limit are refused
with 507 quota_exceeded, an upload or stream over a count with 429 too_many.`,
		Example: `  artmesh agent quota bob
  artmesh agent quota bob --bytes 10GiB --staged 1GiB --uploads 10 --streams 8
  artmesh agent quota bob --bytes default --streams unlimited`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, set, err := f.request(cmd, "default")
			if err != nil {
				return err
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			var st artmesh.QuotaStatus
			if set {
				st, err = api.SetQuota(cmd.Context(), artmesh.AgentID(args[0]), req)
			} else {
				st, err = api.Quota(cmd.Context(), artmesh.AgentID(args[0]))
			}
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, st)
			}
			return printQuota(c, st)
		},
	}
	f.add(cmd, "default")
	return cmd
}

// printQuota prints an agent's usage against its limits.
func printQuota(c *cli, st artmesh.QuotaStatus) error {
	source := func(own, def int64) string {
		switch {
		case own != 0:
			return "agent"
		case st.Admin:
			return "admin"
		case def != 0:
			return "mesh default"
		}
		return "none set"
	}
	u, l, o, d := st.Usage, st.Limits, st.Override, st.Defaults
	role := ""
	if st.Admin {
		role = " (admin)"
	}
	fmt.Fprintf(c.stdout, "agent %s%s\n", st.Agent, role)
	return table(c.stdout, []string{"", "USED", "LIMIT", "FROM"}, [][]string{
		{"bytes", artmesh.FormatBytes(u.Bytes + u.Staged), limitText(l.Bytes, true), source(o.Bytes, d.Bytes)},
		{"staged", artmesh.FormatBytes(u.Staged), limitText(l.Staged, true), source(o.Staged, d.Staged)},
		{"uploads", strconv.FormatInt(u.Uploads, 10), limitText(l.Uploads, false), source(o.Uploads, d.Uploads)},
		{"streams", strconv.FormatInt(u.Streams, 10), limitText(l.Streams, false), source(o.Streams, d.Streams)},
	})
}

// meshQuotaCmd is `artmesh mesh quota [--bytes S] [--staged S] [--uploads
// N] [--streams N]`.
func (c *cli) meshQuotaCmd() *cobra.Command {
	var f quotaFlags
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Show the mesh's default quotas, or change them (admin)",
		Long: `Show the limits that apply to agents that are not admins and have no
limits of their own ('artmesh agent quota'). With --bytes, --staged,
--uploads or --streams, change them (admin only); a limit not given is
kept, "none" removes it. A mesh that never set defaults limits nobody.`,
		Example: `  artmesh mesh quota
  artmesh mesh quota --bytes 10GiB --staged 1GiB --uploads 10 --streams 8
  artmesh mesh quota --streams none`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, set, err := f.request(cmd, "none")
			if err != nil {
				return err
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			var q artmesh.Quota
			if set {
				q, err = api.SetMeshQuota(cmd.Context(), req)
			} else {
				q, err = api.MeshQuota(cmd.Context())
			}
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, q)
			}
			return fields(c.stdout,
				"bytes", limitText(q.Bytes, true),
				"staged", limitText(q.Staged, true),
				"uploads", limitText(q.Uploads, false),
				"streams", limitText(q.Streams, false),
			)
		},
	}
	f.add(cmd, "none")
	return cmd
}
