package attempts

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	failN := func(l *Limiter, n int, at time.Time) {
		for range n {
			l.Fail(at)
		}
	}
	tests := []struct {
		name           string
		run            func(l *Limiter)
		at             time.Time
		wantLocked     bool
		wantFailures   int
		wantRetryAfter time.Duration
	}{
		{
			name: "four failures do not lock",
			run:  func(l *Limiter) { failN(l, 4, t0) },
			at:   t0, wantFailures: 4,
		},
		{
			name: "the fifth consecutive failure locks for fifteen minutes",
			run:  func(l *Limiter) { failN(l, 5, t0) },
			at:   t0, wantLocked: true, wantFailures: 5, wantRetryAfter: 15 * time.Minute,
		},
		{
			name: "retry after counts down while locked",
			run:  func(l *Limiter) { failN(l, 5, t0) },
			at:   t0.Add(10 * time.Minute), wantLocked: true, wantFailures: 5, wantRetryAfter: 5 * time.Minute,
		},
		{
			name: "one millisecond before expiry the user is still locked",
			run:  func(l *Limiter) { failN(l, 5, t0) },
			at:   t0.Add(LockDuration - time.Millisecond), wantLocked: true, wantFailures: 5, wantRetryAfter: time.Millisecond,
		},
		{
			name: "the lock ends after fifteen minutes",
			run:  func(l *Limiter) { failN(l, 5, t0) },
			at:   t0.Add(LockDuration), wantFailures: 5,
		},
		{
			name: "failures while locked do not extend the lock",
			run:  func(l *Limiter) { failN(l, 5, t0); failN(l, 3, t0.Add(14*time.Minute)) },
			at:   t0.Add(14 * time.Minute), wantLocked: true, wantFailures: 5, wantRetryAfter: time.Minute,
		},
		{
			name: "a failure after the lock expired counts from one",
			run:  func(l *Limiter) { failN(l, 5, t0); l.Fail(t0.Add(16 * time.Minute)) },
			at:   t0.Add(16 * time.Minute), wantFailures: 1,
		},
		{
			name: "five more failures after an expired lock lock again",
			run:  func(l *Limiter) { failN(l, 5, t0); failN(l, 5, t0.Add(16*time.Minute)) },
			at:   t0.Add(16 * time.Minute), wantLocked: true, wantFailures: 5, wantRetryAfter: 15 * time.Minute,
		},
		{
			name: "a success resets the count",
			run:  func(l *Limiter) { failN(l, 4, t0); l.Succeed(); failN(l, 4, t0) },
			at:   t0, wantFailures: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Limiter
			tt.run(&l)
			if got := l.Locked(tt.at); got != tt.wantLocked {
				t.Errorf("Locked = %v, want %v", got, tt.wantLocked)
			}
			if l.Failures != tt.wantFailures {
				t.Errorf("Failures = %d, want %d", l.Failures, tt.wantFailures)
			}
			if got := l.RetryAfter(tt.at); got != tt.wantRetryAfter {
				t.Errorf("RetryAfter = %s, want %s", got, tt.wantRetryAfter)
			}
		})
	}
}
