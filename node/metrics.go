package node

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
	"github.com/artmesh/artmesh/node/blockstore"
)

// Metrics is one node's Prometheus registry and the counters that the
// node's parts move. Gauges of state (the catalog's Raft indexes, the block
// store's size, the replication picture, uploads in progress) are read at
// scrape time by a collector instead of being kept up to date. Each node
// has its own registry: nothing registers with client_golang's global
// default.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpIn       *prometheus.CounterVec
	httpOut      *prometheus.CounterVec

	applyDuration *prometheus.HistogramVec

	gcRuns          *prometheus.CounterVec
	gcRemovedBlocks prometheus.Counter
	gcRemovedBytes  prometheus.Counter
	gcDuration      prometheus.Histogram

	fetches     *prometheus.CounterVec
	repairBytes prometheus.Counter

	quarantined   prometheus.Counter
	unheld        prometheus.Counter
	scrubPasses   prometheus.Counter
	scrubBytes    prometheus.Counter
	scrubLastDone prometheus.Gauge

	tokensVerified *prometheus.CounterVec
	tokensRefused  *prometheus.CounterVec
}

// newMetrics builds the registry of n; the collector reads n's state at
// every scrape.
func newMetrics(n *Node) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artmesh_http_requests_total",
			Help: "HTTP API requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "artmesh_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"route"}),
		httpIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artmesh_http_request_bytes_total",
			Help: "Bytes of request bodies read by the HTTP API, by route pattern.",
		}, []string{"route"}),
		httpOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artmesh_http_response_bytes_total",
			Help: "Bytes of response bodies written by the HTTP API, by route pattern.",
		}, []string{"route"}),
		applyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "artmesh_catalog_apply_duration_seconds",
			Help:    "Time a catalog write took from proposal to its result, by path (leader: applied here; forwarded: sent to the leader) and result.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"path", "result"}),
		gcRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artmesh_gc_runs_total",
			Help: "Garbage collections run on this node, by result (ok, error).",
		}, []string{"result"}),
		gcRemovedBlocks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "artmesh_gc_removed_blocks_total",
			Help: "Blocks removed by garbage collection.",
		}),
		gcRemovedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "artmesh_gc_removed_bytes_total",
			Help: "Bytes of block data removed by garbage collection.",
		}),
		gcDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "artmesh_gc_duration_seconds",
			Help:    "Time a successful garbage collection took.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artmesh_fetches_total",
			Help: "DAG fetches from other members that ended, by source (stream: the DAG stream from holders and fetchers; bitswap: the fallback) and result (ok, error, canceled).",
		}, []string{"source", "result"}),
		repairBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "artmesh_replication_repair_bytes_total",
			Help: "Bytes of block data fetched to take copies allocated to this node (replication and repair).",
		}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "artmesh_blocks_quarantined_total",
			Help: "Blocks whose bytes failed their check on a read or a scrub and were taken out of service (never served again; repaired from another holder).",
		}),
		unheld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "artmesh_holder_records_dropped_incomplete_total",
			Help: "Holder records of this node given up because the version was no longer complete here (blocks lost or quarantined).",
		}),
		scrubPasses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "artmesh_scrub_passes_total",
			Help: "Scrub passes finished: every block re-hashed against its CID.",
		}),
		scrubBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "artmesh_scrub_bytes_total",
			Help: "Bytes of block data read and hashed by finished scrub passes.",
		}),
		scrubLastDone: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "artmesh_scrub_last_finished_timestamp_seconds",
			Help: "When the last scrub pass finished (Unix time; 0: none yet since the node started).",
		}),
		tokensVerified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artmesh_tokens_verified_total",
			Help: "Capability tokens accepted, by action (read, write).",
		}, []string{"action"}),
		tokensRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artmesh_tokens_refused_total",
			Help: "Capability tokens refused, by reason: the API error code of the refusal (unauthenticated: malformed, forged or unknown; expired; permission_denied: revoked, wrong action or access lost; unavailable: node catching up).",
		}, []string{"reason"}),
	}
	m.reg.MustRegister(
		m.httpRequests, m.httpDuration, m.httpIn, m.httpOut, m.applyDuration,
		m.gcRuns, m.gcRemovedBlocks, m.gcRemovedBytes, m.gcDuration,
		m.fetches, m.repairBytes, m.tokensVerified, m.tokensRefused,
		m.quarantined, m.unheld, m.scrubPasses, m.scrubBytes, m.scrubLastDone,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{n: n},
	)
	// Series that tests and dashboards look for exist from the start.
	m.gcRuns.WithLabelValues("ok")
	for _, a := range []string{"read", "write"} {
		m.tokensVerified.WithLabelValues(a)
	}
	return m
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is the node's registry, for tests and for other parts that
// want to add their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveHTTP counts one answered request of route (a ServeMux pattern,
// never a raw path), its status, duration and body bytes in and out.
func (m *Metrics) ObserveHTTP(route string, code int, d time.Duration, in, out int64) {
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
	if in > 0 {
		m.httpIn.WithLabelValues(route).Add(float64(in))
	}
	if out > 0 {
		m.httpOut.WithLabelValues(route).Add(float64(out))
	}
}

