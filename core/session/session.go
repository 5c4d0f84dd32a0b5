// Package session creates, refreshes, verifies and revokes sessions: RS256 access tokens in
// SuperTokens' v5 layout, signed by package keys, and opaque rotating refresh tokens whose
// reuse after rotation revokes the session (theft detection).
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/keys"
	"github.com/twofold-dev/twofold/core/store"
)

// Errors callers branch on; their texts are the FDI 401 messages.
var (
	// ErrUnauthorised: no session, or a revoked or unknown one. Sign in again.
	ErrUnauthorised = errors.New(contract.MessageUnauthorised)
	// ErrTryRefreshToken: the access token is expired or cannot be verified; refreshing may help.
	ErrTryRefreshToken = errors.New(contract.MessageTryRefreshToken)
	// ErrTokenTheft: a rotated refresh token was reused; the session is revoked.
	ErrTokenTheft = errors.New(contract.MessageTokenTheft)
	// ErrReservedClaim: a custom claim would overwrite a field of the token layout.
	ErrReservedClaim = errors.New("claim name is reserved by the access-token layout")
	// ErrUserDisabled: an admin disabled the user; no session starts for it.
	ErrUserDisabled = errors.New("the user is disabled")
)

// reserved are the payload keys of the v5 layout; custom claims cannot use them.
var reserved = map[string]bool{
	"sub": true, "rsub": true, "tId": true, "sessionHandle": true, "refreshTokenHash1": true,
	"parentRefreshTokenHash1": true, "antiCsrfToken": true, "iat": true, "exp": true, "iss": true,
}

// Settings are a tenant's session settings.
type Settings struct {
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
	CookieDomain         string
	CookieSameSite       http.SameSite
	CookieSecure         bool
}

// Options configure a Manager.
type Options struct {
	Store store.Sessions
	Keys  *keys.Manager
	// Issuer is the iss of every access token, e.g. https://core.example/auth.
	Issuer string
	// APIBasePath is where the public API is mounted (the refresh cookie's path starts here).
	APIBasePath string
	// Settings returns the session settings of a tenant.
	Settings func(ctx context.Context, tenantID string) (Settings, error)
	Clock    func() time.Time
}

// Manager is the session service. It is safe for concurrent use.
type Manager struct {
	opts Options
}

// New returns a Manager.
func New(opts Options) *Manager {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.APIBasePath == "" {
		opts.APIBasePath = "/auth"
	}
	return &Manager{opts: opts}
}

// Issuer returns the iss the manager puts in tokens and requires when verifying.
func (m *Manager) Issuer() string { return m.opts.Issuer }

// Settings returns a tenant's session settings.
func (m *Manager) Settings(ctx context.Context, tenantID string) (Settings, error) {
	return m.opts.Settings(ctx, tenantID)
}

// Session is a verified session.
type Session struct {
	Handle       string
	UserID       string
	RecipeUserID string
	TenantID     string
	// Claims are the custom claims (st-mfa among them), by name.
	Claims map[string]json.RawMessage
	// AccessTokenExpiry is the expiry of the token the session was verified from or issued with.
	AccessTokenExpiry time.Time
}

// MFA decodes the st-mfa claim; a session without one has completed nothing.
func (s Session) MFA() (mfa.Claim, error) {
	c := mfa.Claim{C: mfa.Completed{}}
	raw, ok := s.Claims[mfa.ClaimKey]
	if !ok {
		return c, nil
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return mfa.Claim{}, fmt.Errorf("decode %s claim: %w", mfa.ClaimKey, err)
	}
	if c.C == nil {
		c.C = mfa.Completed{}
	}
	return c, nil
}

// Tokens are what a client receives when a session is created, refreshed or its claims change.
type Tokens struct {
	AccessToken       string
	AccessTokenExpiry time.Time
	// Payload is the access token's payload (JSON), as the front token carries it.
	Payload json.RawMessage
	// RefreshToken is empty when the refresh token did not change.
	RefreshToken       string
	RefreshTokenExpiry time.Time
	UserID             string
}

