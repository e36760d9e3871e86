package catalog

import (
	"context"
	"fmt"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/go-memdb"
)

// Quotas: each agent's usage (stored bytes, staged bytes, open uploads) is
// kept in the derived usage table, updated by the writes that change it
// and rebuilt by Restore (it is not in snapshots), so that a check reads
// one row instead of scanning versions. The limits are the agent's own
// quota (in its agents row) over the mesh defaults (in the policy row);
// admins are unlimited unless their own quota says otherwise. The state
// machine re-checks the limits when it applies CreateArtifact, AddVersion
// and CreateUpload, so that writes the nodes checked concurrently cannot
// overshoot: whichever is applied first wins. ConfirmUpload is not
// checked again: its bytes were counted (as staged) when the upload was
// created. Log entries written before quotas existed meet no limits, as
// no quota was set then.

const (
	// tableUsage is the derived usage table.
	tableUsage = "usage"

	// 33 and 34 are taken, with ignoreUnknownTypeFlag, by the fetching
	// rows; KnownCommands counts types without the flag, so a new type
	// must be above them.
	setQuotaType commandType = 35
)

// usageRow is a row of the usage table: what one agent holds.
type usageRow struct {
	Agent   artmesh.AgentID
	Bytes   int64 // the sizes of the live versions of its artifacts
	Staged  int64 // the declared sizes of its uploads that are not confirmed
	Uploads int64 // how many uploads it has that are not confirmed
}

// setQuotaCmd sets an agent's own quota, or the mesh defaults when Agent
// is empty.
type setQuotaCmd struct {
	Agent artmesh.AgentID `json:"agent,omitempty"`
	Quota artmesh.Quota   `json:"quota"`
}

func (setQuotaCmd) commandType() commandType { return setQuotaType }

func usageTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableUsage: {
			Name: tableUsage,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: singleIndex[*usageRow]{
					nargs: 1,
					key:   func(b []byte, r *usageRow) []byte { return appendPart(b, string(r.Agent)) },
				}},
			},
		},
	}
}

// usageTxn returns an agent's usage row (zero when it holds nothing).
func usageTxn(tx *Txn, agent artmesh.AgentID) (usageRow, error) {
	raw, err := tx.First(tableUsage, indexID, agent)
	if err != nil {
		return usageRow{}, err
	}
	if raw == nil {
		return usageRow{Agent: agent}, nil
	}
	return *raw.(*usageRow), nil
}

// addUsageTxn adds d's counts to agent's usage; a row that comes to zero
// is removed.
func addUsageTxn(tx *Txn, agent artmesh.AgentID, d usageRow) error {
	u, err := usageTxn(tx, agent)
	if err != nil {
		return err
	}
	u.Bytes += d.Bytes
	u.Staged += d.Staged
	u.Uploads += d.Uploads
	if u.Bytes == 0 && u.Staged == 0 && u.Uploads == 0 {
		if _, err := tx.DeleteAll(tableUsage, indexID, agent); err != nil {
			return err
		}
		return nil
	}
	return tx.Insert(tableUsage, &u)
}

// addUploadUsageTxn counts (sign 1) or uncounts (sign -1) an upload that
// is not confirmed.
func addUploadUsageTxn(tx *Txn, u *Upload, sign int64) error {
	if u.State == StateConfirmed {
		return nil
	}
	return addUsageTxn(tx, u.Owner, usageRow{Staged: sign * u.SizeBytes, Uploads: sign})
}

// quotaDefaultsTxn returns the mesh defaults.
func quotaDefaultsTxn(tx *Txn) (artmesh.Quota, error) {
	raw, err := tx.First(tablePolicy, indexID, policyRowID)
	if err != nil || raw == nil {
		return artmesh.Quota{}, err
	}
	return raw.(*policyRow).Quota, nil
}

