package totp

import (
	"testing"
	"time"
)

func BenchmarkVerify(b *testing.B) {
	cfg := DefaultConfig()
	now := time.Unix(1_700_000_000, 0)
	code, err := cfg.Code(rfcSeed1, now)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cfg.Verify(rfcSeed1, code, now, 0); err != nil {
			b.Fatal(err)
		}
	}
}
