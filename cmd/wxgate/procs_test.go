package main

import "testing"

func TestSchedulerProcs(t *testing.T) {
	for _, c := range []struct {
		name                   string
		current, signers, want int
		fromEnv                bool
	}{
		{"signers take every core", 2, 2, 4, false},
		{"more signers than cores", 2, 4, 7, false},
		{"enough slots already", 8, 2, 8, false},
		{"the GC takes two of eight", 8, 6, 9, false},
		{"one core left over", 3, 2, 4, false},
		{"one core, one signer", 1, 1, 3, false},
		{"the operator's GOMAXPROCS", 2, 2, 2, true},
	} {
		if got := schedulerProcs(c.current, c.signers, c.fromEnv); got != c.want {
			t.Errorf("%s: schedulerProcs(%d, %d, %v) = %d, want %d", c.name, c.current, c.signers, c.fromEnv, got, c.want)
		}
	}
}
