package signing

import (
	"log/slog"
	"os"
	"runtime"
	"testing"
)

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
		if got := SchedulerProcs(c.current, c.signers, c.fromEnv); got != c.want {
			t.Errorf("%s: SchedulerProcs(%d, %d, %v) = %d, want %d", c.name, c.current, c.signers, c.fromEnv, got, c.want)
		}
	}
}

// TestSigningProcs: the raise comes from the cores unless the environment sets GOMAXPROCS; no
// raise is 0 (the gateway then leaves GOMAXPROCS alone).
func TestSigningProcs(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cur := runtime.GOMAXPROCS(0)
	t.Setenv("GOMAXPROCS", "1")
	if n := SigningProcs(2, log); n != 0 {
		t.Errorf("with GOMAXPROCS in the environment: %d, want 0", n)
	}
	os.Unsetenv("GOMAXPROCS")
	want := SchedulerProcs(cur, 2, false)
	if want == cur {
		want = 0
	}
	if n := SigningProcs(2, log); n != want || n != 0 && n <= cur {
		t.Errorf("SigningProcs(2) at GOMAXPROCS %d: %d, want %d", cur, n, want)
	}
	if runtime.GOMAXPROCS(0) != cur {
		t.Errorf("SigningProcs changed GOMAXPROCS itself")
	}
}
