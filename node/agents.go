package node

import (
	"context"
	"fmt"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
)

// requireAdmin refuses a caller that is not a mesh admin.
func requireAdmin(caller artmesh.Agent, what string) error {
	if !caller.Admin {
		return artmesh.E(artmesh.PermissionDenied, "only a mesh admin may "+what)
	}
	return nil
}

// requireAgentManager refuses a caller that may not manage ordinary
// agents and groups: mesh admins and node agents may.
func requireAgentManager(caller artmesh.Agent) error {
	if !caller.ManagesAgents() {
		return artmesh.E(artmesh.PermissionDenied, "only a mesh admin or a node's agent may manage agents and groups")
	}
	return nil
}

// CreateAgent creates an agent, puts it in groups (creating those that do
// not exist) and returns it with its API key, which is never shown again.
// Mesh admins and node agents may; only mesh admins may create admins.
func (n *Node) CreateAgent(ctx context.Context, caller artmesh.Agent, id artmesh.AgentID, groups []string, admin bool) (artmesh.Agent, string, error) {
	if err := requireAgentManager(caller); err != nil {
		return artmesh.Agent{}, "", err
	}
	if admin {
		if err := requireAdmin(caller, "create admin agents"); err != nil {
			return artmesh.Agent{}, "", err
		}
	}
	for _, g := range groups {
		if _, err := n.cat.Group(g); err == nil {
			if err := requireAdmin(caller, "put an agent in an existing group"); err != nil {
				return artmesh.Agent{}, "", err
			}
		}
	}
	if err := artmesh.ValidateAgentID(string(id)); err != nil {
		return artmesh.Agent{}, "", err
	}
	for _, g := range groups {
		if err := artmesh.ValidateGroupName(g); err != nil {
			return artmesh.Agent{}, "", err
		}
	}
	key := acl.NewAPIKey()
	mine := keyUnused(ctx)
	a, err := n.cat.CreateAgent(ctx, catalog.CreateAgent{
		Agent:         artmesh.Agent{ID: id, Groups: groups, Admin: admin, CreatedAt: time.Now().UTC()},
		KeyHash:       acl.HashKey(key),
		NewGroupsOnly: !caller.Admin,
	})
	if err != nil {
		return artmesh.Agent{}, "", err
	}
	if err := replayedSecret(ctx, mine, "created agent "+string(id), "rotate its key (POST /v1/agents/"+string(id)+"/keys) if it was lost"); err != nil {
		return artmesh.Agent{}, "", err
	}
	return a, key, nil
}

// Agents lists every agent. Mesh admins and node agents may.
func (n *Node) Agents(_ context.Context, caller artmesh.Agent) ([]artmesh.Agent, error) {
	if err := requireAgentManager(caller); err != nil {
		return nil, err
	}
	return n.cat.Agents()
}

// DeleteAgent deletes an agent and its keys. Only mesh admins may, and an
// agent that still owns artifacts cannot be deleted (Conflict).
func (n *Node) DeleteAgent(ctx context.Context, caller artmesh.Agent, id artmesh.AgentID) error {
	if err := requireAdmin(caller, "delete agents"); err != nil {
		return err
	}
	if id == caller.ID {
		return artmesh.E(artmesh.Conflict, "an agent cannot delete itself")
	}
	return n.cat.DeleteAgent(ctx, id)
}

// RotateKey gives an agent a new API key and revokes its old ones. Only
// mesh admins may.
func (n *Node) RotateKey(ctx context.Context, caller artmesh.Agent, id artmesh.AgentID) (artmesh.Agent, string, error) {
	if err := requireAdmin(caller, "set agents' keys"); err != nil {
		return artmesh.Agent{}, "", err
	}
	key := acl.NewAPIKey()
	mine := keyUnused(ctx)
	if err := n.cat.SetAgentKey(ctx, id, acl.HashKey(key)); err != nil {
		return artmesh.Agent{}, "", err
	}
	if err := replayedSecret(ctx, mine, "gave agent "+string(id)+" a new API key", "rotate it again with a new Idempotency-Key if it was lost"); err != nil {
		return artmesh.Agent{}, "", err
	}
	a, err := n.cat.Agent(id)
	if err != nil {
		return artmesh.Agent{}, "", err
	}
	return a, key, nil
}

// Groups lists every group. Mesh admins and node agents may.
func (n *Node) Groups(_ context.Context, caller artmesh.Agent) ([]artmesh.Group, error) {
	if err := requireAgentManager(caller); err != nil {
		return nil, err
	}
	return n.cat.Groups()
}

// PutGroup creates a group or replaces its members. Mesh admins and node
// agents may create one; only mesh admins may change an existing group,
// since its members read what is shared with it.
func (n *Node) PutGroup(ctx context.Context, caller artmesh.Agent, name string, members []artmesh.AgentID) (artmesh.Group, error) {
	if err := requireAgentManager(caller); err != nil {
		return artmesh.Group{}, err
	}
	if _, err := n.cat.Group(name); err == nil {
		if err := requireAdmin(caller, "change an existing group"); err != nil {
			return artmesh.Group{}, err
		}
	}
	if err := artmesh.ValidateGroupName(name); err != nil {
		return artmesh.Group{}, err
	}
	for _, m := range members {
		if err := artmesh.ValidateAgentID(string(m)); err != nil {
			return artmesh.Group{}, fmt.Errorf("member: %w", err)
		}
	}
	if !caller.Admin {
		return n.cat.CreateGroup(ctx, name, members)
	}
	return n.cat.PutGroup(ctx, name, members)
}

// DeleteGroup deletes a group; artifacts shared with it are no longer
// readable through it. Only mesh admins may.
func (n *Node) DeleteGroup(ctx context.Context, caller artmesh.Agent, name string) error {
	if err := requireAdmin(caller, "delete groups"); err != nil {
		return err
	}
	return n.cat.DeleteGroup(ctx, name)
}
