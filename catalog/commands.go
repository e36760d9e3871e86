package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/artmesh/artmesh"
)

// commandType is the first byte of every catalog log entry and says how
// the JSON payload after it is decoded. The values are stored in the Raft
// log and in peers' logs: never change or reuse one, only append.
type commandType uint8

const (
	createArtifactType commandType = 1
	addVersionType     commandType = 2
	deleteVersionType  commandType = 3
	deleteArtifactType commandType = 4
	shareType          commandType = 5
	unshareType        commandType = 6
	createAgentType    commandType = 7
	deleteAgentType    commandType = 8
	setAgentKeyType    commandType = 9
	putGroupType       commandType = 10
	deleteGroupType    commandType = 11

	// noopType changes nothing: a leader applies one to commit an entry
	// of its own term (see Catalog.ReadIndex).
	noopType commandType = 26
)

type noopCmd struct{}

func (noopCmd) commandType() commandType { return noopType }

// String returns the command's name, as used in error operations.
func (t commandType) String() string {
	switch t {
	case createArtifactType:
		return "CreateArtifact"
	case addVersionType:
		return "AddVersion"
	case deleteVersionType:
		return "DeleteVersion"
	case deleteArtifactType:
		return "DeleteArtifact"
	case shareType:
		return "Share"
	case unshareType:
		return "Unshare"
	case createAgentType:
		return "CreateAgent"
	case deleteAgentType:
		return "DeleteAgent"
	case setAgentKeyType:
		return "SetAgentKey"
	case putGroupType:
		return "PutGroup"
	case deleteGroupType:
		return "DeleteGroup"
	case createUploadType:
		return "CreateUpload"
	case uploadReceivedType:
		return "UploadReceived"
	case confirmUploadType:
		return "ConfirmUpload"
	case deleteUploadType:
		return "DeleteUpload"
	case expireUploadsType:
		return "ExpireUploads"
	case issueTokenType:
		return "IssueToken"
	case revokeTokenType:
		return "RevokeToken"
	case purgeTokensType:
		return "PurgeTokens"
	case putMemberType:
		return "PutMember"
	case deleteMemberType:
		return "DeleteMember"
	case createInviteType:
		return "CreateInvite"
	case consumeInviteType:
		return "ConsumeInvite"
	case addHolderType:
		return "AddHolder"
	case removeHolderType:
		return "RemoveHolder"
	case noopType:
		return "Noop"
	case setPolicyType:
		return "SetPolicy"
	case setReplicationType:
		return "SetReplication"
	case updatePlacementType:
		return "UpdatePlacement"
	case putPinType:
		return "PutPin"
	case deletePinType:
		return "DeletePin"
	case putFetchingType:
		return "PutFetching"
	case dropFetchingType:
		return "DropFetching"
	case setQuotaType:
		return "SetQuota"
	case keyedType:
		return "Keyed"
	case conditionalType:
		return "Conditional"
	}
	return fmt.Sprintf("command%d", uint8(t))
}

// ignoreUnknownTypeFlag, set on a command type, lets an older replica skip
// a command it does not know instead of stopping, for commands whose loss
// cannot make replicas disagree (as in consul): the fetching rows.
const ignoreUnknownTypeFlag commandType = 128

// command is a typed catalog command: the payload of one log entry.
type command interface {
	commandType() commandType
}

// The commands. Their JSON field names are the log format: never rename
// one. Ids and times travel inside the commands, so that applying one is
// deterministic.

// CreateArtifact creates an artifact with its first version. It is the
// argument of Catalog.CreateArtifact and the payload of its log entry.
type CreateArtifact struct {
	ID          artmesh.ArtifactID `json:"id"`           // a fresh id (artmesh.NewArtifactID)
	Name        string             `json:"name"`         // not unique
	ContentType string             `json:"content_type"` // of the first version
	Owner       artmesh.AgentID    `json:"owner"`        // an existing agent
	// Metadata becomes the artifact's metadata; keys whose value is JSON
	// null are dropped.
	Metadata  artmesh.Metadata `json:"metadata,omitempty"`
	CID       string           `json:"cid"`        // root of the content's DAG
	SizeBytes int64            `json:"size_bytes"` // content size
	At        time.Time        `json:"at"`         // creation time of the artifact and of version 1
	// Holder is the peer id of the node that stored the content, recorded
	// in the placement table.
	Holder string `json:"holder,omitempty"`
	// Holders are further members that hold the content durably already
	// (a write with replicas=N).
	Holders []string `json:"holders,omitempty"`
	// SHA256 is the content's hex SHA-256, when the node checked it
	// against a declared digest; empty otherwise.
	SHA256 string `json:"sha256,omitempty"`
}