// quotaStatusTxn returns an agent's usage (without streams, which nodes
// count) and limits.
func quotaStatusTxn(tx *Txn, op artmesh.Op, agent artmesh.AgentID) (artmesh.QuotaStatus, error) {
	row, err := agentTxn(tx, op, agent)
	if err != nil {
		return artmesh.QuotaStatus{}, err
	}
	defaults, err := quotaDefaultsTxn(tx)
	if err != nil {
		return artmesh.QuotaStatus{}, internal(op, err)
	}
	u, err := usageTxn(tx, agent)
	if err != nil {
		return artmesh.QuotaStatus{}, internal(op, err)
	}
	return artmesh.QuotaStatus{
		Agent:    agent,
		Admin:    row.Admin,
		Usage:    artmesh.Usage{Bytes: u.Bytes, Staged: u.Staged, Uploads: u.Uploads},
		Limits:   artmesh.Limits(row.Quota, defaults, row.Admin),
		Override: row.Quota,
		Defaults: defaults,
	}, nil
}

// CheckBytes returns a QuotaExceeded error when adding size stored bytes
// would take the agent of st over its byte quota (stored plus staged).
func CheckBytes(st artmesh.QuotaStatus, size int64) error {
	if have := st.Usage.Bytes + st.Usage.Staged; !artmesh.Within(have+size, st.Limits.Bytes) {
		return artmesh.E(artmesh.QuotaExceeded, fmt.Sprintf(
			"agent %s is over its byte quota: it holds %s (stored and staged) of %s, and this write needs %s more",
			st.Agent, artmesh.FormatBytes(have), artmesh.FormatBytes(st.Limits.Bytes), artmesh.FormatBytes(size)))
	}
	return nil
}

// CheckUpload returns the error of opening an upload of size bytes for
// the agent of st: TooMany at its limit of open uploads, QuotaExceeded
// over its staged or byte quota.
func CheckUpload(st artmesh.QuotaStatus, size int64) error {
	if !artmesh.Within(st.Usage.Uploads+1, st.Limits.Uploads) {
		return artmesh.E(artmesh.TooMany, fmt.Sprintf(
			"agent %s has %d open uploads, its limit; confirm or delete one first", st.Agent, st.Usage.Uploads))
	}
	if !artmesh.Within(st.Usage.Staged+size, st.Limits.Staged) {
		return artmesh.E(artmesh.QuotaExceeded, fmt.Sprintf(
			"agent %s is over its staged quota: its open uploads declare %s of %s, and this one %s more",
			st.Agent, artmesh.FormatBytes(st.Usage.Staged), artmesh.FormatBytes(st.Limits.Staged), artmesh.FormatBytes(size)))
	}
	return CheckBytes(st, size)
}

// checkBytesTxn is CheckBytes within the state machine. An agent that
// does not exist passes: the write itself reports it.
func checkBytesTxn(tx *Txn, op artmesh.Op, agent artmesh.AgentID, size int64) error {
	if raw, err := tx.First(tableAgents, indexID, agent); err != nil {
		return internal(op, err)
	} else if raw == nil {
		return nil
	}
	st, err := quotaStatusTxn(tx, op, agent)
	if err != nil {
		return err
	}
	if err := CheckBytes(st, size); err != nil {
		return artmesh.E(op, err)
	}
	return nil
}

func setQuotaTxn(tx *Txn, cmd setQuotaCmd) (artmesh.QuotaStatus, error) {
	const op = artmesh.Op("catalog.SetQuota")
	if err := cmd.Quota.Validate(); err != nil {
		return artmesh.QuotaStatus{}, artmesh.E(op, err)
	}
	if cmd.Agent == "" {
		row := &policyRow{ID: policyRowID, Policy: DefaultPolicy}
		raw, err := tx.First(tablePolicy, indexID, policyRowID)
		if err != nil {
			return artmesh.QuotaStatus{}, internal(op, err)
		}
		if raw != nil {
			next := *raw.(*policyRow)
			row = &next
		}
		row.Quota = cmd.Quota
		if err := tx.Insert(tablePolicy, row); err != nil {
			return artmesh.QuotaStatus{}, internal(op, err)
		}
		return artmesh.QuotaStatus{Defaults: cmd.Quota}, nil
	}
	row, err := agentTxn(tx, op, cmd.Agent)
	if err != nil {
		return artmesh.QuotaStatus{}, err
	}
	next := *row
	next.Quota = cmd.Quota
	if err := tx.Insert(tableAgents, &next); err != nil {
		return artmesh.QuotaStatus{}, internal(op, err)
	}
	return quotaStatusTxn(tx, op, cmd.Agent)
}

