package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
)

// Authority at the leader. Membership is identity, not authority: a member
// that forwards a write proves only which node it is. So a forwarded write
// carries the credential that the agent it acts for presented to that
// node (never into the log), and the leader authenticates it against its
// own committed state and checks that agent's rights for that write, as
// the node that took the request did (consul's ACL check at the leader
// for forwarded RPCs). Writes a node makes for itself (its holder,
// fetching and member rows) need no agent, but only the node whose stream
// carries them may make them. A write that fails either check is refused
// before it reaches the log.
//
// So a compromised member can act only as the agents whose credentials it
// was shown, within their rights, and only until it is removed.

// Credential is what the agent a write acts for presented to the node
// that took its request: an API key, or a capability token (an upload
// URL's). It travels with a forwarded write over the member-authenticated
// stream to the leader and is never written to the log.
type Credential struct {
	APIKey string `json:"api_key,omitempty"`
	Token  string `json:"token,omitempty"`
}

// empty reports whether no credential was presented.
func (c Credential) empty() bool { return c.APIKey == "" && c.Token == "" }

type credentialKey struct{}

// WithCredential returns ctx carrying the credential of the agent that the
// writes made under ctx act for. The API puts the caller's key there once
// it has authenticated it.
func WithCredential(ctx context.Context, c Credential) context.Context {
	return context.WithValue(ctx, credentialKey{}, c)
}

// CredentialOf returns the credential ctx carries (WithCredential), empty
// when none.
func CredentialOf(ctx context.Context) Credential {
	c, _ := ctx.Value(credentialKey{}).(Credential)
	return c
}

// Principal is who a forwarded write acts for, as the leader's
// Config.Authenticate found from its credential.
type Principal struct {
	// Agent is the authenticated agent.
	Agent artmesh.Agent
	// Upload, for a principal authenticated by an upload URL's token, is
	// the one upload it may write to; such a principal may do nothing
	// else.
	Upload string
}

// ForwardRequest is what a follower sends the leader: the write's log
// entry (in its envelope) and the credential of the agent it acts for.
type ForwardRequest struct {
	Entry      []byte     `json:"entry"`
	Credential Credential `json:"credential,omitzero"`
	// Applied is the follower's applied index: the leader checks the
	// write against a state at least as new, since the follower checked
	// it against that one (a key or a share made a moment ago).
	Applied uint64 `json:"applied,omitempty"`
}

// refused is the error of a forwarded write beyond its authority.
func refused(t commandType, format string, args ...any) error {
	return artmesh.E(artmesh.Op("catalog.ApplyForwarded"), artmesh.PermissionDenied,
		fmt.Sprintf("the leader refused a forwarded %s: %s", t, fmt.Sprintf(format, args...)))
}

// needsAgent reports whether a command acts for an agent (and so needs
// its credential), as opposed to a node's own bookkeeping.
func needsAgent(t commandType) bool {
	switch t {
	case createArtifactType, addVersionType, deleteVersionType, deleteArtifactType,
		shareType, unshareType, createAgentType, deleteAgentType, setAgentKeyType,
		putGroupType, deleteGroupType, createUploadType, uploadReceivedType,
		confirmUploadType, deleteUploadType, issueTokenType, revokeTokenType,
		createInviteType, deleteMemberType, setPolicyType, setReplicationType, setQuotaType:
		return true
	}
	return false
}

// clockSlack is how far ahead of the leader's clock a housekeeping write
// may say it is.
const clockSlack = 5 * time.Minute

