package recoverycode

import "testing"

// BenchmarkVerify checks the last of a full set, the worst case for a user with ten codes.
func BenchmarkVerify(b *testing.B) {
	set, err := Generate("user-1")
	if err != nil {
		b.Fatal(err)
	}
	code := set.Codes[Count-1]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify("user-1", code, set.Hashes); err != nil {
			b.Fatal(err)
		}
	}
}
