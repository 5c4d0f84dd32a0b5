// Package adminclient is the Go client of the auth core's admin API (/admin/v1), as used by
// the controllers. The wire contract is in docs/contracts.md; the bodies are the types of
// package contract.
package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/contract"
)

var (
	// ErrNotFound: the core has no such tenant or session.
	ErrNotFound = errors.New("not found in the auth core")
	// ErrUnavailable: the core could not be reached or answered with a server error; retry.
	ErrUnavailable = errors.New("auth core unavailable")
	// ErrUnauthorized: the core refused the admin key.
	ErrUnauthorized = errors.New("auth core refused the admin key")
	// ErrClaimed: the tenant is owned by someone other than the caller (a *ClaimedError).
	ErrClaimed = errors.New("tenant owned by another")
)

// ClaimedError is the core's refusal (HTTP 409) of a write, delete or release by someone who
// does not own the tenant. Owner is the tenant's owner; empty when nobody owns it.
type ClaimedError struct {
	Owner   string
	Message string
}

func (e *ClaimedError) Error() string { return "the auth core refused: " + e.Message }

// Is makes errors.Is(err, ErrClaimed) hold.
func (e *ClaimedError) Is(target error) bool { return target == ErrClaimed }

// InvalidError is the core's refusal of a configuration (HTTP 400), with its message.
type InvalidError struct {
	Message string
	Field   string
}

func (e *InvalidError) Error() string {
	if e.Field != "" && !strings.HasPrefix(e.Message, e.Field) {
		return "the auth core refused the configuration: " + e.Field + ": " + e.Message
	}
	return "the auth core refused the configuration: " + e.Message
}

// Client calls one core's admin API.
type Client struct {
	base string
	key  func() (string, error)
	http *http.Client
}

// New returns a client for the core at baseURL (such as http://twofold-core:3567). key returns
// the admin key for each request, so a rotated key file is picked up without a restart.
func New(baseURL string, key func() (string, error), hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), key: key, http: hc}
}

// GetTenant returns the tenant's state (secrets redacted), or ErrNotFound.
func (c *Client) GetTenant(ctx context.Context, tenantID string) (*contract.TenantState, error) {
	var st contract.TenantState
	if err := c.do(ctx, http.MethodGet, "/admin/v1/tenants/"+url.PathEscape(tenantID), nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// ListTenants returns every tenant the core holds.
func (c *Client) ListTenants(ctx context.Context) ([]contract.TenantState, error) {
	var l contract.TenantList
	if err := c.do(ctx, http.MethodGet, "/admin/v1/tenants", nil, &l); err != nil {
		return nil, err
	}
	return l.Tenants, nil
}

// PutTenant creates or replaces the tenant's configuration and returns what the core holds.
func (c *Client) PutTenant(ctx context.Context, tenantID string, cfg contract.TenantConfig) (*contract.TenantState, error) {
	var st contract.TenantState
	if err := c.do(ctx, http.MethodPut, "/admin/v1/tenants/"+url.PathEscape(tenantID), cfg, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// PutTenantAs is PutTenant on behalf of owner: the first owner to put a tenant claims it,
// and a tenant owned by another is left as it is with a *ClaimedError naming its owner.
func (c *Client) PutTenantAs(ctx context.Context, tenantID, owner string, cfg contract.TenantConfig) (*contract.TenantState, error) {
	var st contract.TenantState
	if err := c.do(ctx, http.MethodPut, tenantPath(tenantID, "", owner), cfg, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// DeleteTenant removes the tenant's configuration; users stay. A tenant the core does not
// know is not an error.
func (c *Client) DeleteTenant(ctx context.Context, tenantID string) error {
	return c.DeleteTenantAs(ctx, tenantID, "")
}

// DeleteTenantAs is DeleteTenant on behalf of owner: a tenant owner does not own (including
// one nobody owns) is left as it is with a *ClaimedError. An empty owner is DeleteTenant.
func (c *Client) DeleteTenantAs(ctx context.Context, tenantID, owner string) error {
	err := c.do(ctx, http.MethodDelete, tenantPath(tenantID, "", owner), nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// ReleaseTenant gives up owner's claim on the tenant (any owner's when owner is empty) and
// returns what the core holds. ErrNotFound for an unknown tenant; a *ClaimedError when
// another owner holds it.
func (c *Client) ReleaseTenant(ctx context.Context, tenantID, owner string) (*contract.TenantState, error) {
	var st contract.TenantState
	if err := c.do(ctx, http.MethodDelete, tenantPath(tenantID, "/owner", owner), nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func tenantPath(tenantID, suffix, owner string) string {
	p := "/admin/v1/tenants/" + url.PathEscape(tenantID) + suffix
	if owner != "" {
		p += "?owner=" + url.QueryEscape(owner)
	}
	return p
}

// RevokeUserSessions revokes every session of a user and returns how many there were.
func (c *Client) RevokeUserSessions(ctx context.Context, userID string) (int, error) {
	var out struct {
		Revoked int `json:"revoked"`
	}
	err := c.do(ctx, http.MethodPost, "/admin/v1/users/"+url.PathEscape(userID)+"/sessions/revoke", struct{}{}, &out)
	return out.Revoked, err
}

// RevokeSession revokes one session by its handle.
func (c *Client) RevokeSession(ctx context.Context, handle string) error {
	return c.do(ctx, http.MethodDelete, "/admin/v1/sessions/"+url.PathEscape(handle), nil, nil)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	key, err := c.key()
	if err != nil {
		return fmt.Errorf("reading the admin key: %w", err)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("building %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrUnavailable, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%w: reading the answer to %s %s: %v", ErrUnavailable, method, path, err)
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if out != nil && len(b) > 0 {
			if err := json.Unmarshal(b, out); err != nil {
				return fmt.Errorf("decoding the answer to %s %s: %w", method, path, err)
			}
		}
		return nil
	case resp.StatusCode == http.StatusConflict:
		var e struct {
			Message string `json:"message"`
			Owner   string `json:"owner"`
		}
		if json.Unmarshal(b, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		return &ClaimedError{Owner: e.Owner, Message: e.Message}
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s", ErrNotFound, path)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return ErrUnauthorized
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusRequestEntityTooLarge:
		var e struct {
			Message string `json:"message"`
			Field   string `json:"field"`
		}
		if json.Unmarshal(b, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		return &InvalidError{Message: e.Message, Field: e.Field}
	default:
		return fmt.Errorf("%w: %s %s answered %s", ErrUnavailable, method, path, resp.Status)
	}
}
