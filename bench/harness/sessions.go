package harness

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/bench/loadgen"
	"github.com/wxgate/wxgate/bench/procstat"
	"github.com/wxgate/wxgate/proxy"
)

// sessionFiller returns a Builder posting session keys number from..to-1, each once.
func sessionFiller(from, to int) loadgen.Builder {
	var next atomic.Int64
	next.Store(int64(from))
	return func(_ int, req *fasthttp.Request) bool {
		i := next.Add(1) - 1
		if i >= int64(to) {
			return false
		}
		var key [16]byte
		binary.BigEndian.PutUint64(key[:8], uint64(i))
		binary.BigEndian.PutUint64(key[8:], uint64(i)*0x9e3779b97f4a7c15)
		b := make([]byte, 0, 96)
		b = append(b, `{"openid":"oFill`...)
		num := strconv.AppendInt(nil, i, 10)
		for range 23 - len(num) {
			b = append(b, '0')
		}
		b = append(b, num...)
		b = append(b, `","session_key":"`...)
		b = base64.StdEncoding.AppendEncode(b, key[:])
		b = append(b, `"}`...)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(proxy.PathSessionKeys)
		req.Header.SetContentType("application/json")
		req.SetBody(b)
		return true
	}
}

// measureQuiet runs the load of c without reading process statistics or logging.
func (h *harness) measureQuiet(ctx context.Context, c column) row {
	res, err := loadgen.Run(ctx, loadgen.Config{Addr: c.addr, Conns: h.opts.Conns, Duration: c.dur, Build: c.build, Check: c.check})
	return row{col: c, res: res, err: err}
}

// scenarioSessions fills the session store of a fresh wxgate step by step (POST
// /wxgate/session-keys) and measures memory and the xpay path at each step.
func (h *harness) scenarioSessions(ctx context.Context) error {
	h.logf("  starting a fresh emulator and wxgate ...\n")
	st, err := h.startStack("sessions", h.mat.apps[:1])
	if err != nil {
		return err
	}
	defer st.stop()
	apps, err := prepareXpay(st, st.apps, usersPerApp)
	if err != nil {
		return err
	}
	sec := &section{
		title: "8. Cost growth: stored session keys",
		intro: fmt.Sprintf("A fresh emulator and wxgate (so no other scenario's state counts); its session store filled through POST "+
			"/wxgate/session-keys (distinct openids, 24-character keys) up to each step; at each step wxgate's RSS and heap, then "+
			"currency_pay through wxgate for %v. %s", h.opts.GrowthDuration, heapSource()),
		table: []string{
			"| stored keys | fill rate | RSS | heap | heap growth per key | xpay req/s | p99 | errors | CPU/req |",
			"|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
		},
	}
	baseKeys, _ := scrape(st.metricsURL(), metricSessions)
	baseHeap, baseOK := liveHeap(st)
	if base, err := procstat.Read(st.gate.pid()); err == nil {
		sec.table = append(sec.table, fmt.Sprintf("| %.0f (logins only) | | %s | %s | | | | | |", baseKeys, fmtMB(base.RSS), heapCell(baseHeap, baseOK)))
	}
	filled := 0
	for _, step := range sessionSteps(h.opts.MaxSessions) {
		if err := ctx.Err(); err != nil {
			return err
		}
		rate, err := h.fillSessions(ctx, st, filled, step)
		if err != nil {
			sec.table = append(sec.table, fmt.Sprintf("| %d | fill failed: %v | | | | | | | |", step, err))
			break
		}
		filled = step
		now, err := procstat.Read(st.gate.pid())
		if err != nil {
			return err
		}
		keys, _ := scrape(st.metricsURL(), metricSessions)
		heap, heapOK := liveHeap(st)
		perKey := "-"
		if added := keys - baseKeys; added > 0 && heapOK && baseOK && heap > baseHeap {
			perKey = fmt.Sprintf("%.0f B", float64(heap-baseHeap)/added)
		}
		c := column{name: colWxgate, label: fmt.Sprintf("wxgate, %d keys", step), addr: st.appAddr, pid: st.gate.pid(), dur: h.opts.GrowthDuration,
			metrics: st.metricsURL(), pprof: st.pprofURL(), build: newXpayLoad(apps, defaultBody, false, h.opts.Conns).build, check: checkErrcode0}
		r := h.measure(ctx, c)
		line := fmt.Sprintf("| %.0f | %.0f/s | %s | %s | %s |", keys, rate, fmtMB(now.RSS), heapCell(heap, heapOK), perKey)
		if r.res == nil {
			line += fmt.Sprintf(" failed: %v | | | |", r.err)
		} else {
			line += fmt.Sprintf(" %.0f | %s | %s | %s |", r.rps(), fmtDur(r.res.Latency.Quantile(0.99)), errCell(r.res.Errors, r.res.Requests, r.res.Samples), fmtDur(r.cpuPerReq()))
		}
		sec.table = append(sec.table, line)
		if step == 1_000_000 {
			t := targetCheck{what: "heap with 1M session keys", limit: 250, atMost: true, unit: " MB"}
			if heapOK {
				t.value, t.ok = float64(heap)/(1<<20), true
			} else {
				t.value, t.ok = float64(now.RSS)/(1<<20), true
				t.remark = "RSS, an upper bound of the heap: wxgate's heap metric could not be read"
			}
			sec.targets = append(sec.targets, t)
		}
	}
	h.report.add(sec)
	return nil
}

func heapCell(heap uint64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return fmtMB(heap)
}

// liveHeap returns a wxgate's heap in use right after a forced collection, from its /metrics.
func liveHeap(st *stack) (uint64, bool) {
	if forceGC(st.pprofURL()) != nil {
		return 0, false
	}
	v, ok := scrape(st.metricsURL(), metricHeapInuse)
	return uint64(v), ok
}

// heapSource says where the heap column comes from.
func heapSource() string {
	return "heap: `" + metricHeapInuse + "` of wxgate's /metrics right after a forced collection (GET /debug/pprof/heap?gc=1), " +
		"i.e. live objects plus the fragmentation of their spans; RSS adds the runtime's free pages and everything else."
}

// sessionSteps are the stored-key counts measured, up to max.
func sessionSteps(max int) []int {
	var out []int
	for s := 1000; s <= max; s *= 10 {
		out = append(out, s)
	}
	if len(out) == 0 || out[len(out)-1] != max {
		out = append(out, max)
	}
	return out
}

// fillSessions stores session keys from..to-1 through the wxgate of st and returns the rate.
func (h *harness) fillSessions(ctx context.Context, st *stack, from, to int) (float64, error) {
	h.logf("  storing session keys %d..%d ...\n", from, to)
	start := time.Now()
	r := h.measureQuiet(ctx, column{name: "fill", addr: st.appAddr, build: sessionFiller(from, to), dur: 10 * time.Minute})
	if r.err != nil {
		return 0, r.err
	}
	if r.res.Errors > 0 {
		return 0, fmt.Errorf("%d of %d session-key posts failed: %v", r.res.Errors, r.res.Requests, r.res.Samples)
	}
	if int(r.res.Requests) != to-from {
		return 0, fmt.Errorf("stored %d session keys, want %d (interrupted?)", r.res.Requests, to-from)
	}
	return float64(to-from) / time.Since(start).Seconds(), nil
}
