package catalog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/go-memdb"
)

// Table names.
const (
	tableArtifacts = "artifacts"
	tableVersions  = "versions"
	tableAgents    = "agents"
	tableGroups    = "groups"
	// tableOwned counts each agent's artifacts. It is derived from the
	// artifacts table (kept up to date by the writes, rebuilt by Restore,
	// not in snapshots) so that an unfiltered listing need not count.
	tableOwned = "owned"
)

// Index names. Every table's primary index is indexID.
const (
	indexID = "id"

	// artifacts; each key ends with the artifact id in newest-first order
	// (see appendDescID), so iterating any of them lists newest first
	indexOwner      = "owner"       // owner
	indexOwnerType  = "owner_type"  // owner, content_type
	indexOwnerName  = "owner_name"  // owner, name
	indexOwnerMeta  = "owner_meta"  // owner, metadata key, MetaText(value): one entry per top-level key
	indexGrantAgent = "grant_agent" // each agent the artifact is shared with
	indexGrantGroup = "grant_group" // each group the artifact is shared with

	// agents
	indexKeyHash = "key_hash" // each API key hash (unique)

	// groups
	indexMembers = "members" // each member
)

// The rows of the tables. A row is never changed once inserted: a write
// inserts a changed copy, so that readers holding an older transaction keep
// a consistent view. The rows are also the records of a snapshot, hence the
// JSON tags, which must not change.

// artifactRow is a row of the artifacts table: the artifact as of its
// current version, plus its bookkeeping and grants.
type artifactRow struct {
	artmesh.Artifact
	// NextVersion is the number the next version gets: one more than the
	// highest number ever assigned, so numbers are never reused.
	NextVersion int `json:"next_version"`
	// GrantAgents and GrantGroups are sorted and free of duplicates.
	GrantAgents []artmesh.AgentID `json:"grant_agents,omitempty"`
	GrantGroups []string          `json:"grant_groups,omitempty"`
	// AgentGrantIndex and GroupGrantIndex are the Raft indexes at which
	// the grants were made (see stampGrants); a grant made before they
	// existed has none. They may keep the stamp of a grant that a deletion
	// of its agent or group removed: only the grants listed count.
	AgentGrantIndex map[artmesh.AgentID]uint64 `json:"agent_grant_index,omitempty"`
	GroupGrantIndex map[string]uint64          `json:"group_grant_index,omitempty"`
	// Replication is the artifact's own replication factor; 0 follows
	// the mesh policy.
	Replication int `json:"replication,omitempty"`
}

// versionRow is a row of the versions table.
type versionRow struct {
	ArtifactID artmesh.ArtifactID `json:"artifact_id"`
	artmesh.Version
}

// agentRow is a row of the agents table. Its groups live in the groups
// table only.
type agentRow struct {
	ID        artmesh.AgentID `json:"id"`
	Admin     bool            `json:"admin,omitempty"`
	Node      string          `json:"node,omitempty"` // see artmesh.Agent.Node
	CreatedAt time.Time       `json:"created_at"`
	// KeyHashes are the hashes of the agent's API keys, as given to the
	// catalog (never the keys).
	KeyHashes []string `json:"key_hashes,omitempty"`
	// Quota is the agent's own quota (zero: the mesh defaults).
	Quota artmesh.Quota `json:"quota,omitzero"`
}

// ownedRow is a row of the owned table: how many artifacts an agent owns.
type ownedRow struct {
	Owner     artmesh.AgentID
	Artifacts int
}

// groupRow is a row of the groups table. Members are sorted and free of
// duplicates.
type groupRow struct {
	Name    string            `json:"name"`
	Members []artmesh.AgentID `json:"members"`
	// MemberIndex is the Raft index at which each member joined (see
	// stampGrants); a member that joined before it existed has none. It
	// may keep the stamp of a deleted agent: only Members count.
	MemberIndex map[artmesh.AgentID]uint64 `json:"member_index,omitempty"`
}

// schema returns the go-memdb schema of the catalog's state. The indexes
// are typed (no reflection), so that inserts stay cheap.
func schema() *memdb.DBSchema {
	s := baseSchema()
	for name, t := range uploadTables() {
		s.Tables[name] = t
	}
	for name, t := range memberTables() {
		s.Tables[name] = t
	}
	for name, t := range placementTables() {
		s.Tables[name] = t
	}
	for name, t := range replicationTables() {
		s.Tables[name] = t
	}
	for name, t := range fetchingTables() {
		s.Tables[name] = t
	}
	for name, t := range usageTables() {
		s.Tables[name] = t
	}
	for name, t := range requestTables() {
		s.Tables[name] = t
	}
	for name, t := range keyTables() {
		s.Tables[name] = t
	}
	for name, t := range replicaIndexTables() {
		s.Tables[name] = t
	}
	s.Tables[tableVersions].Indexes[indexVersionCID] = versionCIDIndex()
	return s
}