// FrontToken is base64(JSON {uid, ate, up}), which the frontend SDKs read the claims from.
func (t Tokens) FrontToken() string {
	b, _ := json.Marshal(struct {
		UID string          `json:"uid"`
		ATE int64           `json:"ate"`
		UP  json.RawMessage `json:"up"`
	}{t.UserID, t.AccessTokenExpiry.UnixMilli(), t.Payload})
	return base64.StdEncoding.EncodeToString(b)
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashToken is what the store and the access token keep of a refresh token.
func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

func encodeClaims(c map[string]json.RawMessage) (json.RawMessage, error) {
	for k := range c {
		if reserved[k] {
			return nil, fmt.Errorf("%w: %q", ErrReservedClaim, k)
		}
	}
	if c == nil {
		c = map[string]json.RawMessage{}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode claims: %w", err)
	}
	return b, nil
}

func decodeClaims(raw json.RawMessage) (map[string]json.RawMessage, error) {
	c := map[string]json.RawMessage{}
	if len(raw) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode session claims: %w", err)
	}
	return c, nil
}

// Create starts a session for userID (the primary user) signed in with recipeUserID.
func (m *Manager) Create(ctx context.Context, tenantID, userID, recipeUserID string, claims map[string]json.RawMessage) (Session, Tokens, error) {
	p, err := m.Prepare(ctx, tenantID, userID, recipeUserID, claims)
	if err != nil {
		return Session{}, Tokens{}, err
	}
	if err := m.Store(ctx, m.opts.Store, p); err != nil {
		return Session{}, Tokens{}, err
	}
	return m.Issue(ctx, p)
}

// Pending is a session Prepare made: Store stores it, inside a transaction of the caller's if
// need be, and Issue signs its tokens once it is stored.
type Pending struct {
	st       store.Session
	settings Settings
	refresh  string
}

// Prepare makes a new session for userID (the primary user) signed in with recipeUserID,
// with claims, and its refresh token, without storing anything.
func (m *Manager) Prepare(ctx context.Context, tenantID, userID, recipeUserID string, claims map[string]json.RawMessage) (Pending, error) {
	settings, err := m.opts.Settings(ctx, tenantID)
	if err != nil {
		return Pending{}, fmt.Errorf("create session: %w", err)
	}
	raw, err := encodeClaims(claims)
	if err != nil {
		return Pending{}, err
	}
	handle, err := randomToken(24)
	if err != nil {
		return Pending{}, err
	}
	refresh, err := randomToken(32)
	if err != nil {
		return Pending{}, err
	}
	now := m.opts.Clock()
	return Pending{settings: settings, refresh: refresh, st: store.Session{Handle: handle, UserID: userID, RecipeUserID: recipeUserID,
		TenantID: tenantID, Claims: raw, CreatedAt: now, ExpiresAt: now.Add(settings.RefreshTokenLifetime),
		RefreshLifetime: settings.RefreshTokenLifetime, CurrentRefreshHash: hashToken(refresh)}}, nil
}

