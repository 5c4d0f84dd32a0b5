package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twofold-dev/twofold/core/store"
)

func testImport(t *testing.T, open Factory) {
	ctx := context.Background()
	imported := func(id, email string, devices ...string) store.ImportedUser {
		u := store.ImportedUser{UserID: id, TenantID: "public", Email: email, PasswordHash: "hash-" + id, EmailVerified: true, TimeJoined: t0}
		for _, name := range devices {
			u.TOTPDevices = append(u.TOTPDevices, store.TOTPDevice{UserID: id, Name: name, Secret: "SECRET" + name, Digits: 6, Period: 30, Skew: 1, Verified: true, CreatedAt: t0})
		}
		return u
	}
	t.Run("imported users sign in with their hash and keep their TOTP devices", func(t *testing.T) {
		s := open(t)
		var batch []store.ImportedUser
		for i := range 3 {
			batch = append(batch, imported(fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@x.io", i), "phone", "tablet"))
		}
		if err := s.ImportUsers(ctx, batch); err != nil {
			t.Fatal(err)
		}
		got, hash, err := s.GetEmailPasswordLogin(ctx, "public", "u2@x.io")
		if err != nil || got.ID != "u2" || hash != "hash-u2" || !got.IsPrimary || !got.LoginMethods[0].Verified || !got.TimeJoined.Equal(t0) {
			t.Fatalf("GetEmailPasswordLogin(u2@x.io) = %+v, %q, %v", got, hash, err)
		}
		devices := must(s.ListTOTPDevices(ctx, "u1"))(t)
		if len(devices) != 2 || devices[0].Name != "phone" || devices[1].Name != "tablet" || !devices[0].Verified || devices[0].Secret != "SECRETphone" {
			t.Fatalf("devices of u1 = %+v", devices)
		}
	})
	for _, tc := range []struct {
		name  string
		batch []store.ImportedUser
		want  error
	}{
		{"an email the tenant already has stores nothing of the batch", []store.ImportedUser{imported("n1", "n1@x.io"), imported("n2", "taken@x.io")}, store.ErrEmailTaken},
		{"an email twice in the batch stores nothing", []store.ImportedUser{imported("n1", "same@x.io"), imported("n2", "same@x.io")}, store.ErrEmailTaken},
		{"a user id already stored stores nothing", []store.ImportedUser{imported("n1", "n1@x.io"), imported("old", "n2@x.io")}, store.ErrUserExists},
		{"a device name twice for one user stores nothing", []store.ImportedUser{imported("n1", "n1@x.io"), imported("n2", "n2@x.io", "phone", "phone")}, store.ErrDeviceExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			must(s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "old", TenantID: "public", Email: "taken@x.io", PasswordHash: "h", Now: t0}))(t)
			err := s.ImportUsers(ctx, tc.batch)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ImportUsers error = %v, want %v", err, tc.want)
			}
			for _, id := range []string{"n1", "n2"} {
				if _, err := s.GetUser(ctx, id); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("the refused import left user %s behind: %v", id, err)
				}
			}
		})
	}
}
