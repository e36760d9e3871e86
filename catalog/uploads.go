package catalog

import (
	"context"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/go-memdb"
)

// Upload sessions and capability tokens: the catalog's part of upload URLs
// and signed URLs. An upload is declared, then received (its bytes are in
// some node's store, under CID), then confirmed (it became an artifact or
// a version); expiry removes it. Tokens are recorded when issued so that
// they can be revoked by id, and forgotten once expired.

// Upload states.
const (
	StateOpen      = "open"
	StateReceived  = "received"
	StateConfirmed = "confirmed"
)

// Table names of this file's state.
const (
	tableUploads = "uploads"
	tableTokens  = "tokens"
)

// Snapshot record types of this file's tables; like all record types they
// never change.
const (
	recordUpload byte = 5
	recordToken  byte = 6
)

// Command types of this file's commands; they never change.
const (
	createUploadType   commandType = 12
	uploadReceivedType commandType = 13
	confirmUploadType  commandType = 14
	deleteUploadType   commandType = 15
	expireUploadsType  commandType = 16
	issueTokenType     commandType = 17
	revokeTokenType    commandType = 18
	purgeTokensType    commandType = 19
	// lastCommandType is the highest type in use: raise it with each new
	// command.
	lastCommandType = conditionalType
)

// known reports whether t is a command type of this version.
func (t commandType) known() bool {
	return (t >= createArtifactType && t <= lastCommandType) || t == putFetchingType || t == dropFetchingType
}

// Upload is an upload session, as the catalog keeps it.
type Upload struct {
	ID          string             `json:"id"`
	Owner       artmesh.AgentID    `json:"owner"`
	Name        string             `json:"name"`
	ContentType string             `json:"content_type"`
	SizeBytes   int64              `json:"size_bytes"`
	Metadata    artmesh.Metadata   `json:"metadata,omitempty"`
	ArtifactID  artmesh.ArtifactID `json:"artifact_id,omitempty"` // the artifact it updates, if any
	CreatedAt   time.Time          `json:"created_at"`
	ExpiresAt   time.Time          `json:"expires_at"`
	State       string             `json:"state"`
	CID         string             `json:"cid,omitempty"`    // once received
	SHA256      string             `json:"sha256,omitempty"` // hex, once received
	// Result is the artifact the confirm created or updated.
	Result artmesh.ArtifactID `json:"result,omitempty"`
}