// Store stores p through st (the store, or a transaction of it). A disabled user's session
// is refused with ErrUserDisabled, and nothing is stored.
func (m *Manager) Store(ctx context.Context, st interface {
	CreateSession(ctx context.Context, s store.Session) error
}, p Pending) error {
	if err := st.CreateSession(ctx, p.st); errors.Is(err, store.ErrUserDisabled) {
		return fmt.Errorf("user %q: %w", p.st.UserID, ErrUserDisabled)
	} else if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Issue signs the access token of a stored session p and returns it with the refresh token.
func (m *Manager) Issue(ctx context.Context, p Pending) (Session, Tokens, error) {
	sess, tokens, err := m.issue(ctx, p.st, p.settings, p.st.CurrentRefreshHash, "")
	if err != nil {
		return Session{}, Tokens{}, err
	}
	tokens.RefreshToken, tokens.RefreshTokenExpiry = p.refresh, p.st.ExpiresAt
	return sess, tokens, nil
}

// issue signs an access token for st.
func (m *Manager) issue(ctx context.Context, st store.Session, settings Settings, refreshHash, parentHash string) (Session, Tokens, error) {
	claims, err := decodeClaims(st.Claims)
	if err != nil {
		return Session{}, Tokens{}, err
	}
	now := m.opts.Clock()
	exp := now.Add(settings.AccessTokenLifetime)
	if exp.After(st.ExpiresAt) {
		exp = st.ExpiresAt
	}
	payload := make(map[string]any, len(claims)+10)
	for k, v := range claims {
		payload[k] = v
	}
	var parent any
	if parentHash != "" {
		parent = parentHash
	}
	maps.Copy(payload, map[string]any{
		"sub": st.UserID, "rsub": st.RecipeUserID, "tId": st.TenantID, "sessionHandle": st.Handle,
		"refreshTokenHash1": refreshHash, "parentRefreshTokenHash1": parent, "antiCsrfToken": nil,
		"iat": now.Unix(), "exp": exp.Unix(), "iss": m.opts.Issuer,
	})
	body, err := json.Marshal(payload)
	if err != nil {
		return Session{}, Tokens{}, fmt.Errorf("encode access token: %w", err)
	}
	token, err := m.opts.Keys.Sign(ctx, body)
	if err != nil {
		return Session{}, Tokens{}, err
	}
	expiry := time.Unix(exp.Unix(), 0)
	sess := Session{Handle: st.Handle, UserID: st.UserID, RecipeUserID: st.RecipeUserID, TenantID: st.TenantID, Claims: claims, AccessTokenExpiry: expiry}
	return sess, Tokens{AccessToken: token, AccessTokenExpiry: expiry, Payload: body, UserID: st.UserID}, nil
}

// Refresh rotates a refresh token: it returns a new access token and a new refresh token.
// An unknown, expired or revoked token gives ErrUnauthorised, and so does the current token
// presented again too often without its children being used. Any other token of the
// session's chain (a sibling of the one in use, or an older ancestor) gives ErrTokenTheft and
// revokes the session. The returned session is set on ErrTokenTheft too, so callers can log
// whose session it was.
func (m *Manager) Refresh(ctx context.Context, refreshToken string) (Session, Tokens, error) {
	if refreshToken == "" {
		return Session{}, Tokens{}, ErrUnauthorised
	}
	next, err := randomToken(32)
	if err != nil {
		return Session{}, Tokens{}, err
	}
	rot, err := m.opts.Store.RotateRefreshToken(ctx, hashToken(refreshToken), hashToken(next), m.opts.Clock())
	switch {
	case errors.Is(err, store.ErrTokenTheft):
		s := rot.Session
		return Session{Handle: s.Handle, UserID: s.UserID, RecipeUserID: s.RecipeUserID, TenantID: s.TenantID}, Tokens{}, fmt.Errorf("%w: session %s", ErrTokenTheft, s.Handle)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrSessionRevoked), errors.Is(err, store.ErrTooManyRefreshes):
		return Session{}, Tokens{}, fmt.Errorf("%w: %w", ErrUnauthorised, err)
	case errors.Is(err, store.ErrUserDisabled):
		return Session{}, Tokens{}, fmt.Errorf("%w: %w", ErrUnauthorised, ErrUserDisabled)
	case err != nil:
		return Session{}, Tokens{}, fmt.Errorf("refresh session: %w", err)
	}
	settings, err := m.opts.Settings(ctx, rot.Session.TenantID)
	if err != nil {
		return Session{}, Tokens{}, fmt.Errorf("refresh session: %w", err)
	}
	sess, tokens, err := m.issue(ctx, rot.Session, settings, hashToken(next), rot.ParentHash)
	if err != nil {
		return Session{}, Tokens{}, err
	}
	tokens.RefreshToken, tokens.RefreshTokenExpiry = next, rot.Session.ExpiresAt
	return sess, tokens, nil
}

// UpdateClaims changes a live session's custom claims through fn (which may modify the map
// it is given) and issues a new access token for it; the refresh token stays the same. This
// is how a completed factor reaches the st-mfa claim without a new session.
func (m *Manager) UpdateClaims(ctx context.Context, handle string, fn func(claims map[string]json.RawMessage) error) (Session, Tokens, error) {
	sess, tokens, err := m.Update(ctx, handle, func(_ store.SessionTx, claims map[string]json.RawMessage) (bool, error) {
		return true, fn(claims)
	})
	if err != nil {
		return Session{}, Tokens{}, err
	}
	return sess, *tokens, nil
}

