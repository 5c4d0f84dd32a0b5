package passwordless

import "testing"

func BenchmarkConsumeUserInputCode(b *testing.B) {
	d, s, err := NewDevice(Contact{Email: "ada@example.com"}, FlowUserInputCodeAndMagicLink, t0)
	if err != nil {
		b.Fatal(err)
	}
	in := Input{DeviceID: s.DeviceID, UserInputCode: s.UserInputCode}
	b.ReportAllocs()
	for b.Loop() {
		if o, err := d.Consume(in, t0); err != nil || o.Status != StatusOK {
			b.Fatal(o, err)
		}
	}
}

func BenchmarkConsumeLinkCode(b *testing.B) {
	d, s, err := NewDevice(Contact{Email: "ada@example.com"}, FlowMagicLink, t0)
	if err != nil {
		b.Fatal(err)
	}
	in := Input{LinkCode: s.LinkCode}
	b.ReportAllocs()
	for b.Loop() {
		if o, err := d.Consume(in, t0); err != nil || o.Status != StatusOK {
			b.Fatal(o, err)
		}
	}
}

func BenchmarkNewDevice(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := NewDevice(Contact{Email: "ada@example.com"}, FlowUserInputCodeAndMagicLink, t0); err != nil {
			b.Fatal(err)
		}
	}
}
