package acl

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/artmesh/artmesh"
)

// A capability token is a signed, expiring, scoped grant that any node of
// the mesh verifies offline; it stands where other systems use signed URLs.
//
// Wire format, version 1: the URL-safe base64 (no padding) of
//
//	payload:   version (1 byte, = 1)
//	           action (1 byte: 1 read, 2 write)
//	           not-before, expiry (8 bytes each, big-endian Unix seconds)
//	           token id (16 random bytes)
//	           issuer (1 length byte, then the issuing node's peer id bytes)
//	           agent (1 length byte, then the granting agent's id)
//	           target (1 length byte, then the artifact or upload id)
//	           version (uvarint; 0 names the current version)
//	signature: 64 bytes, Ed25519 over tokenDomain followed by the payload,
//	           by the issuing node's key
//
// Ed25519 peer ids embed their public key, so the issuer's key comes from
// the token itself; whether the issuer is a member of the mesh is for the
// verifier to say. Parsing is strict and total: any other length, an
// unknown version or action, a trailing byte, or an id of the wrong form is
// refused, and no input makes it panic.

// Action is what a token allows.
type Action uint8

// The actions.
const (
	ActionRead  Action = 1 // download an artifact's content
	ActionWrite Action = 2 // send the bytes of an upload session
)

// String names the action.
func (a Action) String() string {
	switch a {
	case ActionRead:
		return "read"
	case ActionWrite:
		return "write"
	}
	return "unknown"
}

// TokenVersion is the format version this package writes.
const TokenVersion = 1

const (
	tokenDomain  = "artmesh capability token v1\x00"
	fixedHeader  = 1 + 1 + 8 + 8 + 16
	sigSize      = ed25519.SignatureSize
	maxField     = 128
	maxTokenSize = 1024 // encoded; a real token is about 250 characters
	// TokenIDPrefix starts the text form of a token id.
	TokenIDPrefix = "tok_"
)

// ed25519PeerIDPrefix is how a libp2p peer id of an Ed25519 key begins:
// an identity multihash (code 0, length 36) of the protobuf PublicKey
// {Type: Ed25519 (1), Data: 32 bytes}. The key follows.
var ed25519PeerIDPrefix = []byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}

// PeerIDFromPublicKey returns the libp2p peer id bytes of an Ed25519 key.
func PeerIDFromPublicKey(pub ed25519.PublicKey) string {
	return string(ed25519PeerIDPrefix) + string(pub)
}

// PublicKeyFromPeerID returns the Ed25519 key embedded in peer id bytes.
func PublicKeyFromPeerID(id string) (ed25519.PublicKey, error) {
	if len(id) != len(ed25519PeerIDPrefix)+ed25519.PublicKeySize || id[:len(ed25519PeerIDPrefix)] != string(ed25519PeerIDPrefix) {
		return nil, errors.New("issuer is not an Ed25519 peer id")
	}
	return ed25519.PublicKey(id[len(ed25519PeerIDPrefix):]), nil
}

// TokenID identifies a token, for revocation.
type TokenID [16]byte

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// String returns the id's text form, "tok_" and 26 base32 characters.
func (id TokenID) String() string {
	return TokenIDPrefix + strings.ToLower(idEncoding.EncodeToString(id[:]))
}

// ParseTokenID reads a token id's text form.
func ParseTokenID(s string) (TokenID, error) {
	var id TokenID
	rest, ok := strings.CutPrefix(s, TokenIDPrefix)
	if !ok || len(rest) != 26 {
		return id, artmesh.E(artmesh.Invalid, fmt.Sprintf("%q is not a token id", s))
	}
	b, err := idEncoding.DecodeString(strings.ToUpper(rest))
	if err != nil || len(b) != len(id) {
		return id, artmesh.E(artmesh.Invalid, fmt.Sprintf("%q is not a token id", s))
	}
	copy(id[:], b)
	return id, nil
}

