package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh"
)

// completeLimit is how many of the caller's own and shared artifacts a
// completion asks the node for (one page each).
const completeLimit = artmesh.MaxListLimit

// setupCompletion makes cobra's `completion` command visible with an
// example, and makes every command whose first argument is an artifact
// id complete ids (described by their names) from the node. get and info
// accept a name too, so they complete names as well.
func (c *cli) setupCompletion(root *cobra.Command) {
	root.CompletionOptions.HiddenDefaultCmd = false
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	for _, sub := range root.Commands() {
		switch sub.Name() {
		case "completion":
			sub.Example = `  source <(artmesh completion bash)          # this shell
  artmesh completion bash > /etc/bash_completion.d/artmesh
  artmesh completion zsh > "${fpath[1]}/_artmesh"
  artmesh completion fish > ~/.config/fish/completions/artmesh.fish`
			for _, sh := range sub.Commands() {
				sh.Example = "  artmesh completion " + sh.Name()
			}
		case "help":
			sub.Example = "  artmesh help get\n  artmesh help mesh members"
		}
	}
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if takesArtifactID(cmd) {
			names := cmd.Name() == "get" || cmd.Name() == "info"
			cmd.ValidArgsFunction = c.completeArtifacts(names)
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// takesArtifactID reports whether cmd's first argument is an artifact id
// (for get and info: an id or a name).
func takesArtifactID(cmd *cobra.Command) bool {
	switch cmd.CommandPath() {
	case "artmesh get", "artmesh info", "artmesh versions", "artmesh update", "artmesh rm",
		"artmesh share", "artmesh unshare", "artmesh access", "artmesh url", "artmesh pin",
		"artmesh unpin", "artmesh placement", "artmesh replication":
		return true
	}
	return false
}

// completeArtifacts completes the first argument with the ids of the
// artifacts the caller owns or was given, each described by its name;
// with names, the names themselves too. Later arguments complete as
// files. A node that cannot be asked completes nothing.
func (c *cli) completeArtifacts(names bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveDefault
		}
		api, err := c.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError | cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		seenID := map[artmesh.ArtifactID]bool{}
		nameCount := map[string]int{}
		var order []string
		for _, list := range []func() (artmesh.Page[artmesh.Artifact], error){
			func() (artmesh.Page[artmesh.Artifact], error) {
				return api.ListArtifacts(cmd.Context(), artmesh.Filter{Limit: completeLimit})
			},
			func() (artmesh.Page[artmesh.Artifact], error) {
				return api.ListShared(cmd.Context(), artmesh.Filter{Limit: completeLimit})
			},
		} {
			page, err := list()
			if err != nil {
				return nil, cobra.ShellCompDirectiveError | cobra.ShellCompDirectiveNoFileComp
			}
			for _, a := range page.Items {
				if seenID[a.ID] {
					continue
				}
				seenID[a.ID] = true
				if strings.HasPrefix(string(a.ID), toComplete) {
					out = append(out, cobra.CompletionWithDesc(string(a.ID), a.Name))
				}
				if nameCount[a.Name] == 0 {
					order = append(order, a.Name)
				}
				nameCount[a.Name]++
			}
		}
		if names {
			for _, n := range order {
				// Only names that name one artifact: an ambiguous one
				// would be refused.
				if nameCount[n] == 1 && strings.HasPrefix(n, toComplete) && !strings.HasPrefix(n, artmesh.ArtifactPrefix) {
					out = append(out, cobra.Completion(n))
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
