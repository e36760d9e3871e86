package artmesh

import (
	"errors"
	"strings"
)

// Kind classifies an error so that every layer can react to it without
// reading its text. The API maps each kind to exactly one HTTP status and
// error code, and the Go client maps it back. The values are append-only:
// they may be stored or sent, so an existing value never changes meaning.
type Kind uint8

// The error kinds. Append new kinds at the end.
const (
	Other                Kind = iota // an unclassified or internal error
	Invalid                          // the request is malformed or breaks a rule of the input
	NotFound                         // the thing does not exist or the caller may not see it
	PermissionDenied                 // the caller is known but lacks the right
	Unauthenticated                  // the caller could not be identified
	Conflict                         // the request conflicts with the current state
	Expired                          // the thing existed but its time is over
	TooLarge                         // the input is larger than allowed
	RangeNotSatisfiable              // a byte range lies outside the content
	Unavailable                      // the service cannot answer now; retrying may help
	InsufficientStorage              // the node's disk has no room for the write; freeing space may help
	QuotaExceeded                    // the write would take the agent over its byte quota; freeing its own space may help
	TooMany                          // the agent holds as many of these (uploads, event streams) as its quota allows
	OutcomeUnknown                   // a write may or may not have taken effect (its leader was lost, or its answer); retry it with the same idempotency key
	IdempotencyKeyReused             // an idempotency key came again with a different request
	PreconditionFailed               // a conditional write's If-Match or If-None-Match does not hold
	ChecksumMismatch                 // the content's digest is not the one the request declared; nothing was recorded
)

var kindNames = [...]string{
	Other:                "internal",
	Invalid:              "invalid_argument",
	NotFound:             "not_found",
	PermissionDenied:     "permission_denied",
	Unauthenticated:      "unauthenticated",
	Conflict:             "conflict",
	Expired:              "expired",
	TooLarge:             "too_large",
	RangeNotSatisfiable:  "range_not_satisfiable",
	Unavailable:          "unavailable",
	InsufficientStorage:  "insufficient_storage",
	QuotaExceeded:        "quota_exceeded",
	TooMany:              "too_many",
	OutcomeUnknown:       "outcome_unknown",
	IdempotencyKeyReused: "idempotency_key_reused",
	PreconditionFailed:   "precondition_failed",
	ChecksumMismatch:     "checksum_mismatch",
}

// String returns the kind's API error code, such as "not_found".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "internal"
}

// KindFromCode returns the kind whose API error code is code, or Other.
func KindFromCode(code string) Kind {
	for k, name := range kindNames {
		if name == code {
			return Kind(k)
		}
	}
	return Other
}

// Error is an error with an operation and a kind, in the manner of upspin's
// errors.E. Op names what was being done ("catalog.CreateArtifact"), Msg is
// a message for a person, and Err is the cause, if any.
type Error struct {
	Op   string
	Kind Kind
	Msg  string
	Err  error
}

// E builds an *Error from its arguments: a string is the message, a Kind the
// kind, an Op the operation and an error the cause. When the kind is not
// given it is taken from the cause.
func E(args ...any) error {
	e := &Error{}
	for _, a := range args {
		switch a := a.(type) {
		case Op:
			e.Op = string(a)
		case Kind:
			e.Kind = a
		case string:
			e.Msg = a
		case error:
			e.Err = a
		}
	}
	if e.Kind == Other && e.Err != nil {
		e.Kind = KindOf(e.Err)
	}
	return e
}

// Op is the name of an operation, given to E.
type Op string

// Error returns the message, prefixed with the operation and followed by the
// cause.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Msg != "" {
		b.WriteString(e.Msg)
	} else if e.Err == nil {
		b.WriteString(e.Kind.String())
	}
	if e.Err != nil {
		if e.Msg != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is a Kind equal to e's kind, so that
// errors.Is(err, artmesh.NotFound) works.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// Error makes a Kind usable as an errors.Is target.
func (k Kind) Error() string { return k.String() }

// KindOf returns the kind of the first *Error in err's chain, or Other.
func KindOf(err error) Kind {
	var e *Error
	for err != nil {
		if errors.As(err, &e) {
			if e.Kind != Other {
				return e.Kind
			}
			err = e.Err
			continue
		}
		if k, ok := err.(Kind); ok {
			return k
		}
		return Other
	}
	return Other
}

// Message returns the message of the outermost *Error in err's chain that
// has one, for showing to a person without the operation prefixes; else
// err's text.
func Message(err error) string {
	var e *Error
	for x := err; errors.As(x, &e); x = e.Err {
		if e.Msg != "" {
			return e.Msg
		}
	}
	if err == nil {
		return ""
	}
	return err.Error()
}