// AddVersion appends a version to an artifact, which becomes its current
// state. It is the argument of Catalog.AddVersion and the payload of its
// log entry.
type AddVersion struct {
	ArtifactID artmesh.ArtifactID `json:"artifact_id"`
	By         artmesh.AgentID    `json:"by"` // the agent making the version
	// ContentType is the new version's type; empty keeps the current one.
	ContentType string `json:"content_type,omitempty"`
	// Metadata is merged over the current metadata (artmesh.Metadata.Merge:
	// a null value removes the key).
	Metadata  artmesh.Metadata `json:"metadata,omitempty"`
	CID       string           `json:"cid"`        // root of the new content's DAG
	SizeBytes int64            `json:"size_bytes"` // new content size
	At        time.Time        `json:"at"`         // the version's creation time, the artifact's updated_at
	// Holder is the peer id of the node that stored the content.
	Holder string `json:"holder,omitempty"`
	// Holders are further members that hold the content durably already.
	Holders []string `json:"holders,omitempty"`
	// SHA256 is the content's hex SHA-256, as for CreateArtifact.
	SHA256 string `json:"sha256,omitempty"`
}

// DeleteVersion removes one version of an artifact. It is the argument of
// Catalog.DeleteVersion and the payload of its log entry.
type DeleteVersion struct {
	ArtifactID artmesh.ArtifactID `json:"artifact_id"`
	Version    int                `json:"version"` // the version's number
	// At is when the deletion was asked for. It is recorded in the log
	// only: the artifact's updated_at stays that of its highest remaining
	// version, like the rest of its current state.
	At time.Time `json:"at"`
}

// CreateAgent creates an agent. It is the argument of Catalog.CreateAgent
// and the payload of its log entry.
type CreateAgent struct {
	// Agent gives the id, admin flag and creation time; its Groups are the
	// groups it joins, each created if absent.
	Agent artmesh.Agent `json:"agent"`
	// KeyHash is the hash of the agent's API key (never the key itself);
	// empty creates an agent without a key.
	KeyHash string `json:"key_hash,omitempty"`
	// NewGroupsOnly refuses the command if one of the groups exists: a
	// node agent may create an agent in new groups only (members of an
	// existing group read what is shared with it).
	NewGroupsOnly bool `json:"new_groups_only,omitempty"`
}

type deleteArtifactCmd struct {
	ID artmesh.ArtifactID `json:"id"`
}

type grantCmd struct {
	ID     artmesh.ArtifactID `json:"id"`
	Agents []artmesh.AgentID  `json:"agents,omitempty"`
	Groups []string           `json:"groups,omitempty"`
}

type shareCmd grantCmd

type unshareCmd grantCmd

type deleteAgentCmd struct {
	ID artmesh.AgentID `json:"id"`
}

type setAgentKeyCmd struct {
	ID      artmesh.AgentID `json:"id"`
	KeyHash string          `json:"key_hash"`
}

type putGroupCmd struct {
	Name    string            `json:"name"`
	Members []artmesh.AgentID `json:"members,omitempty"`
	// CreateOnly refuses the command if the group exists (a node agent
	// may create groups, not change them).
	CreateOnly bool `json:"create_only,omitempty"`
}

type deleteGroupCmd struct {
	Name string `json:"name"`
}

func (CreateArtifact) commandType() commandType    { return createArtifactType }
func (AddVersion) commandType() commandType        { return addVersionType }
func (DeleteVersion) commandType() commandType     { return deleteVersionType }
func (deleteArtifactCmd) commandType() commandType { return deleteArtifactType }
func (shareCmd) commandType() commandType          { return shareType }
func (unshareCmd) commandType() commandType        { return unshareType }
func (CreateAgent) commandType() commandType       { return createAgentType }
func (deleteAgentCmd) commandType() commandType    { return deleteAgentType }
func (setAgentKeyCmd) commandType() commandType    { return setAgentKeyType }
func (putGroupCmd) commandType() commandType       { return putGroupType }
func (deleteGroupCmd) commandType() commandType    { return deleteGroupType }

// encodeCommand returns the log entry of cmd: its type byte, then its JSON.
func encodeCommand(cmd command) ([]byte, error) {
	payload, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode catalog command %T: %w", cmd, err)
	}
	buf := make([]byte, 1, 1+len(payload))
	buf[0] = byte(cmd.commandType())
	return append(buf, payload...), nil
}

// errMalformedEntry marks the result of a log entry that does not decode
// (empty, of an unknown type, with a payload that is not its command's
// JSON, or an envelope that wraps no write). Such an entry changes
// nothing: every replica applies it as a no-op whose result is an Invalid
// error wrapping errMalformedEntry, and counts it (Catalog.RejectedEntries).
var errMalformedEntry = errors.New("catalog: malformed log entry")

// malformed returns the result of a log entry of type t that does not
// decode.
func malformed(t commandType, format string, args ...any) error {
	return artmesh.E(artmesh.Op("catalog."+t.String()), artmesh.Invalid,
		fmt.Errorf("%w: %s", errMalformedEntry, fmt.Sprintf(format, args...)))
}

// isMalformed reports whether res is the result of a malformed entry.
func isMalformed(res any) bool {
	err, ok := res.(error)
	return ok && errors.Is(err, errMalformedEntry)
}

