package catalog

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/go-memdb"
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

// decode decodes a command's payload. A replica that cannot decode an
// entry must not go on (it would drift from the others), so a failure
// panics.
func decode[T any](t commandType, payload []byte) T {
	var cmd T
	if err := json.Unmarshal(payload, &cmd); err != nil {
		panic(fmt.Sprintf("catalog: cannot decode command type %d: %v", t, err))
	}
	return cmd
}

// applyCommand applies one log entry within tx and returns its result: the
// write's value, or an error (an *artmesh.Error) when it broke a rule, in
// which case tx is unchanged. It panics on an entry it cannot decode.
func applyCommand(tx *memdb.Txn, data []byte) any {
	if len(data) == 0 {
		panic("catalog: empty log entry")
	}
	t, payload := commandType(data[0]), data[1:]
	switch t {
	case createArtifactType:
		return applyCreateArtifact(tx, payload)
	case addVersionType:
		return applyAddVersion(tx, payload)
	case deleteVersionType:
		return applyDeleteVersion(tx, payload)
	case deleteArtifactType:
		return applyDeleteArtifact(tx, payload)
	case shareType:
		return applyShare(tx, payload)
	case unshareType:
		return applyUnshare(tx, payload)
	case createAgentType:
		return applyCreateAgent(tx, payload)
	case deleteAgentType:
		return applyDeleteAgent(tx, payload)
	case setAgentKeyType:
		return applySetAgentKey(tx, payload)
	case putGroupType:
		return applyPutGroup(tx, payload)
	case deleteGroupType:
		return applyDeleteGroup(tx, payload)
	case noopType:
		return nil
	case forwardedType:
		return applyForwarded(tx, payload)
	case setQuotaType:
		return result(setQuotaTxn(tx, decode[setQuotaCmd](setQuotaType, payload)))
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
	panic(fmt.Sprintf("catalog: unknown command type %d", t))
}

func applyCreateArtifact(tx *memdb.Txn, payload []byte) any {
	cmd := decode[CreateArtifact](createArtifactType, payload)
	if err := checkBytesTxn(tx, "catalog.CreateArtifact", cmd.Owner, cmd.SizeBytes); err != nil {
		return err
	}
	return result(createArtifactTxn(tx, cmd))
}

func applyAddVersion(tx *memdb.Txn, payload []byte) any {
	cmd := decode[AddVersion](addVersionType, payload)
	const op = artmesh.Op("catalog.AddVersion")
	if raw, err := tx.First(tableArtifacts, indexID, cmd.ArtifactID); err != nil {
		return internal(op, err)
	} else if raw != nil {
		if err := checkBytesTxn(tx, op, raw.(*artifactRow).Owner, cmd.SizeBytes); err != nil {
			return err
		}
	}
	return result(addVersionTxn(tx, cmd))
}

func applyDeleteVersion(tx *memdb.Txn, payload []byte) any {
	return result(deleteVersionTxn(tx, decode[DeleteVersion](deleteVersionType, payload)))
}

func applyDeleteArtifact(tx *memdb.Txn, payload []byte) any {
	return errResult(deleteArtifactTxn(tx, decode[deleteArtifactCmd](deleteArtifactType, payload)))
}

func applyShare(tx *memdb.Txn, payload []byte) any {
	return result(shareTxn(tx, decode[shareCmd](shareType, payload)))
}

func applyUnshare(tx *memdb.Txn, payload []byte) any {
	return result(unshareTxn(tx, decode[unshareCmd](unshareType, payload)))
}

func applyCreateAgent(tx *memdb.Txn, payload []byte) any {
	return result(createAgentTxn(tx, decode[CreateAgent](createAgentType, payload)))
}

func applyDeleteAgent(tx *memdb.Txn, payload []byte) any {
	return errResult(deleteAgentTxn(tx, decode[deleteAgentCmd](deleteAgentType, payload)))
}

func applySetAgentKey(tx *memdb.Txn, payload []byte) any {
	return errResult(setAgentKeyTxn(tx, decode[setAgentKeyCmd](setAgentKeyType, payload)))
}

func applyPutGroup(tx *memdb.Txn, payload []byte) any {
	return result(putGroupTxn(tx, decode[putGroupCmd](putGroupType, payload)))
}

func applyDeleteGroup(tx *memdb.Txn, payload []byte) any {
	return errResult(deleteGroupTxn(tx, decode[deleteGroupCmd](deleteGroupType, payload)))
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
