package harness

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// forceGC makes wxgate collect garbage (the heap profile's gc=1 does), so that its heap
// metrics count live memory.
func forceGC(pprof string) error {
	status, _, err := fasthttp.GetTimeout(nil, pprof+"/heap?gc=1", 30*time.Second)
	if err == nil && status != fasthttp.StatusOK {
		err = fmt.Errorf("%s/heap: HTTP %d", pprof, status)
	}
	return err
}

// cpuProfile fetches a CPU profile of d from a /debug/pprof base into dir/name.pprof; it
// returns a channel that yields the outcome once the profile is written.
func cpuProfile(pprof string, d time.Duration, dir, name string) <-chan error {
	done := make(chan error, 1)
	go func() {
		secs := int(math.Ceil(d.Seconds()))
		status, body, err := fasthttp.GetTimeout(nil, fmt.Sprintf("%s/profile?seconds=%d", pprof, secs), d+30*time.Second)
		switch {
		case err != nil:
			done <- err
		case status != fasthttp.StatusOK:
			done <- fmt.Errorf("CPU profile: HTTP %d %s", status, body)
		default:
			done <- os.WriteFile(filepath.Join(dir, name+".pprof"), body, 0o644)
		}
	}()
	return done
}

// fileName turns a label into a file name: letters and digits, other runs of characters
// replaced by one "-".
func fileName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return b.String()
}