// decode decodes a command's payload. A payload that is not the command's
// JSON is an error wrapping errMalformedEntry: the entry becomes a no-op.
func decode[T any](t commandType, payload []byte) (T, error) {
	var cmd T
	if err := json.Unmarshal(payload, &cmd); err != nil {
		return cmd, malformed(t, "cannot decode command type %d: %v", uint8(t), err)
	}
	return cmd, nil
}

// applyDecoded decodes a command's payload and applies it with apply,
// whose value and error become the result; a payload that does not decode
// is applied as a no-op whose result is the decoding error.
func applyDecoded[T, V any](tx *Txn, t commandType, payload []byte, apply func(*Txn, T) (V, error)) any {
	cmd, err := decode[T](t, payload)
	if err != nil {
		return err
	}
	return result(apply(tx, cmd))
}

// applyDecodedErr is applyDecoded for a write that has no value.
func applyDecodedErr[T any](tx *Txn, t commandType, payload []byte, apply func(*Txn, T) error) any {
	cmd, err := decode[T](t, payload)
	if err != nil {
		return err
	}
	return errResult(apply(tx, cmd))
}

// createArtifactQuotaTxn is createArtifactTxn within the owner's byte
// quota.
func createArtifactQuotaTxn(tx *Txn, cmd CreateArtifact) (artmesh.Artifact, error) {
	if err := checkBytesTxn(tx, "catalog.CreateArtifact", cmd.Owner, cmd.SizeBytes); err != nil {
		return artmesh.Artifact{}, err
	}
	return createArtifactTxn(tx, cmd)
}

// addVersionQuotaTxn is addVersionTxn within the artifact owner's byte
// quota.
func addVersionQuotaTxn(tx *Txn, cmd AddVersion) (artmesh.Artifact, error) {
	const op = artmesh.Op("catalog.AddVersion")
	if raw, err := tx.First(tableArtifacts, indexID, cmd.ArtifactID); err != nil {
		return artmesh.Artifact{}, internal(op, err)
	} else if raw != nil {
		if err := checkBytesTxn(tx, op, raw.(*artifactRow).Owner, cmd.SizeBytes); err != nil {
			return artmesh.Artifact{}, err
		}
	}
	return addVersionTxn(tx, cmd)
}

// applyCommand applies one log entry within tx and returns its result: the
// write's value, or an error (an *artmesh.Error) when it broke a rule, in
// which case tx is unchanged. An entry that does not decode changes
// nothing; its result is an Invalid error wrapping errMalformedEntry. An
// entry of an unknown type with ignoreUnknownTypeFlag set is skipped: its
// result is nil.
func applyCommand(tx *Txn, data []byte) any {
	if len(data) == 0 {
		return malformed(0, "empty log entry")
	}
	t, payload := commandType(data[0]), data[1:]
	switch t {
	case createArtifactType:
		return applyDecoded(tx, t, payload, createArtifactQuotaTxn)
	case addVersionType:
		return applyDecoded(tx, t, payload, addVersionQuotaTxn)
	case deleteVersionType:
		return applyDecoded(tx, t, payload, deleteVersionTxn)
	case deleteArtifactType:
		return applyDecodedErr(tx, t, payload, deleteArtifactTxn)
	case shareType:
		return applyDecoded(tx, t, payload, shareTxn)
	case unshareType:
		return applyDecoded(tx, t, payload, unshareTxn)
	case createAgentType:
		return applyDecoded(tx, t, payload, createAgentTxn)
	case deleteAgentType:
		return applyDecodedErr(tx, t, payload, deleteAgentTxn)
	case setAgentKeyType:
		return applyDecodedErr(tx, t, payload, setAgentKeyTxn)
	case putGroupType:
		return applyDecoded(tx, t, payload, putGroupTxn)
	case deleteGroupType:
		return applyDecodedErr(tx, t, payload, deleteGroupTxn)
	case noopType:
		return nil
	case forwardedType:
		return applyForwarded(tx, payload)
	case setQuotaType:
		return applyDecoded(tx, t, payload, setQuotaTxn)
	case keyedType:
		return applyKeyed(tx, payload)
	case conditionalType:
		return applyConditional(tx, payload)
	}
	if res, ok := applyUploadCommand(tx, t, payload); ok {
		return res
	}
	if res, ok := applyMemberCommand(tx, t, payload); ok {
		return res
	}
	if res, ok := applyPlacementCommand(tx, t, payload); ok {
		return res
	}
	if res, ok := applyReplicationCommand(tx, t, payload); ok {
		return res
	}
	if res, ok := applyFetchingCommand(tx, t, payload); ok {
		return res
	}
	if t&ignoreUnknownTypeFlag != 0 {
		return nil
	}
	return malformed(t, "unknown command type %d", uint8(t))
}

// result turns a write's value and error into an Apply result.
func result[T any](v T, err error) any {
	if err != nil {
		return err
	}
	return v
}

// errResult turns a write's error into an Apply result: nil or the error.
// (A nil error must not become a non-nil interface holding a nil pointer.)
func errResult(err error) any {
	if err != nil {
		return err
	}
	return nil
}