// baseSchema is the schema of the artifacts, agents and groups.
func baseSchema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableArtifacts: {
			Name: tableArtifacts,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*artifactRow]{
					nargs: 1,
					key:   func(b []byte, r *artifactRow) []byte { return appendPart(b, string(r.ID)) },
				}},
				indexOwner: {Name: indexOwner, Unique: true, Indexer: singleIndex[*artifactRow]{
					nargs: 1,
					key: func(b []byte, r *artifactRow) []byte {
						return appendDescID(appendPart(b, string(r.Owner)), r.ID)
					},
				}},
				indexOwnerType: {Name: indexOwnerType, Unique: true, Indexer: singleIndex[*artifactRow]{
					nargs: 2,
					key: func(b []byte, r *artifactRow) []byte {
						return appendDescID(appendPart(appendPart(b, string(r.Owner)), r.ContentType), r.ID)
					},
				}},
				indexOwnerName: {Name: indexOwnerName, Unique: true, Indexer: singleIndex[*artifactRow]{
					nargs: 2,
					key: func(b []byte, r *artifactRow) []byte {
						return appendDescID(appendPart(appendPart(b, string(r.Owner)), r.Name), r.ID)
					},
				}},
				indexOwnerMeta: {Name: indexOwnerMeta, Unique: true, AllowMissing: true, Indexer: multiIndex[*artifactRow]{
					nargs: 3,
					keys: func(r *artifactRow) [][]byte {
						if len(r.Metadata) == 0 {
							return nil
						}
						keys := make([][]byte, 0, len(r.Metadata))
						for k, v := range r.Metadata {
							b := appendPart(nil, string(r.Owner))
							b = appendPart(b, k)
							b = appendPart(b, artmesh.MetaText(v))
							keys = append(keys, appendDescID(b, r.ID))
						}
						// In a stable order, so that an update whose keys did
						// not change rewrites none of them.
						slices.SortFunc(keys, bytes.Compare)
						return keys
					},
				}},
				indexGrantAgent: {Name: indexGrantAgent, Unique: true, AllowMissing: true, Indexer: multiIndex[*artifactRow]{
					nargs: 1,
					keys: func(r *artifactRow) [][]byte {
						return descIDKeys(r.GrantAgents, r.ID)
					},
				}},
				indexGrantGroup: {Name: indexGrantGroup, Unique: true, AllowMissing: true, Indexer: multiIndex[*artifactRow]{
					nargs: 1,
					keys: func(r *artifactRow) [][]byte {
						return descIDKeys(r.GrantGroups, r.ID)
					},
				}},
			},
		},
		tableOwned: {
			Name: tableOwned,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*ownedRow]{
					nargs: 1,
					key:   func(b []byte, r *ownedRow) []byte { return appendPart(b, string(r.Owner)) },
				}},
			},
		},
		tableVersions: {
			Name: tableVersions,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: versionIndex{}},
			},
		},
		tableAgents: {
			Name: tableAgents,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*agentRow]{
					nargs: 1,
					key:   func(b []byte, r *agentRow) []byte { return appendPart(b, string(r.ID)) },
				}},
				indexKeyHash: {Name: indexKeyHash, Unique: true, AllowMissing: true, Indexer: multiIndex[*agentRow]{
					nargs: 1,
					keys:  func(r *agentRow) [][]byte { return stringKeys(r.KeyHashes) },
				}},
			},
		},
		tableGroups: {
			Name: tableGroups,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*groupRow]{
					nargs: 1,
					key:   func(b []byte, r *groupRow) []byte { return appendPart(b, r.Name) },
				}},
				indexMembers: {Name: indexMembers, AllowMissing: true, Indexer: multiIndex[*groupRow]{
					nargs: 1,
					keys:  func(r *groupRow) [][]byte { return stringKeys(r.Members) },
				}},
			},
		},
	}}
}

// Index keys are made of string parts, each followed by a 0 byte, so that
// a key given fewer parts than the index has is a prefix of every key that
// starts with those parts (memdb's Get iterates a prefix), and a part is
// never mistaken for a prefix of a longer one.
//
// The secondary indexes of artifacts end with the artifact's id in
// descending order (appendDescID), which makes each key unique (so they
// are declared Unique, and memdb appends nothing) and makes a forward
// iteration list the newest artifacts first: ids are ULIDs of one length,
// which sort by creation time. (Forward iteration of an iradix tree is
// about twice as fast as reverse iteration.)

// appendPart appends one part of an index key.
func appendPart(b []byte, s string) []byte {
	b = append(b, s...)
	return append(b, 0)
}

// appendDescID appends id with every byte inverted, so that keys that
// differ only in their ids sort newest first. Ids are ASCII, so no
// inverted byte is 0.
func appendDescID(b []byte, id artmesh.ArtifactID) []byte {
	for i := 0; i < len(id); i++ {
		b = append(b, ^id[i])
	}
	return b
}

