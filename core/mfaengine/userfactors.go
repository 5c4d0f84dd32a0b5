package mfaengine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twofold-dev/twofold/core/store"
)

// This file keeps the user's own required secondary factors in their user metadata, where
// SuperTokens keeps them.

// UserFactors returns the user's own required secondary factors from their metadata.
func (e *Engine) UserFactors(ctx context.Context, userID string) ([]string, error) {
	return userFactors(ctx, e.opts.Store, userID)
}

func userFactors(ctx context.Context, r store.MFAReader, userID string) ([]string, error) {
	md, err := r.GetUserMetadata(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("read MFA settings of user %s: %w", userID, err)
	}
	return factorsFromMetadata(md)
}

func factorsFromMetadata(md map[string]json.RawMessage) ([]string, error) {
	raw, ok := md[MetadataKey]
	if !ok {
		return nil, nil
	}
	var st map[string]json.RawMessage
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("user metadata %s is not an object: %w", MetadataKey, err)
	}
	var out []string
	if r, ok := st[RequiredFactorsKey]; ok && string(r) != "null" {
		if err := json.Unmarshal(r, &out); err != nil {
			return nil, fmt.Errorf("user metadata %s.%s is not a list of factor ids: %w", MetadataKey, RequiredFactorsKey, err)
		}
	}
	return out, nil
}

// SetUserFactors replaces the user's own required secondary factors in their metadata,
// keeping the other keys of the _supertokens object.
func (e *Engine) SetUserFactors(ctx context.Context, userID string, factors []string) error {
	md, err := e.opts.Store.GetUserMetadata(ctx, userID)
	if err != nil {
		return fmt.Errorf("read MFA settings of user %s: %w", userID, err)
	}
	st := map[string]json.RawMessage{}
	if raw, ok := md[MetadataKey]; ok {
		if err := json.Unmarshal(raw, &st); err != nil || st == nil {
			st = map[string]json.RawMessage{}
		}
	}
	if factors == nil {
		factors = []string{}
	}
	list, err := json.Marshal(factors)
	if err != nil {
		return fmt.Errorf("encode required factors: %w", err)
	}
	st[RequiredFactorsKey] = list
	obj, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode MFA settings: %w", err)
	}
	if _, err := e.opts.Store.UpdateUserMetadata(ctx, userID, map[string]json.RawMessage{MetadataKey: obj}, e.opts.Clock()); err != nil {
		return fmt.Errorf("store MFA settings of user %s: %w", userID, err)
	}
	return nil
}