// observeApply records one catalog write (catalog.Config.ObserveApply).
func (m *Metrics) observeApply(forwarded bool, d time.Duration, err error) {
	path, result := "leader", "ok"
	if forwarded {
		path = "forwarded"
	}
	if err != nil {
		result = artmesh.KindOf(err).String()
	}
	m.applyDuration.WithLabelValues(path, result).Observe(d.Seconds())
}

// observeCollect records one garbage collection.
func (m *Metrics) observeCollect(st blockstore.CollectStats, err error) {
	if err != nil {
		m.gcRuns.WithLabelValues("error").Inc()
		return
	}
	m.gcRuns.WithLabelValues("ok").Inc()
	m.gcRemovedBlocks.Add(float64(st.BlocksRemoved))
	m.gcRemovedBytes.Add(float64(st.BytesRemoved))
	m.gcDuration.Observe(st.Duration.Seconds())
}

// observeFetch records one fetch that ended (exchange.Config.OnFetchEnd).
func (m *Metrics) observeFetch(source, result string) {
	m.fetches.WithLabelValues(source, result).Inc()
}

// observeToken records one capability token check.
func (m *Metrics) observeToken(action string, err error) {
	if err == nil {
		m.tokensVerified.WithLabelValues(action).Inc()
		return
	}
	m.tokensRefused.WithLabelValues(artmesh.KindOf(err).String()).Inc()
}

// statCacheFor is how long the block store's counts are reused between
// scrapes: counting walks the whole index.
const statCacheFor = 5 * time.Second

// stateCollector reads the node's state at scrape time.
type stateCollector struct {
	n *Node

	mu     sync.Mutex
	stat   blockstore.Stat
	statAt time.Time
}