// Token is the record of an issued capability token.
type Token struct {
	ID    string          `json:"id"`
	Agent artmesh.AgentID `json:"agent"` // the granting agent
	// AgentCreatedAt is the granting agent's CreatedAt when the token was
	// issued: it names that incarnation of the agent, so that an agent
	// deleted and created again under the same id gets none of the old
	// one's tokens. Zero in records written before it existed.
	AgentCreatedAt time.Time `json:"agent_created_at,omitzero"`
	Target         string    `json:"target"` // the artifact or upload id it is for
	// Version is the artifact version a read token is pinned to (0: the
	// current one at each use). Zero in records written before it was
	// kept.
	Version   int       `json:"version,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	// Issuer is the peer id of the node that signed the token and Action
	// its action ("read", "write"): a token is honoured only with the
	// claims of its record, so that a member cannot sign other claims
	// under a recorded id. Empty in records written before they existed.
	Issuer  string `json:"issuer,omitempty"`
	Action  string `json:"action,omitempty"`
	Revoked bool   `json:"revoked,omitempty"`
	// IssuedIndex is the Raft index of the command that recorded the
	// token, set by the catalog as it applies it (what the issuer gives
	// is ignored). A read token works only through a grant that has stood
	// since then (Catalog.ReadGrantSince). Zero in records written before
	// it existed.
	IssuedIndex uint64 `json:"issued_index,omitempty"`
}

// CreateUpload declares an upload session.
type CreateUpload struct {
	Upload Upload    `json:"upload"` // State and CID are ignored
	At     time.Time `json:"at"`
}

// UploadReceived records that an upload's bytes are stored under CID.
type UploadReceived struct {
	ID     string    `json:"id"`
	Holder string    `json:"holder,omitempty"` // the node that stored the bytes
	CID    string    `json:"cid"`
	SHA256 string    `json:"sha256"`
	Size   int64     `json:"size"`
	At     time.Time `json:"at"`
}

// ConfirmUpload turns a received upload into an artifact (with NewID) or a
// version of the artifact it names, in one step: of two confirms of one
// upload exactly one succeeds.
type ConfirmUpload struct {
	ID    string             `json:"id"`
	NewID artmesh.ArtifactID `json:"new_id"` // the id of the artifact to create, when the upload names none
	At    time.Time          `json:"at"`
	// Holders are members that hold the content durably besides the node
	// that received it (a confirm with replicas=N).
	Holders []string `json:"holders,omitempty"`
}

type deleteUploadCmd struct {
	ID string `json:"id"`
}

type expireUploadsCmd struct {
	At time.Time `json:"at"`
}

type issueTokenCmd struct {
	Token Token `json:"token"`
}

type revokeTokenCmd struct {
	ID string `json:"id"`
}

type purgeTokensCmd struct {
	Before time.Time `json:"before"`
}

func (CreateUpload) commandType() commandType     { return createUploadType }
func (UploadReceived) commandType() commandType   { return uploadReceivedType }
func (ConfirmUpload) commandType() commandType    { return confirmUploadType }
func (deleteUploadCmd) commandType() commandType  { return deleteUploadType }
func (expireUploadsCmd) commandType() commandType { return expireUploadsType }
func (issueTokenCmd) commandType() commandType    { return issueTokenType }
func (revokeTokenCmd) commandType() commandType   { return revokeTokenType }
func (purgeTokensCmd) commandType() commandType   { return purgeTokensType }

// indexUploadReceived indexes the received uploads by CID, then id.
const indexUploadReceived = "received"

// indexTokenTarget indexes the tokens by the artifact or upload they are
// for, so that an artifact's signed URLs are listed without reading every
// token.
const indexTokenTarget = "target"

// uploadTables returns the schema of this file's tables.
func uploadTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableUploads: {
			Name: tableUploads,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*Upload]{
					nargs: 1,
					key:   func(b []byte, r *Upload) []byte { return appendPart(b, r.ID) },
				}},
				// The received uploads (bytes stored, not confirmed) by
				// CID: content that is live without a version.
				indexUploadReceived: {Name: indexUploadReceived, Unique: true, AllowMissing: true, Indexer: multiIndex[*Upload]{
					nargs: 2,
					keys: func(r *Upload) [][]byte {
						if r.State != StateReceived {
							return nil
						}
						return [][]byte{appendPart(appendPart(nil, r.CID), r.ID)}
					},
				}},
			},
		},
		tableTokens: {
			Name: tableTokens,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*Token]{
					nargs: 1,
					key:   func(b []byte, r *Token) []byte { return appendPart(b, r.ID) },
				}},
				indexTokenTarget: {Name: indexTokenTarget, Indexer: singleIndex[*Token]{
					nargs: 1,
					key:   func(b []byte, r *Token) []byte { return appendPart(b, r.Target) },
				}},
			},
		},
	}
}

// applyUploadCommand applies the commands of this file; ok is false for a
// type that is not one of them.
func applyUploadCommand(tx *Txn, t commandType, payload []byte) (res any, ok bool) {
	switch t {
	case createUploadType:
		return applyDecoded(tx, t, payload, createUploadTxn), true
	case uploadReceivedType:
		return applyDecoded(tx, t, payload, uploadReceivedTxn), true
	case confirmUploadType:
		return applyDecoded(tx, t, payload, confirmUploadTxn), true
	case deleteUploadType:
		return applyDecodedErr(tx, t, payload, deleteUploadTxn), true
	case expireUploadsType:
		return applyDecoded(tx, t, payload, expireUploadsTxn), true
	case issueTokenType:
		return applyDecodedErr(tx, t, payload, issueTokenTxn), true
	case revokeTokenType:
		return applyDecodedErr(tx, t, payload, revokeTokenTxn), true
	case purgeTokensType:
		return applyDecoded(tx, t, payload, purgeTokensTxn), true
	}
	return nil, false
}

func uploadTxn(tx *Txn, op artmesh.Op, id string) (*Upload, error) {
	raw, err := tx.First(tableUploads, indexID, id)
	if err != nil {
		return nil, internal(op, err)
	}
	if raw == nil {
		return nil, errorf(op, artmesh.NotFound, "upload %s not found", id)
	}
	return raw.(*Upload), nil
}

func createUploadTxn(tx *Txn, cmd CreateUpload) (Upload, error) {
	const op = artmesh.Op("catalog.CreateUpload")
	u := cmd.Upload
	if existing, err := tx.First(tableUploads, indexID, u.ID); err != nil {
		return Upload{}, internal(op, err)
	} else if existing != nil {
		return Upload{}, errorf(op, artmesh.Conflict, "upload %s already exists", u.ID)
	}
	if u.ArtifactID != "" {
		if _, err := artifactTxn(tx, op, u.ArtifactID); err != nil {
			return Upload{}, err
		}
	}
	if _, err := agentTxn(tx, op, u.Owner); err != nil {
		return Upload{}, errorf(op, artmesh.Invalid, "owner %q is not an agent", u.Owner)
	}
	st, err := quotaStatusTxn(tx, op, u.Owner)
	if err != nil {
		return Upload{}, err
	}
	if err := CheckUpload(st, u.SizeBytes); err != nil {
		return Upload{}, artmesh.E(op, err)
	}
	u.State, u.CID, u.SHA256, u.Result = StateOpen, "", "", ""
	u.CreatedAt = cmd.At
	if err := tx.Insert(tableUploads, &u); err != nil {
		return Upload{}, internal(op, err)
	}
	if err := addUploadUsageTxn(tx, &u, 1); err != nil {
		return Upload{}, internal(op, err)
	}
	return u, nil
}

func uploadReceivedTxn(tx *Txn, cmd UploadReceived) (Upload, error) {
	const op = artmesh.Op("catalog.UploadReceived")
	u, err := uploadTxn(tx, op, cmd.ID)
	if err != nil {
		return Upload{}, err
	}
	if u.State != StateOpen {
		return Upload{}, errorf(op, artmesh.Conflict, "upload %s is %s, not open", u.ID, u.State)
	}
	if cmd.Size != u.SizeBytes {
		return Upload{}, errorf(op, artmesh.Invalid, "upload %s declared %d bytes, received %d", u.ID, u.SizeBytes, cmd.Size)
	}
	next := *u
	next.State, next.CID, next.SHA256 = StateReceived, cmd.CID, cmd.SHA256
	if err := tx.Insert(tableUploads, &next); err != nil {
		return Upload{}, internal(op, err)
	}
	if err := addHolderTxn(tx, cmd.CID, cmd.Holder); err != nil {
		return Upload{}, err
	}
	return next, nil
}

func confirmUploadTxn(tx *Txn, cmd ConfirmUpload) (artmesh.Artifact, error) {
	const op = artmesh.Op("catalog.ConfirmUpload")
	u, err := uploadTxn(tx, op, cmd.ID)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	switch u.State {
	case StateConfirmed:
		return artmesh.Artifact{}, errorf(op, artmesh.Conflict, "upload %s is already confirmed", u.ID)
	case StateOpen:
		return artmesh.Artifact{}, errorf(op, artmesh.Conflict, "upload %s has not received all its %d bytes", u.ID, u.SizeBytes)
	}
	if !cmd.At.Before(u.ExpiresAt) {
		return artmesh.Artifact{}, errorf(op, artmesh.Expired, "upload %s expired at %s", u.ID, u.ExpiresAt.Format(time.RFC3339))
	}
	var a artmesh.Artifact
	if u.ArtifactID != "" {
		a, err = addVersionTxn(tx, AddVersion{
			ArtifactID: u.ArtifactID, By: u.Owner, ContentType: u.ContentType,
			Metadata: u.Metadata, CID: u.CID, SizeBytes: u.SizeBytes, At: cmd.At, Holders: cmd.Holders, SHA256: u.SHA256,
		})
	} else {
		a, err = createArtifactTxn(tx, CreateArtifact{
			ID: cmd.NewID, Name: u.Name, ContentType: u.ContentType, Owner: u.Owner,
			Metadata: u.Metadata, CID: u.CID, SizeBytes: u.SizeBytes, At: cmd.At, Holders: cmd.Holders, SHA256: u.SHA256,
		})
	}
	if err != nil {
		return artmesh.Artifact{}, err
	}
	next := *u
	next.State, next.Result = StateConfirmed, a.ID
	if err := tx.Insert(tableUploads, &next); err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	if err := addUploadUsageTxn(tx, u, -1); err != nil {
		return artmesh.Artifact{}, internal(op, err)
	}
	return a, nil
}

func deleteUploadTxn(tx *Txn, cmd deleteUploadCmd) error {
	const op = artmesh.Op("catalog.DeleteUpload")
	u, err := uploadTxn(tx, op, cmd.ID)
	if err != nil {
		return err
	}
	if err := tx.Delete(tableUploads, u); err != nil {
		return internal(op, err)
	}
	if err := addUploadUsageTxn(tx, u, -1); err != nil {
		return internal(op, err)
	}
	return nil
}

// expireUploadsTxn removes every upload whose expiry is not after At, and
// returns their ids.
func expireUploadsTxn(tx *Txn, cmd expireUploadsCmd) ([]string, error) {
	const op = artmesh.Op("catalog.ExpireUploads")
	it, err := tx.Get(tableUploads, indexID)
	if err != nil {
		return nil, internal(op, err)
	}
	var gone []*Upload
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if u := raw.(*Upload); !cmd.At.Before(u.ExpiresAt) {
			gone = append(gone, u)
		}
	}
	ids := make([]string, 0, len(gone))
	for _, u := range gone {
		if err := tx.Delete(tableUploads, u); err != nil {
			return nil, internal(op, err)
		}
		if err := addUploadUsageTxn(tx, u, -1); err != nil {
			return nil, internal(op, err)
		}
		ids = append(ids, u.ID)
	}
	return ids, nil
}

func issueTokenTxn(tx *Txn, cmd issueTokenCmd) error {
	const op = artmesh.Op("catalog.IssueToken")
	if existing, err := tx.First(tableTokens, indexID, cmd.Token.ID); err != nil {
		return internal(op, err)
	} else if existing != nil {
		return errorf(op, artmesh.Conflict, "token %s already exists", cmd.Token.ID)
	}
	t := cmd.Token
	t.Revoked = false
	if err := tx.Insert(tableTokens, &t); err != nil {
		return internal(op, err)
	}
	return nil
}

func revokeTokenTxn(tx *Txn, cmd revokeTokenCmd) error {
	const op = artmesh.Op("catalog.RevokeToken")
	raw, err := tx.First(tableTokens, indexID, cmd.ID)
	if err != nil {
		return internal(op, err)
	}
	if raw == nil {
		return errorf(op, artmesh.NotFound, "token %s not found", cmd.ID)
	}
	next := *raw.(*Token)
	next.Revoked = true
	if err := tx.Insert(tableTokens, &next); err != nil {
		return internal(op, err)
	}
	return nil
}

// purgeTokensTxn forgets tokens that expired before Before, revoked or
// not: they are refused for their expiry anyway.
func purgeTokensTxn(tx *Txn, cmd purgeTokensCmd) (int, error) {
	const op = artmesh.Op("catalog.PurgeTokens")
	it, err := tx.Get(tableTokens, indexID)
	if err != nil {
		return 0, internal(op, err)
	}
	var gone []*Token
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if t := raw.(*Token); t.ExpiresAt.Before(cmd.Before) {
			gone = append(gone, t)
		}
	}
	for _, t := range gone {
		if err := tx.Delete(tableTokens, t); err != nil {
			return 0, internal(op, err)
		}
	}
	return len(gone), nil
}

// ----- the Catalog's methods -----

// CreateUpload declares an upload session owned by an existing agent; an
// upload that names an artifact must name an existing one.
func (c *Catalog) CreateUpload(ctx context.Context, cmd CreateUpload) (Upload, error) {
	const op = artmesh.Op("catalog.CreateUpload")
	switch {
	case len(cmd.Upload.ID) <= len(artmesh.UploadPrefix):
		return Upload{}, invalid(op, "an upload id is required")
	case cmd.Upload.SizeBytes < 0:
		return Upload{}, invalid(op, "size must not be negative")
	case cmd.Upload.ExpiresAt.IsZero():
		return Upload{}, invalid(op, "an expiry is required")
	}
	var err error
	if cmd.At, err = checkTime(op, cmd.At); err != nil {
		return Upload{}, err
	}
	return proposeAs[Upload](ctx, c, cmd)
}

// UploadReceived records that an open upload's bytes were all received and
// stored under CID.
func (c *Catalog) UploadReceived(ctx context.Context, cmd UploadReceived) (Upload, error) {
	const op = artmesh.Op("catalog.UploadReceived")
	if cmd.CID == "" {
		return Upload{}, invalid(op, "the content's CID is required")
	}
	var err error
	if cmd.At, err = checkTime(op, cmd.At); err != nil {
		return Upload{}, err
	}
	return proposeAs[Upload](ctx, c, cmd)
}

// ConfirmUpload turns a received upload into its artifact or version.
// Conflict when it is not received yet or already confirmed; Expired when
// its time is over.
func (c *Catalog) ConfirmUpload(ctx context.Context, cmd ConfirmUpload) (artmesh.Artifact, error) {
	const op = artmesh.Op("catalog.ConfirmUpload")
	var err error
	if cmd.At, err = checkTime(op, cmd.At); err != nil {
		return artmesh.Artifact{}, err
	}
	return proposeAs[artmesh.Artifact](ctx, c, cmd)
}

// DeleteUpload forgets an upload session, whatever its state.
func (c *Catalog) DeleteUpload(ctx context.Context, id string) error {
	_, err := c.propose(ctx, deleteUploadCmd{ID: id})
	return err
}

// ExpireUploads forgets every upload whose expiry is not after at, and
// returns their ids.
func (c *Catalog) ExpireUploads(ctx context.Context, at time.Time) ([]string, error) {
	return proposeAs[[]string](ctx, c, expireUploadsCmd{At: at.UTC()})
}

// IssueToken records an issued capability token.
func (c *Catalog) IssueToken(ctx context.Context, t Token) error {
	_, err := c.propose(ctx, issueTokenCmd{Token: t})
	return err
}

// RevokeToken marks a token revoked. NotFound when no such token is known
// (never issued, or expired and forgotten).
func (c *Catalog) RevokeToken(ctx context.Context, id string) error {
	_, err := c.propose(ctx, revokeTokenCmd{ID: id})
	return err
}

// PurgeTokens forgets tokens that expired before before, and returns how
// many.
func (c *Catalog) PurgeTokens(ctx context.Context, before time.Time) (int, error) {
	return proposeAs[int](ctx, c, purgeTokensCmd{Before: before.UTC()})
}

// Upload returns an upload session.
func (c *Catalog) Upload(id string) (Upload, error) {
	return read(c.fsm.state(), func(tx *Txn) (Upload, error) {
		u, err := uploadTxn(tx, "catalog.Upload", id)
		if err != nil {
			return Upload{}, err
		}
		return *u, nil
	})
}

// Uploads returns every upload session.
func (c *Catalog) Uploads() ([]Upload, error) {
	return read(c.fsm.state(), func(tx *Txn) ([]Upload, error) {
		it, err := tx.Get(tableUploads, indexID)
		if err != nil {
			return nil, internal("catalog.Uploads", err)
		}
		var out []Upload
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out = append(out, *raw.(*Upload))
		}
		return out, nil
	})
}

// Token returns the record of an issued token.
func (c *Catalog) Token(id string) (Token, error) {
	return read(c.fsm.state(), func(tx *Txn) (Token, error) {
		raw, err := tx.First(tableTokens, indexID, id)
		if err != nil {
			return Token{}, internal("catalog.Token", err)
		}
		if raw == nil {
			return Token{}, errorf("catalog.Token", artmesh.NotFound, "token %s not found", id)
		}
		return *raw.(*Token), nil
	})
}

// TokensFor returns the records of the tokens issued for target (an
// artifact or upload id), revoked and expired ones included until they
// are purged, through the tokens' target index: it reads those tokens
// only.
func (c *Catalog) TokensFor(target string) ([]Token, error) {
	return tokensFor(c.fsm.state(), target)
}

// tokensFor is TokensFor on the state s.
func tokensFor(s *store, target string) ([]Token, error) {
	return read(s, func(tx *Txn) ([]Token, error) {
		const op = artmesh.Op("catalog.TokensFor")
		if target == "" {
			return nil, invalid(op, "a target is required")
		}
		it, err := tx.Get(tableTokens, indexTokenTarget, target)
		if err != nil {
			return nil, internal(op, err)
		}
		var out []Token
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out = append(out, *raw.(*Token))
		}
		return out, nil
	})
}

// ReceivedUploadCIDs returns the CIDs of uploads whose bytes are stored
// but not yet confirmed: the node that received them keeps them.
func (c *Catalog) ReceivedUploadCIDs() []string {
	out, _ := read(c.fsm.state(), func(tx *Txn) ([]string, error) {
		it, err := tx.Get(tableUploads, indexUploadReceived)
		if err != nil {
			return nil, internal("catalog.ReceivedUploadCIDs", err)
		}
		var out []string
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out = append(out, raw.(*Upload).CID)
		}
		return out, nil
	})
	return out
}