// authorizeForwarded checks that the write in entry (an envelope) may be
// made by the member from acting for p (nil when no credential came with
// it), against the leader's committed state s, at the leader's time now.
func (s *store) authorizeForwarded(entry []byte, from string, p *Principal, now time.Time) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = invalid("catalog.ApplyForwarded", "malformed catalog entry: %v", r)
		}
	}()
	inner := entry
	if len(inner) > 0 && commandType(inner[0]) == forwardedType {
		if _, _, inner, err = unwrapForwarded(inner[1:]); err != nil {
			return invalid("catalog.ApplyForwarded", "malformed forwarded entry: %v", err)
		}
	}
	if len(inner) > 0 && commandType(inner[0]) == keyedType {
		k, entry, err := unwrapKeyed(inner[1:])
		if err != nil {
			return invalid("catalog.ApplyForwarded", "malformed keyed entry: %v", err)
		}
		// A key belongs to the agent whose credential came with it.
		if p == nil || p.Agent.ID != k.Agent {
			return refused(keyedType, "it carries an idempotency key of %s, not of the agent whose credential came with it", k.Agent)
		}
		inner = entry
	}
	if len(inner) > 0 && commandType(inner[0]) == conditionalType {
		// A precondition needs no right of its own: it applies to the
		// write it wraps, which is checked below.
		_, entry, err := unwrapConditional(inner[1:])
		if err != nil {
			return invalid("catalog.ApplyForwarded", "malformed conditional entry: %v", err)
		}
		inner = entry
	}
	if len(inner) == 0 {
		return invalid("catalog.ApplyForwarded", "empty catalog entry")
	}
	t, payload := commandType(inner[0]), inner[1:]
	if needsAgent(t) {
		if p == nil {
			return refused(t, "it carries no credential of the agent it acts for")
		}
		if p.Upload != "" && t != uploadReceivedType {
			return refused(t, "an upload URL's token may only upload")
		}
	}
	tx := s.db.Txn(false)
	defer tx.Abort()
	return authorizeTxn(tx, t, payload, from, p, now)
}

// decodeAs decodes a command's payload, refusing one that does not decode.
func decodeAs[T any](t commandType, payload []byte) (T, error) {
	var cmd T
	if err := json.Unmarshal(payload, &cmd); err != nil {
		return cmd, invalid("catalog.ApplyForwarded", "a forwarded %s does not decode: %v", t, err)
	}
	return cmd, nil
}