var (
	descLeader      = prometheus.NewDesc("artmesh_catalog_leader", "1 if this node is the catalog's Raft leader, else 0.", nil, nil)
	descHasLeader   = prometheus.NewDesc("artmesh_catalog_has_leader", "1 if this node knows a catalog leader, else 0.", nil, nil)
	descTerm        = prometheus.NewDesc("artmesh_catalog_term", "The catalog's current Raft term.", nil, nil)
	descRaftRunning = prometheus.NewDesc("artmesh_catalog_raft_running", "1 while this node takes part in the catalog's Raft (follows, votes, campaigns); 0 once it stopped it, as a node removed from its mesh does.", nil, nil)
	descCommit      = prometheus.NewDesc("artmesh_catalog_commit_index", "The highest Raft log index this node knows to be committed.", nil, nil)
	descApplied     = prometheus.NewDesc("artmesh_catalog_applied_index", "The highest Raft log index this node's catalog state has applied.", nil, nil)
	descRejected    = prometheus.NewDesc("artmesh_catalog_entries_rejected_total", "Malformed catalog log entries (undecodable, of an unknown type) this node's state machine applied as no-ops since it started; every replica rejects the same ones.", nil, nil)
	descKeys        = prometheus.NewDesc("artmesh_catalog_idempotency_keys", "Idempotency keys the catalog keeps (each for 24 h, at most 1,048,576, the oldest dropped first).", nil, nil)
	descLastContact = prometheus.NewDesc("artmesh_catalog_last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader; -1 if never).", nil, nil)
	descBSBytes     = prometheus.NewDesc("artmesh_blockstore_bytes", "Bytes of block data in the block store.", nil, nil)
	descBSBlocks    = prometheus.NewDesc("artmesh_blockstore_blocks", "Blocks in the block store.", nil, nil)
	descBSPacks     = prometheus.NewDesc("artmesh_blockstore_packs", "Pack files of the block store.", nil, nil)
	descBSPackBytes = prometheus.NewDesc("artmesh_blockstore_pack_bytes", "Disk space the pack files use, garbage not yet compacted included (holes punched by collections excluded).", nil, nil)
	descAllocated   = prometheus.NewDesc("artmesh_replication_allocated_versions", "Content roots (versions) the catalog allocates to this node.", nil, nil)
	descHeld        = prometheus.NewDesc("artmesh_replication_held_versions", "Content roots (versions) the catalog records this node as holding.", nil, nil)
	descHeldBytes   = prometheus.NewDesc("artmesh_replication_held_bytes", "Bytes of the content roots this node is recorded as holding.", nil, nil)
	descUnder       = prometheus.NewDesc("artmesh_replication_under_replicated_versions", "Content roots of the mesh whose allocated members hold fewer copies than their factor (at most the number of members), as the catalog records it: a holder that is unreachable counts once the leader has replaced it.", nil, nil)
	descRaftRefused = prometheus.NewDesc("artmesh_raft_rpcs_refused_total", "Raft streams this node reset, by reason: not_server (the peer is not a server of this node's Raft configuration), not_voter (an RPC that claims to lead from a server without a vote), impersonation (an RPC naming a sender other than the authenticated peer), unknown_type, malformed (undecodable or oversized).", []string{"reason"}, nil)
	descUploads     = prometheus.NewDesc("artmesh_uploads_in_progress", "Upload sessions not yet confirmed, by state (open: taking bytes; received: waiting for confirm).", []string{"state"}, nil)
)

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeader, descHasLeader, descTerm, descRaftRunning, descCommit, descApplied, descRejected, descKeys, descLastContact,
		descBSBytes, descBSBlocks, descBSPacks, descBSPackBytes, descAllocated, descHeld, descHeldBytes, descUnder, descUploads, descRaftRefused} {
		ch <- d
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	if n.cat != nil {
		r := n.cat.Raft()
		leaderAddr, _ := r.LeaderWithID()
		gauge(ch, descLeader, b2f(r.State() == raft.Leader))
		gauge(ch, descHasLeader, b2f(leaderAddr != ""))
		gauge(ch, descRaftRunning, b2f(r.State() != raft.Shutdown))
		if t, err := strconv.ParseUint(r.Stats()["term"], 10, 64); err == nil {
			gauge(ch, descTerm, float64(t))
		}
		gauge(ch, descCommit, float64(r.CommitIndex()))
		gauge(ch, descApplied, float64(n.cat.AppliedIndex()))
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(n.cat.RejectedEntries()))
		gauge(ch, descKeys, float64(n.cat.IdempotencyKeys()))
		switch lc := r.LastContact(); {
		case r.State() == raft.Leader:
			gauge(ch, descLastContact, 0)
		case lc.IsZero():
			gauge(ch, descLastContact, -1)
		default:
			gauge(ch, descLastContact, time.Since(lc).Seconds())
		}
		c.collectReplication(ch)
		c.collectUploads(ch)
	}
	if n.streams != nil {
		for _, r := range mesh.RefusalReasons() {
			ch <- prometheus.MustNewConstMetric(descRaftRefused, prometheus.CounterValue, float64(n.streams.Refused(r)), r.String())
		}
	}
	if n.bs != nil {
		if st, ok := c.blockStat(); ok {
			gauge(ch, descBSBytes, float64(st.Bytes))
			gauge(ch, descBSBlocks, float64(st.Blocks))
			gauge(ch, descBSPacks, float64(st.Packs))
			gauge(ch, descBSPackBytes, float64(st.PackBytes))
		}
	}
}

// blockStat returns the block store's counts, at most statCacheFor old.
func (c *stateCollector) blockStat() (blockstore.Stat, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.statAt.IsZero() && time.Since(c.statAt) < statCacheFor {
		return c.stat, true
	}
	st, err := c.n.bs.Stat()
	if err != nil {
		return blockstore.Stat{}, false
	}
	c.stat, c.statAt = st, time.Now()
	return st, true
}

// collectReplication reads the counters the catalog keeps at apply time
// (catalog.ReplicaStats): a scrape costs the same at any catalog size.
// The under-replicated gauge counts, from committed state, the versions
// whose allocated members hold fewer copies than their factor; it no
// longer asks whether each holder is reachable from this node (that took
// a walk of every version per scrape): a holder that goes away counts
// once the allocator replaces it, after the dead-holder time. A version's
// placement (GET .../placement) still says what this node reaches.
func (c *stateCollector) collectReplication(ch chan<- prometheus.Metric) {
	n := c.n
	members, err := n.cat.Members()
	if err != nil {
		return
	}
	st, err := n.cat.ReplicaStats(max(1, len(members)))
	if err != nil {
		return
	}
	self := st.Peers[n.peerID.String()]
	gauge(ch, descAllocated, float64(self.Allocated))
	gauge(ch, descHeld, float64(self.Held))
	gauge(ch, descHeldBytes, float64(self.HeldBytes))
	gauge(ch, descUnder, float64(st.UnderReplicated))
}

func (c *stateCollector) collectUploads(ch chan<- prometheus.Metric) {
	us, err := c.n.cat.Uploads()
	if err != nil {
		return
	}
	count := map[string]int{catalog.StateOpen: 0, catalog.StateReceived: 0}
	for _, u := range us {
		if _, ok := count[u.State]; ok {
			count[u.State]++
		}
	}
	for _, s := range []string{catalog.StateOpen, catalog.StateReceived} {
		gauge(ch, descUploads, float64(count[s]), s)
	}
}
