// Package artmesh is the shared vocabulary of an artmesh node: the ids, data
// types, rights and error kinds that every other package of the module meets
// at. It holds no behaviour of its own beyond constructing and checking these
// values.
//
// # Architecture
//
// Every host that runs agents runs one node. Agents talk only to their local
// node's HTTP API (package api, with its typed Go client in api/client, which
// the artmesh command uses). Everything the HTTP layer does is a call on
// package node, the composition root: it opens the parts in order, wires
// them, checks every caller's rights before anything is proposed, and runs
// the reconcilers.
//
//	cmd/artmesh ──> api/client ──> api/apitype       the CLI is a client of the HTTP API
//	cmd/artmesh ──> api ──> node ──> node/placement     where content lives (pure decisions)
//	                          │  ──> node/repo          the folder: config, init, lock, tickets
//	                          │  ──> node/content       chunk, import, export, walk
//	                          │  ──> node/exchange      verified blocks from members: DAG stream, bitswap
//	                          │  ──> node/uploads       upload sessions' staging files
//	                          │  ──> node/membership    the roster admission checks, join, members, voters
//	                          │  ──> node/blockstore    pack files + bbolt index on disk
//	                          └──> catalog, mesh, acl
//	every package ──> artmesh (this package)
//
// The parts below node:
//
//   - catalog is the Raft-replicated state machine (hashicorp/raft, raft-wal,
//     and its tables in a bbolt file): artifacts and version chains, grants, agents, groups,
//     uploads, tokens, members, placement (holders and allocations), pins
//     and the replication policy. Apply is deterministic. Its watch
//     publishes every applied index with the topics it changed; nothing
//     polls.
//   - mesh is the libp2p host, admission by peer id (only members may open
//     a stream, checked when its protocol is negotiated), the Raft stream
//     layer, small RPCs, and the DAG stream and push that move verified
//     blocks. It knows nothing of artifacts.
//   - acl is pure: API key hashes, capability tokens, the access decision.
//   - node/placement decides where content lives, as pure functions: the
//     leader's allocation of versions to members, what one node must
//     fetch, record or give up, and which cached content fits the budget.
//
// # Side effects are reconcilers
//
// Nothing that fetches, collects, trims or drops runs from the call site
// that happened to change something. Each side effect is a loop that
// node.Open starts and Node.Close stops; the reconcilers among them wait on
// the catalog watch, compare committed state with local state and act on
// the difference (node/reconcile.go). The nine goroutines:
//
//   - catch-up (catchUpLoop): after start, the node applies the leader's
//     commit index (a read-index barrier) before it serves; until then
//     every call is a 503 to retry, never a 401 or 404, and the next four
//     loops wait;
//   - garbage collection (collect): only with a leader and after a
//     read-index barrier, it removes blocks that nothing keeps here:
//     versions allocated to or held by this node, pins, uploads and imports
//     in flight, copies being pushed here, reads in progress, and a
//     least-recently-used cache within a budget;
//   - placement (place): fetches what is allocated or pinned here, records
//     this node as a holder once the whole DAG is verified and durable, and
//     gives up holder records that are no longer allocated here, never
//     below the factor;
//   - allocation (allocate, on the leader): allocates every version to its
//     factor of members and replaces holders unreachable too long;
//   - fetching rows (reportFetching): keeps this node's rows in the
//     catalog's fetching table equal to the large fetches it serves, and on
//     the leader drops rows nobody renewed;
//   - membership (membership.Manager.Run): finds out whether this node was
//     removed, cuts off removed members, keeps the mesh's roster in step
//     with the catalog and, on the leader, tends the Raft voters;
//   - scrub (scrubLoop): re-hashes every stored block at a bounded rate and
//     quarantines one that fails, so that it is fetched again elsewhere;
//   - janitor (janitorLoop): expires uploads and forgets expired tokens (on
//     the leader) and removes staging files of closed uploads;
//   - residency (residencyLoop): drops the pages of the node's bbolt files
//     from memory when they pass a budget.
//
// A write streams the bytes into the block store, makes them durable (and,
// with replicas=N, has N-1 other members take durable copies), then proposes
// a typed catalog command and answers once the local state machine has
// applied it. Reads are served from the local state.
package artmesh
