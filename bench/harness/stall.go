package harness

import (
	"time"

	"github.com/wxgate/wxgate/bench/loadgen"
)

// stallTick is the stall probe's sleep.
const stallTick = time.Millisecond

// stallProbe measures how late this machine wakes a sleeping goroutine: it sleeps stallTick
// again and again and records by how much each sleep overran. No server answers faster than
// the machine lets the load generator (this process) see the answer, so the probe's
// oversleeps are the floor under every latency measured meanwhile: a hypervisor that stops
// the VM for 20 ms, or a core busy with other work, shows here first.
type stallProbe struct {
	stop chan struct{}
	done chan struct{}
	over loadgen.Histogram
}

// startStallProbe starts a probe; end stops it and returns its oversleeps.
func startStallProbe() *stallProbe {
	p := &stallProbe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTimer(stallTick)
		defer t.Stop()
		for {
			start := time.Now()
			t.Reset(stallTick)
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.over.Record(time.Since(start) - stallTick)
			}
		}
	}()
	return p
}

// end stops the probe and returns how much its sleeps overran.
func (p *stallProbe) end() *loadgen.Histogram {
	close(p.stop)
	<-p.done
	return &p.over
}
