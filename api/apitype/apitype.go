// Package apitype holds the JSON shapes of the artmesh HTTP API (API.md,
// api/openapi.json) that both of its ends speak: the server, package api,
// and its Go client, package api/client. Request bodies, the answers the
// server builds for a route, and the values those answers name are each
// declared here once, so that the two ends cannot drift apart.
//
// Answers that are a value of the module's root package (artmesh.Artifact,
// artmesh.Version, artmesh.Access ...) are sent as those types and have no
// twin here. A few answers are a node type that is exactly its wire shape
// (the node's info, a member, a pin, a placement, the policy, the store's
// stat); the server encodes those as they are, and the types here that
// mirror them are kept field for field and tag for tag the same by api's
// tests.
//
// The package imports only the standard library and the module's root
// package, so that a client needs nothing of the node to speak the API.
package apitype

// Items is the {"items": [...]} shape of the API's unpaged lists: agents,
// groups, versions, members, pins and placements.
type Items[T any] struct {
	Items []T `json:"items"`
}

// ErrorBody is the JSON shape of every error response:
// {"error": {"code": ..., "message": ...}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	// Code is the error's kind as API.md names it, such as "not_found"
	// (artmesh.Kind's String; artmesh.KindFromCode reads it back).
	Code string `json:"code"`
	// Message is for a person; internal errors do not carry their text.
	Message string `json:"message"`
}
