package catalog

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// confLog is the catalog's raft.LogStore: the WAL, and the index of the
// latest configuration entry. hashicorp/raft v1.8.0 does not tell that
// index: GetConfiguration reads the latest configuration from an atomic
// value that keeps none, so its Index is always 0 (and so is Stats'
// latest_configuration_index). Membership needs it to order
// configurations (a removed node learns it was removed from a newer one).
//
// The index follows what raft stores: a configuration entry appended
// raises it; a suffix that a new leader replaces (DeleteRange up to the
// last entry) makes it scan the log again; a prefix compacted after a
// snapshot leaves it (the configuration still holds, the snapshot records
// it); with no configuration entry left in the log, it is the latest
// snapshot's configuration index.
type confLog struct {
	raft.LogStore
	snaps raft.SnapshotStore

	mu    sync.Mutex
	index uint64
}

// newConfLog wraps logs, finding the latest configuration in it or in
// snaps.
func newConfLog(logs raft.LogStore, snaps raft.SnapshotStore) (*confLog, error) {
	c := &confLog{LogStore: logs, snaps: snaps}
	idx, err := c.scan()
	if err != nil {
		return nil, err
	}
	c.index = idx
	return c, nil
}

// IsMonotonic passes on the WAL's raft.MonotonicLogStore: raft clears a
// monotonic store after installing a snapshot instead of leaving a gap.
func (c *confLog) IsMonotonic() bool {
	m, ok := c.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// StoreLog stores l, noting it if it is a configuration.
func (c *confLog) StoreLog(l *raft.Log) error { return c.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores ls, noting the last configuration among them.
func (c *confLog) StoreLogs(ls []*raft.Log) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.LogStore.StoreLogs(ls); err != nil {
		return err
	}
	for _, l := range ls {
		if l.Type == raft.LogConfiguration {
			c.index = l.Index
		}
	}
	return nil
}

// DeleteRange deletes the entries from lo to hi, and finds the latest
// configuration again when they were the log's end and held it.
func (c *confLog) DeleteRange(lo, hi uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	last, err := c.LogStore.LastIndex()
	if err != nil {
		return err
	}
	if err := c.LogStore.DeleteRange(lo, hi); err != nil {
		return err
	}
	if hi >= last && c.index >= lo {
		idx, err := c.scan()
		if err != nil {
			return err
		}
		c.index = idx
	}
	return nil
}

// latest returns the index of the latest configuration (0: none): the
// log's, or the latest snapshot's when that is newer (a snapshot
// installed from the leader brings its configuration without a log
// entry, and raft does not touch an empty log when it installs one).
func (c *confLog) latest() uint64 {
	c.mu.Lock()
	idx := c.index
	c.mu.Unlock()
	if metas, err := c.snaps.List(); err == nil && len(metas) > 0 {
		idx = max(idx, metas[0].ConfigurationIndex)
	}
	return idx
}

// scan finds the latest configuration entry in the log, from its end, or
// else the latest snapshot's.
func (c *confLog) scan() (uint64, error) {
	first, err := c.LogStore.FirstIndex()
	if err != nil {
		return 0, fmt.Errorf("read the log's first index: %w", err)
	}
	last, err := c.LogStore.LastIndex()
	if err != nil {
		return 0, fmt.Errorf("read the log's last index: %w", err)
	}
	for i := last; i >= first && i > 0; i-- {
		var l raft.Log
		if err := c.LogStore.GetLog(i, &l); err != nil {
			return 0, fmt.Errorf("read log entry %d: %w", i, err)
		}
		if l.Type == raft.LogConfiguration {
			return i, nil
		}
	}
	metas, err := c.snaps.List()
	if err != nil {
		return 0, fmt.Errorf("list the snapshots: %w", err)
	}
	if len(metas) > 0 {
		return metas[0].ConfigurationIndex, nil
	}
	return 0, nil
}

// GetLog reads an entry. An entry before the first index is not found,
// even when the WAL still holds it (it frees whole segments only): a
// member that needs entries from before a snapshot gets the snapshot, a
// copy of the state at the speed of the disk, not the log replayed from
// its start.
func (c *confLog) GetLog(index uint64, l *raft.Log) error {
	first, err := c.LogStore.FirstIndex()
	if err != nil {
		return err
	}
	if index < first {
		return raft.ErrLogNotFound
	}
	return c.LogStore.GetLog(index, l)
}