// authorizeTxn is authorizeForwarded's table of rules.
func authorizeTxn(tx *Txn, t commandType, payload []byte, from string, p *Principal, now time.Time) error {
	var agent artmesh.Agent
	if p != nil {
		agent = p.Agent
	}
	mustAdmin := func(what string) error {
		if !agent.Admin {
			return refused(t, "only a mesh admin may %s, and %s is not one", what, agent.ID)
		}
		return nil
	}
	right := func(id artmesh.ArtifactID, r artmesh.Right) error {
		if ok, exists := canTxn(tx, agent, id, r); ok || !exists {
			return nil // one that does not exist fails as not found, for everyone alike
		}
		return refused(t, "%s may not %s artifact %s", agent.ID, r, id)
	}
	switch t {
	case noopType:
		return nil
	case createArtifactType:
		cmd, err := decodeAs[CreateArtifact](t, payload)
		if err != nil {
			return err
		}
		if cmd.Owner != agent.ID {
			return refused(t, "%s may not create an artifact owned by %s", agent.ID, cmd.Owner)
		}
		return nil
	case addVersionType:
		cmd, err := decodeAs[AddVersion](t, payload)
		if err != nil {
			return err
		}
		if cmd.By != agent.ID {
			return refused(t, "%s may not make a version in the name of %s", agent.ID, cmd.By)
		}
		return right(cmd.ArtifactID, artmesh.Write)
	case deleteVersionType:
		cmd, err := decodeAs[DeleteVersion](t, payload)
		if err != nil {
			return err
		}
		return right(cmd.ArtifactID, artmesh.Write)
	case deleteArtifactType:
		cmd, err := decodeAs[deleteArtifactCmd](t, payload)
		if err != nil {
			return err
		}
		return right(cmd.ID, artmesh.Delete)
	case shareType, unshareType:
		cmd, err := decodeAs[grantCmd](t, payload)
		if err != nil {
			return err
		}
		return right(cmd.ID, artmesh.Share)
	case setReplicationType:
		cmd, err := decodeAs[setReplicationCmd](t, payload)
		if err != nil {
			return err
		}
		return right(cmd.ID, artmesh.Share)
	case createAgentType:
		cmd, err := decodeAs[CreateAgent](t, payload)
		if err != nil {
			return err
		}
		if cmd.Agent.Admin || cmd.Agent.Node != "" {
			return mustAdmin("create an admin or node agent")
		}
		if !agent.ManagesAgents() {
			return refused(t, "only a mesh admin or a node's agent may create agents, and %s is neither", agent.ID)
		}
		if d := cmd.Agent.CreatedAt.Sub(now); d > clockSlack || d < -clockSlack {
			// The creation time names the agent's incarnation: one set
			// in the past could pose as a deleted agent of the same id.
			return refused(t, "the agent's creation time %s is not the leader's time", cmd.Agent.CreatedAt.Format(time.RFC3339))
		}
		if !agent.Admin && len(cmd.Agent.Groups) > 0 && !cmd.NewGroupsOnly {
			// So that the state machine refuses it too, should a group
			// appear before it applies.
			return refused(t, "a node agent's agent must be made in new groups only")
		}
		for _, g := range cmd.Agent.Groups {
			if raw, err := tx.First(tableGroups, indexID, g); err != nil {
				return internal("catalog.ApplyForwarded", err)
			} else if raw != nil {
				return mustAdmin("put an agent in an existing group")
			}
		}
		return nil
	case deleteAgentType:
		return mustAdmin("delete agents")
	case setAgentKeyType:
		return mustAdmin("set another agent's key")
	case putGroupType:
		cmd, err := decodeAs[putGroupCmd](t, payload)
		if err != nil {
			return err
		}
		if !agent.ManagesAgents() {
			return refused(t, "only a mesh admin or a node's agent may create groups, and %s is neither", agent.ID)
		}
		if !agent.Admin && !cmd.CreateOnly {
			return refused(t, "a node agent may only create groups (create_only)")
		}
		if raw, err := tx.First(tableGroups, indexID, cmd.Name); err != nil {
			return internal("catalog.ApplyForwarded", err)
		} else if raw != nil {
			return mustAdmin("change an existing group")
		}
		return nil
	case deleteGroupType:
		return mustAdmin("delete groups")
	case createUploadType:
		cmd, err := decodeAs[CreateUpload](t, payload)
		if err != nil {
			return err
		}
		if cmd.Upload.Owner != agent.ID {
			return refused(t, "%s may not open an upload owned by %s", agent.ID, cmd.Upload.Owner)
		}
		if cmd.Upload.ArtifactID != "" {
			return right(cmd.Upload.ArtifactID, artmesh.Write)
		}
		return nil
	case uploadReceivedType:
		cmd, err := decodeAs[UploadReceived](t, payload)
		if err != nil {
			return err
		}
		if cmd.Holder != "" && cmd.Holder != from {
			return refused(t, "member %s may not say that %s received an upload", from, cmd.Holder)
		}
		if p.Upload != "" && p.Upload != cmd.ID {
			return refused(t, "the token is for upload %s, not %s", p.Upload, cmd.ID)
		}
		return ownUploadTxn(tx, t, cmd.ID, agent)
	case confirmUploadType:
		cmd, err := decodeAs[ConfirmUpload](t, payload)
		if err != nil {
			return err
		}
		return ownUploadTxn(tx, t, cmd.ID, agent)
	case deleteUploadType:
		cmd, err := decodeAs[deleteUploadCmd](t, payload)
		if err != nil {
			return err
		}
		return ownUploadTxn(tx, t, cmd.ID, agent)
	case issueTokenType:
		cmd, err := decodeAs[issueTokenCmd](t, payload)
		if err != nil {
			return err
		}
		if cmd.Token.Agent != agent.ID {
			return refused(t, "%s may not issue a token in the name of %s", agent.ID, cmd.Token.Agent)
		}
		if cmd.Token.Issuer != from {
			return refused(t, "member %s may not record a token that %q signs", from, cmd.Token.Issuer)
		}
		if artmesh.ValidArtifactID(cmd.Token.Target) {
			return right(artmesh.ArtifactID(cmd.Token.Target), artmesh.Read)
		}
		return ownUploadTxn(tx, t, cmd.Token.Target, agent)
	case revokeTokenType:
		cmd, err := decodeAs[revokeTokenCmd](t, payload)
		if err != nil {
			return err
		}
		raw, err := tx.First(tableTokens, indexID, cmd.ID)
		if err != nil {
			return internal("catalog.ApplyForwarded", err)
		}
		if raw != nil && raw.(*Token).Agent == agent.ID || agent.Admin {
			return nil
		}
		return refused(t, "only the agent that granted a token, or a mesh admin, may revoke it")
	case putPinType:
		cmd, err := decodeAs[putPinCmd](t, payload)
		if err != nil {
			return err
		}
		// A node's pins are its own bookkeeping (its node checked the
		// agent's right to pin): a member may keep anything on itself.
		if cmd.Pin.Node != from {
			return refused(t, "member %s may not pin on %s", from, cmd.Pin.Node)
		}
		return nil
	case deletePinType:
		cmd, err := decodeAs[deletePinCmd](t, payload)
		if err != nil {
			return err
		}
		if cmd.Node != from {
			return refused(t, "member %s may not unpin on %s", from, cmd.Node)
		}
		return nil
	case createInviteType:
		cmd, err := decodeAs[CreateInvite](t, payload)
		if err != nil {
			return err
		}
		if cmd.Invite.CreatedBy != agent.ID {
			return refused(t, "%s may not make an invite in the name of %s", agent.ID, cmd.Invite.CreatedBy)
		}
		if agent.Admin {
			return nil
		}
		if pol, err := policyTxn(tx); err == nil && pol.NodeAgentsInvite && agent.Node != "" {
			return nil
		}
		return mustAdmin("invite nodes")
	case deleteMemberType:
		cmd, err := decodeAs[deleteMemberCmd](t, payload)
		if err != nil {
			return err
		}
		if cmd.PeerID == from && agent.ManagesNode(from) {
			return nil // a node leaves
		}
		return mustAdmin("remove members")
	case setPolicyType:
		return mustAdmin("change the mesh policy")
	case setQuotaType:
		return mustAdmin("set quotas")
	case putMemberType:
		cmd, err := decodeAs[PutMember](t, payload)
		if err != nil {
			return err
		}
		if cmd.Member.PeerID != from {
			return refused(t, "member %s may only record its own row, not %s", from, cmd.Member.PeerID)
		}
		raw, err := tx.First(tableMembers, indexID, cmd.Member.PeerID)
		if err != nil {
			return internal("catalog.ApplyForwarded", err)
		}
		if raw == nil {
			return refused(t, "%s is not a member; nodes join through an invite", cmd.Member.PeerID)
		}
		if old := raw.(*Member); cmd.Member.Agent != "" && old.Agent != cmd.Member.Agent {
			return refused(t, "a member may not change the agent recorded for it")
		}
		return nil
	case addHolderType, removeHolderType:
		cmd, err := decodeAs[holderCmd](t, payload)
		if err != nil {
			return err
		}
		if cmd.Peer != from {
			return refused(t, "member %s may not change the holder rows of %s", from, cmd.Peer)
		}
		return nil
	case putFetchingType:
		cmd, err := decodeAs[putFetchingCmd](t, payload)
		if err != nil {
			return err
		}
		for _, r := range cmd.Rows {
			if r.Peer != from {
				return refused(t, "member %s may not record fetches of %s", from, r.Peer)
			}
		}
		return nil
	case dropFetchingType:
		cmd, err := decodeAs[dropFetchingCmd](t, payload)
		if err != nil {
			return err
		}
		if !cmd.Before.IsZero() && cmd.Before.After(now.Add(clockSlack-FetchingStale)) {
			// Only stale rows (FetchingStale old) of other peers go.
			return refused(t, "rows newer than %s may not be dropped as stale", FetchingStale)
		}
		for _, r := range cmd.Rows {
			if r.Peer != from && cmd.Before.IsZero() {
				return refused(t, "member %s may not drop fetches of %s", from, r.Peer)
			}
		}
		return nil
	case consumeInviteType, updatePlacementType, expireUploadsType, purgeTokensType:
		// Made by the leader itself (joins, the allocator), never
		// forwarded.
		return refused(t, "only the leader makes it")
	}
	return refused(t, "no member may forward it")
}

// ownUploadTxn checks that upload id is agent's.
func ownUploadTxn(tx *Txn, t commandType, id string, agent artmesh.Agent) error {
	raw, err := tx.First(tableUploads, indexID, id)
	if err != nil {
		return internal("catalog.ApplyForwarded", err)
	}
	if raw == nil {
		return nil // the write will fail as not found, for everyone alike
	}
	if u := raw.(*Upload); u.Owner != agent.ID {
		return refused(t, "upload %s is not %s's", id, agent.ID)
	}
	return nil
}

// canTxn reports whether agent holds right on artifact id by the state in
// tx, and whether the artifact exists.
func canTxn(tx *Txn, agent artmesh.Agent, id artmesh.ArtifactID, right artmesh.Right) (ok, exists bool) {
	raw, err := tx.First(tableArtifacts, indexID, id)
	if err != nil || raw == nil {
		return false, false
	}
	acc := raw.(*artifactRow).access()
	return acl.Can(agent.ID, agent.Groups, right, acl.Subject{Owner: acc.Owner, Agents: acc.Agents, Groups: acc.Groups}), true
}
