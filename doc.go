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
// package node, which owns the content store and wires the other parts
// together:
//
//   - the content store chunks bytes into a CID-addressed UnixFS DAG (CIDv1,
//     raw leaves, sha2-256) and keeps the blocks in append-only pack files on
//     disk (node/blockstore);
//   - package catalog is a Raft-replicated state machine that holds every
//     fact that is not content: artifacts and their version chains,
//     metadata, grants, agents and groups. Its Apply is deterministic: ids and
//     times travel inside the commands;
//   - package acl holds identities and rights as pure functions: API key
//     hashing and the decision whether an agent may do something to an
//     artifact;
//   - package mesh (later) joins nodes over libp2p.
//
// A write streams the bytes into the block store, makes them durable, then
// proposes a typed catalog command through Raft and answers once the local
// state machine has applied it. Reads are served from the local state.
//
// Imports point one way: cmd/artmesh → api/client; api → node → {catalog,
// acl, mesh}; every package → artmesh.
package artmesh
