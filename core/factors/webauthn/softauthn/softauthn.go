// Package softauthn is a software WebAuthn authenticator for tests: it answers a relying
// party's registration and authentication options the way a browser with a passkey does,
// with an ES256 key per credential and "none" attestation, and lets a test misbehave on
// purpose (another origin, no user verification, a sign count that goes backwards).
package softauthn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Flags of the authenticator data.
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

var b64 = base64.RawURLEncoding

// Authenticator holds credentials, as a platform authenticator or a security key does.
type Authenticator struct {
	// Origin is what the "browser" puts in the client data.
	Origin string
	// NoUserVerification answers without the UV flag (a key with no PIN set).
	NoUserVerification bool
	// NotBackedUp makes new credentials device-bound (a security key): BE and BS clear.
	NotBackedUp bool
	// ZeroCounter makes the authenticator report a sign count of 0 always, as synced
	// passkeys do.
	ZeroCounter bool
	creds       map[string]*Credential
}

// Credential is one credential the authenticator holds.
type Credential struct {
	ID         []byte
	RPID       string
	UserHandle []byte
	Key        *ecdsa.PrivateKey
	// Counter is the sign count the next assertion reports (before it is incremented).
	Counter uint32
}

// New returns an authenticator whose answers come from origin.
func New(origin string) *Authenticator {
	return &Authenticator{Origin: origin, creds: map[string]*Credential{}}
}

// Credential returns the credential with the base64url id, or nil.
func (a *Authenticator) Credential(id string) *Credential { return a.creds[id] }

// CreationOptions is what Create reads from a relying party's registration options.
type CreationOptions struct {
	Challenge string `json:"challenge"`
	RP        struct {
		ID string `json:"id"`
	} `json:"rp"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
}

// RequestOptions is what Get reads from a relying party's authentication options.
type RequestOptions struct {
	Challenge        string `json:"challenge"`
	RPID             string `json:"rpId"`
	AllowCredentials []struct {
		ID string `json:"id"`
	} `json:"allowCredentials"`
}

func (a *Authenticator) flags() byte {
	f := byte(flagUP)
	if !a.NoUserVerification {
		f |= flagUV
	}
	if !a.NotBackedUp {
		f |= flagBE | flagBS
	}
	return f
}

func clientData(kind, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

func authData(rpID string, flags byte, counter uint32, attested []byte) []byte {
	h := sha256.Sum256([]byte(rpID))
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, counter)
	return append(out, attested...)
}

// coseKey encodes an ES256 public key as a COSE_Key.
func coseKey(k *ecdsa.PublicKey) ([]byte, error) {
	raw, err := k.ECDH()
	if err != nil {
		return nil, err
	}
	pt := raw.Bytes() // 0x04 || X || Y
	enc, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		return nil, err
	}
	return enc.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pt[1:33], -3: pt[33:65]})
}

// Create makes a new credential for options (a relying party's registration options JSON) and
// returns the browser's answer (RegistrationResponseJSON) and the credential.
func (a *Authenticator) Create(options []byte) (json.RawMessage, *Credential, error) {
	var o CreationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, nil, fmt.Errorf("registration options: %w", err)
	}
	handle, err := b64.DecodeString(o.User.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("user.id: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	id := make([]byte, 32)
	rand.Read(id)
	c := &Credential{ID: id, RPID: o.RP.ID, UserHandle: handle, Key: key}
	pub, err := coseKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	attested := make([]byte, 16) // AAGUID: zero for "none" attestation
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(id)))
	attested = append(append(attested, id...), pub...)
	enc, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		return nil, nil, err
	}
	att, err := enc.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData(o.RP.ID, a.flags()|flagAT, 0, attested)})
	if err != nil {
		return nil, nil, err
	}
	a.creds[b64.EncodeToString(id)] = c
	answer, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(id), "rawId": b64.EncodeToString(id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(clientData("webauthn.create", o.Challenge, a.Origin)),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal"},
		},
		"clientExtensionResults": map[string]any{}, "authenticatorAttachment": "platform",
	})
	return answer, c, err
}

// Get answers options (a relying party's authentication options JSON) with credential c, as a
// browser does after the user picks it.
func (a *Authenticator) Get(options []byte, c *Credential) (json.RawMessage, error) {
	var o RequestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("authentication options: %w", err)
	}
	if !a.ZeroCounter {
		c.Counter++
	}
	data := authData(o.RPID, a.flags(), c.Counter, nil)
	cd := clientData("webauthn.get", o.Challenge, a.Origin)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, data...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.Key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(data),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(c.UserHandle),
		},
		"clientExtensionResults": map[string]any{}, "authenticatorAttachment": "platform",
	})
}