// Update runs fn in one store transaction on a live session (store.Sessions.UpdateSession),
// with the session's claims, which fn may modify. When fn reports a change, the claims are
// stored with whatever else fn did in the transaction, and a new access token is issued;
// otherwise only fn's own writes are stored, and Update returns no session and no tokens. An error from fn rolls back
// and is returned as is; fn may run more than once (see UpdateSession). An unknown or revoked
// session gives ErrUnauthorised.
func (m *Manager) Update(ctx context.Context, handle string, fn func(tx store.SessionTx, claims map[string]json.RawMessage) (changed bool, err error)) (Session, *Tokens, error) {
	changed := false
	st, err := m.opts.Store.UpdateSession(ctx, handle, func(tx store.SessionTx) error {
		c, err := decodeClaims(tx.Session().Claims)
		if err != nil {
			return err
		}
		if changed, err = fn(tx, c); err != nil || !changed {
			return err
		}
		raw, err := encodeClaims(c)
		if err != nil {
			return err
		}
		tx.SetClaims(raw)
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrSessionRevoked):
		return Session{}, nil, fmt.Errorf("%w: %w", ErrUnauthorised, err)
	case err != nil:
		return Session{}, nil, err
	}
	if !changed {
		return Session{}, nil, nil
	}
	settings, err := m.opts.Settings(ctx, st.TenantID)
	if err != nil {
		return Session{}, nil, fmt.Errorf("update session claims: %w", err)
	}
	sess, tokens, err := m.issue(ctx, st, settings, st.CurrentRefreshHash, "")
	if err != nil {
		return Session{}, nil, err
	}
	return sess, &tokens, nil
}

// Revoke revokes one session; ErrUnauthorised wraps store.ErrNotFound when it is unknown.
func (m *Manager) Revoke(ctx context.Context, handle string) (store.Session, error) {
	st, err := m.opts.Store.RevokeSession(ctx, handle, m.opts.Clock())
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, fmt.Errorf("%w: %w", ErrUnauthorised, err)
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("revoke session: %w", err)
	}
	return st, nil
}

// RevokeUser revokes every live session of a user and returns how many.
func (m *Manager) RevokeUser(ctx context.Context, userID string) (int, error) {
	n, err := m.opts.Store.RevokeUserSessions(ctx, userID, m.opts.Clock())
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of user: %w", err)
	}
	return n, nil
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// CheckDatabase also refuses sessions revoked before the token expires.
	CheckDatabase bool
}

// Verify checks an access token: the signature by a published key, with that key's algorithm,
// issuer, expiry and,
// with CheckDatabase, that the session is still live.
func (m *Manager) Verify(ctx context.Context, token string, opts VerifyOptions) (Session, error) {
	if token == "" {
		return Session{}, ErrUnauthorised
	}
	body, _, err := m.opts.Keys.Verify(ctx, token)
	if err != nil {
		return Session{}, fmt.Errorf("%w: access token: %w", ErrTryRefreshToken, err)
	}
	var p struct {
		Sub           string `json:"sub"`
		RSub          string `json:"rsub"`
		TID           string `json:"tId"`
		SessionHandle string `json:"sessionHandle"`
		Exp           int64  `json:"exp"`
		Iss           string `json:"iss"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return Session{}, fmt.Errorf("%w: access token payload: %w", ErrTryRefreshToken, err)
	}
	if p.Iss != m.opts.Issuer {
		return Session{}, fmt.Errorf("%w: access token issued by %q, not %q", ErrUnauthorised, p.Iss, m.opts.Issuer)
	}
	if p.Sub == "" || p.SessionHandle == "" || p.TID == "" {
		return Session{}, fmt.Errorf("%w: access token lacks sub, sessionHandle or tId", ErrTryRefreshToken)
	}
	exp := time.Unix(p.Exp, 0)
	if !m.opts.Clock().Before(exp) {
		return Session{}, fmt.Errorf("%w: access token expired at %s", ErrTryRefreshToken, exp.UTC().Format(time.RFC3339))
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(body, &all); err != nil {
		return Session{}, fmt.Errorf("%w: access token payload: %w", ErrTryRefreshToken, err)
	}
	claims := make(map[string]json.RawMessage, len(all))
	for k, v := range all {
		if !reserved[k] {
			claims[k] = v
		}
	}
	sess := Session{Handle: p.SessionHandle, UserID: p.Sub, RecipeUserID: p.RSub, TenantID: p.TID, Claims: claims, AccessTokenExpiry: exp}
	if opts.CheckDatabase {
		st, err := m.opts.Store.GetSession(ctx, p.SessionHandle)
		if errors.Is(err, store.ErrNotFound) {
			return Session{}, fmt.Errorf("%w: session %s no longer exists", ErrUnauthorised, p.SessionHandle)
		}
		if err != nil {
			return Session{}, fmt.Errorf("verify session: %w", err)
		}
		if !st.RevokedAt.IsZero() {
			return Session{}, fmt.Errorf("%w: session %s was revoked", ErrUnauthorised, p.SessionHandle)
		}
	}
	return sess, nil
}