// NewTokenID returns a random token id.
func NewTokenID() TokenID {
	var id TokenID
	if _, err := rand.Read(id[:]); err != nil {
		panic("acl: no randomness: " + err.Error())
	}
	return id
}

// Claims are what a token says.
type Claims struct {
	ID        TokenID
	Action    Action
	Issuer    string          // the issuing node's peer id, as bytes
	Agent     artmesh.AgentID // the agent whose right the token lends
	Target    string          // the artifact id (read) or upload id (write)
	Version   int             // the artifact version; 0 for the current one
	NotBefore time.Time
	Expires   time.Time
}

// Mint signs claims with the issuing node's key and returns the token. The
// issuer is taken from the key.
func Mint(c Claims, key ed25519.PrivateKey) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", errors.New("acl: not an Ed25519 private key")
	}
	c.Issuer = PeerIDFromPublicKey(key.Public().(ed25519.PublicKey))
	payload, err := c.marshal()
	if err != nil {
		return "", err
	}
	sig := ed25519.Sign(key, append([]byte(tokenDomain), payload...))
	return base64.RawURLEncoding.EncodeToString(append(payload, sig...)), nil
}

func (c Claims) marshal() ([]byte, error) {
	if c.Action != ActionRead && c.Action != ActionWrite {
		return nil, fmt.Errorf("acl: unknown action %d", c.Action)
	}
	if !c.Expires.After(c.NotBefore) {
		return nil, errors.New("acl: a token must expire after it becomes valid")
	}
	if c.Version < 0 {
		return nil, errors.New("acl: negative version")
	}
	if err := checkFields(c); err != nil {
		return nil, err
	}
	b := make([]byte, 0, fixedHeader+3+len(c.Issuer)+len(c.Agent)+len(c.Target)+binary.MaxVarintLen64)
	b = append(b, TokenVersion, byte(c.Action))
	b = binary.BigEndian.AppendUint64(b, uint64(c.NotBefore.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Expires.Unix()))
	b = append(b, c.ID[:]...)
	for _, f := range []string{c.Issuer, string(c.Agent), c.Target} {
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	return binary.AppendUvarint(b, uint64(c.Version)), nil
}

// checkFields checks the variable fields of claims.
func checkFields(c Claims) error {
	if _, err := PublicKeyFromPeerID(c.Issuer); err != nil {
		return fmt.Errorf("acl: %w", err)
	}
	if artmesh.ValidateAgentID(string(c.Agent)) != nil {
		return errors.New("acl: bad agent id")
	}
	switch c.Action {
	case ActionRead:
		if !artmesh.ValidArtifactID(c.Target) {
			return errors.New("acl: a read token's target must be an artifact id")
		}
	case ActionWrite:
		if !strings.HasPrefix(c.Target, artmesh.UploadPrefix) || len(c.Target) > maxField || !utf8.ValidString(c.Target) {
			return errors.New("acl: a write token's target must be an upload id")
		}
	}
	return nil
}

// errMalformed is the one answer to any token that does not parse, so that
// a forger learns nothing of where it went wrong.
var errMalformed = artmesh.E(artmesh.Unauthenticated, "the capability token is not valid")

// Parse reads a token's claims, checking its form but not its signature:
// use Verify for that.
func Parse(token string) (Claims, error) {
	c, _, _, err := parse(token)
	return c, err
}

func parse(token string) (c Claims, signed, sig []byte, err error) {
	if len(token) == 0 || len(token) > maxTokenSize {
		return c, nil, nil, errMalformed
	}
	raw, derr := base64.RawURLEncoding.Strict().DecodeString(token)
	if derr != nil || len(raw) < fixedHeader+3+1+sigSize {
		return c, nil, nil, errMalformed
	}
	payload, sig := raw[:len(raw)-sigSize], raw[len(raw)-sigSize:]
	if payload[0] != TokenVersion {
		return c, nil, nil, errMalformed
	}
	c.Action = Action(payload[1])
	nbf := int64(binary.BigEndian.Uint64(payload[2:10]))
	exp := int64(binary.BigEndian.Uint64(payload[10:18]))
	copy(c.ID[:], payload[18:34])
	rest := payload[fixedHeader:]
	var fields [3]string
	for i := range fields {
		if len(rest) < 1 {
			return c, nil, nil, errMalformed
		}
		n := int(rest[0])
		if n == 0 || n > maxField || len(rest) < 1+n {
			return c, nil, nil, errMalformed
		}
		fields[i], rest = string(rest[1:1+n]), rest[1+n:]
	}
	v, n := binary.Uvarint(rest)
	if n <= 0 || n != len(rest) || v > 1<<31 {
		return c, nil, nil, errMalformed
	}
	c.Issuer, c.Agent, c.Target, c.Version = fields[0], artmesh.AgentID(fields[1]), fields[2], int(v)
	if nbf < 0 || exp <= nbf || exp > 1<<40 {
		return c, nil, nil, errMalformed
	}
	c.NotBefore, c.Expires = time.Unix(nbf, 0).UTC(), time.Unix(exp, 0).UTC()
	if c.Action != ActionRead && c.Action != ActionWrite {
		return c, nil, nil, errMalformed
	}
	if checkFields(c) != nil {
		return c, nil, nil, errMalformed
	}
	// Re-encoding must give the same bytes: one token, one encoding.
	again, merr := c.marshal()
	if merr != nil || string(again) != string(payload) {
		return c, nil, nil, errMalformed
	}
	return c, append([]byte(tokenDomain), payload...), sig, nil
}

// VerifyOptions are what Verify needs to know besides the token.
type VerifyOptions struct {
	Now time.Time
	// Skew is the clock difference allowed between issuer and verifier, on
	// both ends of the validity window, for tokens issued by other nodes.
	Skew time.Duration
	// Self is the verifying node's own peer id (as bytes). A token it
	// issued itself was timed by the clock it verifies with, so its expiry
	// gets no Skew: it never works past its expiry here. (Its start keeps
	// the Skew, which only spares a token minted just before the clock
	// stepped back.)
	Self string
	// IsMember reports whether a peer id (as bytes) is a current member of
	// the mesh.
	IsMember func(issuer string) bool
	// Revoked reports whether a token id was revoked.
	Revoked func(TokenID) bool
}

// Verify checks a token: its form, its signature by the issuer's key, that
// the issuer is a member, its time window (widened by Skew, but for the
// expiry of a token the verifier issued) and that it was not revoked. It
// returns the claims; whether the granting agent still holds the right is
// for the caller to check, with the catalog. A token that is malformed,
// forged or from a stranger is Unauthenticated; an expired one Expired; a
// revoked one PermissionDenied.
func Verify(token string, o VerifyOptions) (Claims, error) {
	c, signed, sig, err := parse(token)
	if err != nil {
		return Claims{}, err
	}
	pub, err := PublicKeyFromPeerID(c.Issuer)
	if err != nil || !ed25519.Verify(pub, signed, sig) {
		return Claims{}, errMalformed
	}
	if o.IsMember == nil || !o.IsMember(c.Issuer) {
		return Claims{}, artmesh.E(artmesh.Unauthenticated, "the capability token was issued by a node that is not a member of this mesh")
	}
	if o.Now.Add(o.Skew).Before(c.NotBefore) {
		return Claims{}, artmesh.E(artmesh.Unauthenticated, "the capability token is not valid yet")
	}
	expirySkew := o.Skew
	if o.Self != "" && c.Issuer == o.Self {
		expirySkew = 0
	}
	if !o.Now.Add(-expirySkew).Before(c.Expires) {
		return Claims{}, artmesh.E(artmesh.Expired, fmt.Sprintf("the capability token expired at %s", c.Expires.Format(time.RFC3339)))
	}
	if o.Revoked != nil && o.Revoked(c.ID) {
		return Claims{}, artmesh.E(artmesh.PermissionDenied, "the capability token was revoked")
	}
	return c, nil
}