// deriveUsageTxn rebuilds the usage table from the artifacts, versions and
// uploads, for Restore.
func deriveUsageTxn(tx *Txn) error {
	usage := make(map[artmesh.AgentID]*usageRow)
	row := func(a artmesh.AgentID) *usageRow {
		u := usage[a]
		if u == nil {
			u = &usageRow{Agent: a}
			usage[a] = u
		}
		return u
	}
	owners := make(map[artmesh.ArtifactID]artmesh.AgentID)
	it, err := tx.Get(tableArtifacts, indexID)
	if err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*artifactRow)
		owners[a.ID] = a.Owner
	}
	if it, err = tx.Get(tableVersions, indexID); err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		v := raw.(*versionRow)
		if owner, ok := owners[v.ArtifactID]; ok {
			row(owner).Bytes += v.SizeBytes
		}
	}
	if it, err = tx.Get(tableUploads, indexID); err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if u := raw.(*Upload); u.State != StateConfirmed {
			r := row(u.Owner)
			r.Staged += u.SizeBytes
			r.Uploads++
		}
	}
	for _, u := range usage {
		if u.Bytes == 0 && u.Staged == 0 && u.Uploads == 0 {
			continue
		}
		if err := tx.Insert(tableUsage, u); err != nil {
			return err
		}
	}
	return nil
}

// ----- the Catalog's methods -----

// QuotaStatus returns an agent's usage (its Streams are left to the node)
// and the limits that apply to it. NotFound when there is no such agent.
func (c *Catalog) QuotaStatus(agent artmesh.AgentID) (artmesh.QuotaStatus, error) {
	return read(c.fsm.state(), func(tx *Txn) (artmesh.QuotaStatus, error) {
		return quotaStatusTxn(tx, "catalog.QuotaStatus", agent)
	})
}

// QuotaDefaults returns the mesh defaults of the quotas of agents that are
// not admins (0: no limit).
func (c *Catalog) QuotaDefaults() (artmesh.Quota, error) {
	return read(c.fsm.state(), func(tx *Txn) (artmesh.Quota, error) {
		q, err := quotaDefaultsTxn(tx)
		if err != nil {
			return artmesh.Quota{}, internal("catalog.QuotaDefaults", err)
		}
		return q, nil
	})
}

// SetQuota sets an agent's own quota (zero fields: the defaults;
// artmesh.Unlimited: no limit) and returns its status. NotFound when there
// is no such agent.
func (c *Catalog) SetQuota(ctx context.Context, agent artmesh.AgentID, q artmesh.Quota) (artmesh.QuotaStatus, error) {
	if agent == "" {
		return artmesh.QuotaStatus{}, invalid("catalog.SetQuota", "an agent is required")
	}
	if err := q.Validate(); err != nil {
		return artmesh.QuotaStatus{}, err
	}
	return proposeAs[artmesh.QuotaStatus](ctx, c, setQuotaCmd{Agent: agent, Quota: q})
}

// SetQuotaDefaults sets the mesh defaults of the quotas of agents that are
// not admins (zero fields: no limit).
func (c *Catalog) SetQuotaDefaults(ctx context.Context, q artmesh.Quota) (artmesh.Quota, error) {
	if err := q.Validate(); err != nil {
		return artmesh.Quota{}, err
	}
	st, err := proposeAs[artmesh.QuotaStatus](ctx, c, setQuotaCmd{Quota: q})
	return st.Defaults, err
}