// descIDKeys returns, for each string of ss, the key of that part
// followed by the descending id.
func descIDKeys[S ~string](ss []S, id artmesh.ArtifactID) [][]byte {
	if len(ss) == 0 {
		return nil
	}
	keys := make([][]byte, len(ss))
	for i, s := range ss {
		keys[i] = appendDescID(appendPart(make([]byte, 0, len(s)+1+len(id)), string(s)), id)
	}
	return keys
}

// stringKeys returns one single-part key for each string of ss.
func stringKeys[S ~string](ss []S) [][]byte {
	if len(ss) == 0 {
		return nil
	}
	keys := make([][]byte, len(ss))
	for i, s := range ss {
		keys[i] = appendPart(make([]byte, 0, len(s)+1), string(s))
	}
	return keys
}

// posID, as the last argument of an artifacts index lookup (after that
// index's parts), ends the key with the artifact id in descending order
// (appendDescID): the artifact's position in the index, which LowerBound
// seeks to.
type posID artmesh.ArtifactID

// argsKey builds the key (or key prefix) of 1 to nargs string arguments,
// optionally followed by a posID.
func argsKey(nargs int, args []any) ([]byte, error) {
	n := len(args)
	if n > 0 {
		if _, ok := args[n-1].(posID); ok {
			n--
		}
	}
	if n == 0 || n > nargs {
		return nil, fmt.Errorf("index takes 1 to %d arguments, got %d", nargs, n)
	}
	var b []byte
	for i, a := range args {
		switch a := a.(type) {
		case string:
			b = appendPart(b, a)
		case artmesh.ArtifactID:
			b = appendPart(b, string(a))
		case artmesh.AgentID:
			b = appendPart(b, string(a))
		case posID:
			if i != len(args)-1 {
				return nil, fmt.Errorf("an artifact position must be the last index argument")
			}
			b = appendDescID(b, artmesh.ArtifactID(a))
		default:
			return nil, fmt.Errorf("index argument must be a string, got %T", a)
		}
	}
	return b, nil
}

// singleIndex indexes rows of type T by one key made of string parts.
type singleIndex[T any] struct {
	nargs int
	key   func(b []byte, row T) []byte
}

// FromObject implements memdb.SingleIndexer.
func (x singleIndex[T]) FromObject(raw any) (bool, []byte, error) {
	row, ok := raw.(T)
	if !ok {
		return false, nil, fmt.Errorf("index of %T given a %T", row, raw)
	}
	return true, x.key(nil, row), nil
}

// FromArgs implements memdb.Indexer.
func (x singleIndex[T]) FromArgs(args ...any) ([]byte, error) { return argsKey(x.nargs, args) }

// newRow returns a new row of type T (a pointer type), for decoding: the
// id index of each table is a singleIndex, and tells the table's row
// type.
func (x singleIndex[T]) newRow() any {
	return reflect.New(reflect.TypeFor[T]().Elem()).Interface()
}

// multiIndex indexes rows of type T by any number of keys made of string
// parts.
type multiIndex[T any] struct {
	nargs int
	keys  func(row T) [][]byte
}

// FromObject implements memdb.MultiIndexer.
func (x multiIndex[T]) FromObject(raw any) (bool, [][]byte, error) {
	row, ok := raw.(T)
	if !ok {
		return false, nil, fmt.Errorf("index of %T given a %T", row, raw)
	}
	keys := x.keys(row)
	return len(keys) > 0, keys, nil
}

// FromArgs implements memdb.Indexer.
func (x multiIndex[T]) FromArgs(args ...any) ([]byte, error) { return argsKey(x.nargs, args) }

// versionIndex is the primary key of the versions table: the artifact id
// as a part, then the version number as 8 big-endian bytes, so that an
// artifact's versions sort by number. FromArgs takes the artifact id and,
// optionally, the version number as an int.
type versionIndex struct{}

// FromObject implements memdb.SingleIndexer.
func (versionIndex) FromObject(raw any) (bool, []byte, error) {
	row, ok := raw.(*versionRow)
	if !ok {
		return false, nil, fmt.Errorf("version index given a %T", raw)
	}
	b := appendPart(make([]byte, 0, len(row.ArtifactID)+9), string(row.ArtifactID))
	return true, binary.BigEndian.AppendUint64(b, uint64(row.Version.Version)), nil
}

// newRow returns a new version row, for decoding.
func (versionIndex) newRow() any { return &versionRow{} }

// FromArgs implements memdb.Indexer.
func (versionIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) == 0 || len(args) > 2 {
		return nil, fmt.Errorf("version index takes 1 or 2 arguments, got %d", len(args))
	}
	b, err := argsKey(1, args[:1])
	if err != nil {
		return nil, err
	}
	if len(args) == 2 {
		n, ok := args[1].(int)
		if !ok || n < 0 {
			return nil, fmt.Errorf("version number must be a non-negative int, got %v", args[1])
		}
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return b, nil
}
