package harness

import (
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/wxgate/wxgate/bench/loadgen"
	"github.com/wxgate/wxgate/bench/procstat"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/signer"
	"github.com/wxgate/wxgate/store"
)

// diskStoreConfig is the [store] body of the disk kind in dir (relative to the config's folder).
func diskStoreConfig(dir string) string {
	return fmt.Sprintf("kind = %q\ndir = %q", policies.StoreDisk, dir)
}

// redisStoreConfig is the [store] body of the redis kind on the redis-server at addr.
func redisStoreConfig(addr string) string {
	return fmt.Sprintf("kind = %q\nredis_url = %q", policies.StoreRedis, "redis://"+addr)
}

// storeCPUTarget is the most wxgate's CPU per request may grow on a persistent store over memory.
const storeCPUTarget = 1.15

// storeStartTarget is the longest `wxgate serve` may take to serve on a disk store of 1M keys.
const storeStartTarget = time.Second

// storeGate is one wxgate of the store scenario.
type storeGate struct {
	kind string
	st   *stack
}

// scenarioStore compares wxgate on each store kind: three wxgates (memory, disk, redis) on one
// emulator, with a redis-server of the harness's, for xpay with a warm session key and for
// message-push callbacks; then the size of 1M session keys on disk and in Redis, and the
// start-up of wxgate on a disk store holding them.
func (h *harness) scenarioStore(ctx context.Context) error {
	h.logf("  starting redis-server, an emulator and three wxgates (store memory, disk, redis) ...\n")
	rs, err := h.startRedis("store-redis-server")
	if err != nil {
		return err
	}
	defer rs.stop()
	mem, err := h.startStack("store-memory", h.mat.apps[:1])
	if err != nil {
		return err
	}
	defer mem.stop()
	disk, err := h.startGateOn(mem, "store-disk", diskStoreConfig("data"))
	if err != nil {
		return err
	}
	defer disk.stop()
	red, err := h.startGateOn(mem, "store-redis", redisStoreConfig(rs.addr))
	if err != nil {
		return err
	}
	defer red.stop()
	gates := []storeGate{{policies.StoreMemory, mem}, {policies.StoreDisk, disk}, {policies.StoreRedis, red}}
	var errs []error
	if err := h.storeXpay(ctx, gates, rs); err != nil {
		errs = append(errs, fmt.Errorf("xpay: %w", err))
	}
	if ctx.Err() == nil {
		if err := h.storeCallbacks(ctx, gates, rs); err != nil {
			errs = append(errs, fmt.Errorf("callbacks: %w", err))
		}
	}
	disk.stop()
	red.stop()
	if ctx.Err() == nil {
		if err := h.storeMillion(ctx, mem, rs); err != nil {
			errs = append(errs, fmt.Errorf("%d session keys: %w", h.opts.MaxSessions, err))
		}
	}
	return errors.Join(append(errs, ctx.Err())...)
}

// storeColumns are one column per wxgate of gates, each accounting its own wxgate process and,
// apart, the redis-server.
func storeColumns(gates []storeGate, rs *redisServer, addr func(*stack) string) []column {
	cols := make([]column, len(gates))
	for i, g := range gates {
		cols[i] = column{name: g.kind, label: "wxgate, " + g.kind, addr: addr(g.st), pid: g.st.gate.pid(), side: rs.pid(),
			metrics: g.st.metricsURL(), pprof: g.st.pprofURL()}
	}
	return cols
}

// redisCalls measures the Redis commands run returns with: the commands wxgate sent meanwhile.
func redisCalls(rs *redisServer, run func()) (map[string]int64, int64, error) {
	c0, err0 := rs.commands()
	r0, _ := rs.info("stats")
	run()
	c1, err1 := rs.commands()
	r1, _ := rs.info("stats")
	if err := errors.Join(err0, err1); err != nil {
		return nil, 0, err
	}
	reads0, ok0 := infoInt(r0, "total_reads_processed")
	reads1, ok1 := infoInt(r1, "total_reads_processed")
	reads := int64(-1)
	if ok0 && ok1 {
		reads = reads1 - reads0 - 2 // the harness's own commandstats and stats reads in between
	}
	return callsDelta(c0, c1), reads, nil
}

// storeXpay measures currency_pay with warm session keys through each wxgate.
func (h *harness) storeXpay(ctx context.Context, gates []storeGate, rs *redisServer) error {
	apps := make([][]*xpayApp, len(gates))
	for i, g := range gates {
		a, err := prepareXpayUsers(g.st, g.st.apps, usersPerApp, "store"+g.kind)
		if err != nil {
			return fmt.Errorf("log users in through wxgate (%s): %w", g.kind, err)
		}
		apps[i] = a
	}
	build := func(cols []column) []column {
		for i := range cols {
			cols[i].build = newXpayLoad(apps[i], defaultBody, false, h.opts.Conns).build
			cols[i].check = checkErrcode0
		}
		return cols
	}
	sec := &section{
		title: "10. Store kinds: xpay currency_pay with a warm session key",
		intro: fmt.Sprintf("currency_pay as in section 1 (%d-byte bodies, a unique order_id each) through three wxgate processes on one "+
			"emulator that differ only in `[store] kind`: memory, disk (bbolt file in the wxgate's folder) and redis (a redis-server the "+
			"harness starts on a loopback port, `--save \"\" --appendonly no`). Each wxgate logged its own %d users in once "+
			"(test:store<kind><n>: the emulator keeps only a user's newest session_key), so every call reads a key stored once: "+
			"from the sharded map (memory), a bbolt read transaction (disk), or the exact local cache in front of Redis (redis; a "+
			"GET when a cached copy is older than `cache_ttl`, 10 s). Closed-loop peak, %d round(s) interleaved, then every column "+
			"paced at half of the memory wxgate's peak, %d round(s). CPU/req is the wxgate process's own (/proc/PID/stat); "+
			"redis-server's CPU is read apart, from its own /proc/PID/stat.", defaultBody, usersPerApp, max(h.opts.Rounds, 1), h.pacedRounds()),
	}
	h.scenario = "store-xpay" // names the CPU profiles (-profile) apart from the callbacks'
	var peak []row
	var written []int64
	calls, reads, err := redisCalls(rs, func() {
		written = writesDuring(gates, func() {
			peak = h.compare(ctx, build(storeColumns(gates, rs, func(st *stack) string { return st.appAddr })))
		})
	})
	if err != nil {
		return err
	}
	sec.rows = append(sec.rows, peak...)
	memPeak := &peak[0]
	var paced []row
	var rounds [][]roundP99
	var pacedCalls map[string]int64
	if memPeak.res != nil && memPeak.res.Errors == 0 && memPeak.rps() > 0 {
		rate := memPeak.rps() / 2
		cols := build(storeColumns(gates, rs, func(st *stack) string { return st.appAddr }))
		for i := range cols {
			cols[i].label += ", paced at half"
			cols[i].rate = rate
		}
		pacedCalls, _, err = redisCalls(rs, func() { paced, rounds = h.compareRounds(ctx, cols, h.pacedRounds()) })
		if err != nil {
			return err
		}
		sec.rows = append(sec.rows, paced...)
		sec.notes = append(sec.notes, fmt.Sprintf("paced runs at %.0f req/s, half of the memory wxgate's peak", rate))
		if note := pacedShortNote(paced, rate); note != "" {
			sec.notes = append(sec.notes, note)
		}
		if note := storeRoundsNote(paced, rounds); note != "" {
			sec.notes = append(sec.notes, note)
		}
	}
	sec.notes = append(sec.notes, writesNote(gates, written, peak, "call"))
	sec.table = storeSummary("call", peak, paced, rounds)
	for i := 1; i < len(peak); i++ {
		t := ratio(&peak[i], &peak[0], func(r *row) float64 { return float64(r.cpuPerReq()) })
		t.what, t.limit, t.atMost = "store: xpay CPU/request wxgate "+peak[i].col.name+" ÷ memory", storeCPUTarget, true
		t.remark = fmt.Sprintf("closed-loop peak: %s vs %s per request", fmtDur(peak[i].cpuPerReq()), fmtDur(memPeak.cpuPerReq()))
		if paced != nil {
			pt := ratio(&paced[i], &paced[0], func(r *row) float64 { return float64(r.cpuPerReq()) })
			t.remark += "; paced at half: " + pt.value2()
		}
		sec.targets = append(sec.targets, t)
	}
	redisRow := &peak[len(peak)-1]
	if redisRow.res != nil {
		s, per := perCommand(calls, float64(redisRow.res.Requests))
		note := fmt.Sprintf("Redis commands during the peak runs (only the redis wxgate uses Redis; the harness's INFO left out): %.4f per currency_pay (%s)", per, s)
		if reads >= 0 {
			note += fmt.Sprintf("; redis-server read events %.4f per call", float64(reads)/float64(redisRow.res.Requests))
		}
		if pacedCalls != nil && len(paced) > 0 && paced[len(paced)-1].res != nil {
			_, pp := perCommand(pacedCalls, float64(paced[len(paced)-1].res.Requests))
			note += fmt.Sprintf("; %.4f per call in the paced runs", pp)
		}
		sec.notes = append(sec.notes, note+". A warm key is served from the local cache: the GETs are the cached copies expiring after cache_ttl.")
	}
	h.report.add(sec)
	return nil
}

// storeSummary tabulates rows of the store kinds (memory first) against memory: the peak, the
// paced latency added, wxgate's and redis-server's CPU per unit.
func storeSummary(unit string, peak, paced []row, rounds [][]roundP99) []string {
	lines := []string{
		fmt.Sprintf("| store | peak req/s | peak p99 | wxgate CPU/%s (peak) | ÷ memory | wxgate CPU/%s (paced) | ÷ memory | paced p50 | paced p99 | paced p99 − memory's (median of rounds) | redis-server CPU/%s (peak) |", unit, unit, unit),
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
	}
	for i := range peak {
		p := &peak[i]
		line := fmt.Sprintf("| %s | %.0f | %s | %s | %s |", p.col.name, p.rps(), p99Cell(p), fmtDur(p.cpuPerReq()), ratioCell(p, &peak[0]))
		if i < len(paced) {
			q := &paced[i]
			added := "-"
			if i > 0 {
				if med, k := medianAdded(rounds, i); k > 0 {
					added = fmt.Sprintf("%s (%d rounds)", fmtSigned(med), k)
				}
			}
			line += fmt.Sprintf(" %s | %s | %s | %s | %s |", fmtDur(q.cpuPerReq()), ratioCell(q, &paced[0]), p50Cell(q), p99Cell(q), added)
		} else {
			line += " | | | | |"
		}
		side := "-"
		if p.sideCPU > 0 && p.res != nil {
			side = fmtFine(p.sideCPU, p.res.Requests)
		}
		lines = append(lines, line+" "+side+" |")
	}
	return lines
}

// fmtFine writes the CPU time d per request of n, with a decimal under 10 µs (an idle
// redis-server's cron spread over many requests).
func fmtFine(d time.Duration, n uint64) string {
	if n == 0 {
		return "-"
	}
	per := float64(d) / float64(n)
	if per < float64(10*time.Microsecond) {
		return fmt.Sprintf("%.1f µs", per/float64(time.Microsecond))
	}
	return fmtDur(time.Duration(per))
}

// storeRoundsNote lists every paced round's p99 of each column: one slow round moves the
// rounds added up, not their median.
func storeRoundsNote(paced []row, rounds [][]roundP99) string {
	if len(rounds) < 2 {
		return ""
	}
	var parts []string
	for i := range paced {
		var each []string
		for _, r := range rounds {
			if i < len(r) && r[i].ok {
				each = append(each, fmtDur(r[i].due))
			} else {
				each = append(each, "n/a")
			}
		}
		parts = append(parts, paced[i].col.name+" "+strings.Join(each, ", "))
	}
	return fmt.Sprintf("Each of the %d paced rounds' p99 on its own: %s.", len(rounds), strings.Join(parts, "; "))
}

func p99Cell(r *row) string {
	if r.res == nil {
		return "failed"
	}
	return fmtDur(r.res.Latency.Quantile(0.99))
}

func p50Cell(r *row) string {
	if r.res == nil {
		return "failed"
	}
	return fmtDur(r.res.Latency.Quantile(0.5))
}

func ratioCell(a, b *row) string {
	if a == b {
		return "1x"
	}
	return ratio(a, b, func(r *row) float64 { return float64(r.cpuPerReq()) }).value2()
}

// storeCallbacks measures safe-mode message pushes through each wxgate: verify, decrypt, claim
// the event in the store, forward to the harness app, record it delivered.
func (h *harness) storeCallbacks(ctx context.Context, gates []storeGate, rs *redisServer) error {
	emu, err := h.notifier()
	if err != nil {
		return err
	}
	a := gates[0].st.apps[0]
	rounds := max(h.opts.Rounds, 1)
	n := int(h.opts.Duration.Seconds()*float64(rounds)*pushNotifications) + 1000
	h.logf("  building %d message pushes ...\n", n)
	pool, took, err := buildPushPool(emu, a, n)
	if err != nil {
		return err
	}
	ok2xx := func(*fasthttp.Response) error { return nil }
	cbAddr := func(st *stack) string { return st.cbAddr }
	sec := &section{
		title: "10b. Store kinds: message-push callbacks",
		intro: fmt.Sprintf("POST %s%s: safe-mode xpay_coin_pay_notify pushes as in section 4 (%d built in %v, each with its own nonce and "+
			"event), through the same three wxgates. Each push is claimed in the store (its replay key and its event id), forwarded to "+
			"the harness app, then recorded as delivered: memory keeps the records in maps; disk writes them in a bbolt transaction "+
			"(batched with others for up to 2 ms, one fsync per batch); redis claims with one pipelined round trip (SET NX of the "+
			"replay key and SET NX GET of the event) and records the delivery with a second (SET). Each wxgate has its own store, so "+
			"every column gets the same pushes, each once per round; a column ends early when its share runs out. Closed-loop "+
			"peak, %d round(s), then paced at half of the memory wxgate's peak, %d round(s), with pushes built for those runs.",
			pathPushCallback, a.Name, len(pool.items), took.Round(time.Millisecond), rounds, h.pacedRounds()),
	}
	cols := storeColumns(gates, rs, cbAddr)
	for i := range cols {
		cols[i].check = ok2xx
		cols[i].perRound = func(round int) loadgen.Builder { return pool.fresh(round, rounds) }
	}
	h.scenario = "store-push"
	var peak []row
	var written []int64
	calls, reads, err := redisCalls(rs, func() {
		written = writesDuring(gates, func() { peak = h.compare(ctx, cols) })
	})
	if err != nil {
		return err
	}
	pool = nil // the peak's pushes are spent: let them go before the paced runs' are built
	sec.rows = append(sec.rows, peak...)
	var paced []row
	var pacedRounds [][]roundP99
	var pacedCalls map[string]int64
	if m := &peak[0]; m.res != nil && m.res.Errors == 0 && m.rps() > 0 {
		rate := m.rps() / 2
		pr := h.pacedRounds()
		n := int(rate*h.opts.Duration.Seconds()*float64(pr)*1.05) + 500
		h.logf("  building %d message pushes for the paced runs ...\n", n)
		pacedPool, _, err := buildPushPool(emu, a, n)
		if err != nil {
			return err
		}
		cols := storeColumns(gates, rs, cbAddr)
		for i := range cols {
			cols[i].label += ", paced at half"
			cols[i].rate = rate
			cols[i].check = ok2xx
			cols[i].perRound = func(round int) loadgen.Builder { return pacedPool.fresh(round, pr) }
		}
		pacedCalls, _, err = redisCalls(rs, func() { paced, pacedRounds = h.compareRounds(ctx, cols, pr) })
		if err != nil {
			return err
		}
		sec.rows = append(sec.rows, paced...)
		sec.notes = append(sec.notes, fmt.Sprintf("paced runs at %.0f pushes/s, half of the memory wxgate's peak", rate))
		if note := pacedShortNote(paced, rate); note != "" {
			sec.notes = append(sec.notes, note)
		}
		if note := storeRoundsNote(paced, pacedRounds); note != "" {
			sec.notes = append(sec.notes, note)
		}
	}
	sec.notes = append(sec.notes, writesNote(gates, written, peak, "push"))
	if len(peak) > 1 && peak[1].col.name == policies.StoreDisk && written[1] > 0 && peak[1].res != nil && peak[1].res.Requests > 0 {
		sec.notes = append(sec.notes, fmt.Sprintf("What bounds the disk kind: every push waits for its delivery record's bbolt write "+
			"transaction (`db.Batch`: the pushes that arrive within 2 ms share one), and bbolt runs one such transaction at a time; each "+
			"commit rewrites the B+tree pages its random keys land on (replay key, event id and their two expiry-index entries: %s "+
			"written per push here) and waits for two fdatasyncs (the pages, then the meta page). With %d connections a batch holds at most %d pushes, so the rate is at most "+
			"%d ÷ (the 2 ms gathering + the commit and its fdatasyncs) whatever the CPU.",
			fmtPerUnit(float64(written[1])/float64(peak[1].res.Requests)), h.opts.Conns, h.opts.Conns, h.opts.Conns))
	}
	sec.table = storeSummary("push", peak, paced, pacedRounds)
	for i := 1; i < len(peak); i++ {
		t := ratio(&peak[i], &peak[0], func(r *row) float64 { return float64(r.cpuPerReq()) })
		note := fmt.Sprintf("%s: wxgate CPU per push %s of memory's (%s vs %s at the peak)", peak[i].col.name, t.value2(), fmtDur(peak[i].cpuPerReq()), fmtDur(peak[0].cpuPerReq()))
		if i < len(paced) && paced[i].res != nil && paced[0].res != nil {
			note += fmt.Sprintf("; paced at half, p50 %s and p99 %s over memory's (rounds added up)",
				fmtSigned(paced[i].res.Latency.Quantile(0.5)-paced[0].res.Latency.Quantile(0.5)),
				fmtSigned(paced[i].res.Latency.Quantile(0.99)-paced[0].res.Latency.Quantile(0.99)))
		}
		sec.notes = append(sec.notes, note)
	}
	if r := &peak[len(peak)-1]; r.res != nil && r.res.Requests > 0 {
		s, per := perCommand(calls, float64(r.res.Requests))
		note := fmt.Sprintf("Redis commands per push during the peak runs: %.3f (%s)", per, s)
		if reads >= 0 {
			note += fmt.Sprintf("; redis-server read events per push: %.3f (rueidis pipelines the commands of concurrent requests on "+
				"one connection, so one read can carry several pushes' round trips)", float64(reads)/float64(r.res.Requests))
		}
		if pacedCalls != nil && len(paced) > 0 && paced[len(paced)-1].res != nil {
			ps, pp := perCommand(pacedCalls, float64(paced[len(paced)-1].res.Requests))
			note += fmt.Sprintf("; in the paced runs %.3f (%s)", pp, ps)
		}
		sec.notes = append(sec.notes, note+". By design a push costs two round trips: the claim (two commands pipelined) and the delivery record (one).")
	}
	h.report.add(sec)
	return nil
}

// storeFillBatch is how many records one Import writes (one bbolt transaction and fsync; one
// pipelined DoMulti on Redis).
const storeFillBatch = 10_000

// sessionRecords returns session records i = from..to-1 of app appID, in realistic shapes: a
// 28-character openid ("o" + 27 base64url characters, as WeChat's) and a 24-character session
// key (16 bytes in standard base64), each derived from i so that the openids come in no order.
func sessionRecords(appID string, from, to int, exp time.Time) []store.Record {
	recs := make([]store.Record, 0, max(to-from, 0))
	var seed [16]byte
	copy(seed[:], "wxbench-session")
	for i := from; i < to; i++ {
		binary.BigEndian.PutUint64(seed[8:], uint64(i))
		sum := sha512.Sum512(seed[:])
		recs = append(recs, store.Record{
			Type: store.RecordSession, App: appID, ExpiresAt: exp,
			OpenID:     "o" + base64.RawURLEncoding.EncodeToString(sum[:21])[:27],
			SessionKey: base64.StdEncoding.EncodeToString(sum[32:48]),
		})
	}
	return recs
}

// fillStore imports n session records into s in batches, each expiring 72 h after its batch.
func fillStore(ctx context.Context, s store.Store, appID string, n int) (time.Duration, error) {
	x, err := store.AsExporter(s)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for from := 0; from < n; from += storeFillBatch {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := x.Import(ctx, sessionRecords(appID, from, min(from+storeFillBatch, n), time.Now().Add(store.DefaultSessionTTL))); err != nil {
			return 0, fmt.Errorf("import records %d..: %w", from, err)
		}
	}
	return time.Since(start), nil
}

// boltUsage describes how a bbolt file's pages are used.
type boltUsage struct {
	pageSize     int
	highWater    int64 // bytes up to the highest page in use (tx.Size)
	freePages    int
	buckets      []string // "name: N keys, P pages, U% of their bytes used"
	sessionsUsed int64    // bytes of the sessions bucket's pages in use, headers included
}

// readBoltUsage opens a closed store file and reads its page statistics. It opens it for
// writing (and writes nothing): bbolt reads the free list only then.
func readBoltUsage(path string) (boltUsage, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return boltUsage{}, err
	}
	defer db.Close()
	u := boltUsage{pageSize: db.Info().PageSize}
	err = db.View(func(tx *bolt.Tx) error {
		u.highWater = tx.Size()
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			s := b.Stats()
			pages := s.BranchPageN + s.BranchOverflowN + s.LeafPageN + s.LeafOverflowN
			alloc := s.BranchAlloc + s.LeafAlloc
			if pages == 0 {
				return nil
			}
			used := s.BranchInuse + s.LeafInuse
			u.buckets = append(u.buckets, fmt.Sprintf("%s: %d keys, %d pages (%s), %.0f%% of their bytes used",
				name, s.KeyN, pages, fmtMB(uint64(alloc)), 100*float64(used)/float64(max(alloc, 1))))
			if string(name) == "sessions" {
				u.sessionsUsed = int64(alloc)
			}
			return nil
		})
	})
	u.freePages = db.Stats().FreePageN
	return u, err
}

// fileUsage returns a file's size and the bytes allocated to it on disk.
func fileUsage(path string) (size, allocated int64, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	size = fi.Size()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		allocated = st.Blocks * 512
	}
	return size, allocated, nil
}

// evictFile asks the kernel to drop the cached pages of path (POSIX_FADV_DONTNEED): the next
// start reads the file from the disk, as after a reboot, without touching any other file's cache.
func evictFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// startCheck is one start of wxgate on a disk store.
type startCheck struct {
	what       string
	startedIn  time.Duration
	rss        uint64 // right after the first healthy answer
	rssLater   uint64 // after the first key was read and a second passed
	sessions   float64
	sessionsOK bool
	firstRead  time.Duration // the first payment-params answer, reading a stored key
	readNote   string
}

// startOnDisk starts a wxgate on on's emulator with the disk store in dir, reads its RSS and
// stored-key count, asks it for payment params of openid (whose session key is sessionKey,
// "" to skip), and stops it.
func (h *harness) startOnDisk(on *stack, name, what, dir, openid, sessionKey string) (startCheck, error) {
	c := startCheck{what: what}
	st, err := h.startGateOn(on, name, diskStoreConfig(dir))
	if err != nil {
		return c, err
	}
	defer st.stop()
	c.startedIn = st.startedIn
	if s, err := procstat.Read(st.gate.pid()); err == nil {
		c.rss = s.RSS
	}
	if openid != "" {
		signData := `{"offerId":"1450000001","buyQuantity":1,"env":0,"currencyType":"CNY","outTradeNo":"wxbench-start","attach":""}`
		var out proxy.PaymentParams
		t0 := time.Now()
		err := call("POST", "http://"+st.appAddr+proxy.PathXpayPaymentParams, map[string]string{proxy.HeaderApp: on.apps[0].Name},
			[]byte(`{"openid":"`+openid+`","mode":"short_series_coin","signData":`+signData+`}`), &out)
		c.firstRead = time.Since(t0)
		switch {
		case err != nil:
			c.readNote = "the stored key was not served: " + err.Error()
		case out.Signature != string(signer.AppendUserSignature(nil, sessionKey, []byte(out.SignData))):
			c.readNote = "the signature does not match the imported key"
		default:
			c.readNote = "signed with the imported key"
		}
	}
	time.Sleep(time.Second)
	if s, err := procstat.Read(st.gate.pid()); err == nil {
		c.rssLater = s.RSS
	}
	c.sessions, c.sessionsOK = scrape(st.metricsURL(), metricSessions)
	return c, nil
}

// storeMillion measures h.opts.MaxSessions session keys (1M by default) on disk and in Redis,
// and wxgate's start on the disk store holding them.
func (h *harness) storeMillion(ctx context.Context, on *stack, rs *redisServer) error {
	n := h.opts.MaxSessions
	appID := on.apps[0].AppID
	sec := &section{
		title: fmt.Sprintf("10c. Store kinds: %s session keys (size on disk, Redis memory, start-up)", fmtCount(n)),
		intro: fmt.Sprintf("%s session keys of realistic shape (appid wx + 16 hex, the configured app's; openid of 28 characters in no "+
			"order; session_key 24 base64 characters of 16 bytes; expiring 72 h after they were written), written straight through the "+
			"store package, not through %s HTTP logins (each of which would fsync on its own): `store.OpenDisk` and "+
			"`store.AsExporter(s).Import` in transactions of %s records (one fsync each); on Redis the same Import (pipelined SETs with "+
			"PXAT, %s per DoMulti) after FLUSHALL. Then `wxgate serve` on the disk store: start to its first healthy /healthz, its RSS, "+
			"and one POST %s for a stored openid (the answer's signature checked against the imported key).",
			fmtCount(n), fmtCount(n), fmtCount(storeFillBatch), fmtCount(storeFillBatch), proxy.PathXpayPaymentParams),
	}
	defer h.report.add(sec)
	probe := sessionRecords(appID, n/2, n/2+1, time.Time{})[0]

	// Disk.
	dir := filepath.Join(h.dir, "store-million", "data")
	h.logf("  writing %d session keys into a disk store ...\n", n)
	ds, err := store.OpenDisk(dir, store.Options{})
	if err != nil {
		return err
	}
	fillTook, err := fillStore(ctx, ds, appID, n)
	if cerr := ds.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	path := filepath.Join(dir, store.DiskFile)
	size, alloc, err := fileUsage(path)
	if err != nil {
		return err
	}
	sec.table = append(sec.table,
		"| what | total | per key | how |",
		"|---|---:|---:|---|",
		fmt.Sprintf("| disk: %s, file size | %s | %.0f B | written in %s (%.0f keys/s), %d transactions |", store.DiskFile, fmtMB(uint64(size)),
			float64(size)/float64(n), fmtDur(fillTook), float64(n)/fillTook.Seconds(), (n+storeFillBatch-1)/storeFillBatch),
		fmt.Sprintf("| disk: %s, blocks allocated | %s | %.0f B | st_blocks × 512 |", store.DiskFile, fmtMB(uint64(alloc)), float64(alloc)/float64(n)))
	if u, err := readBoltUsage(path); err == nil {
		sec.notes = append(sec.notes, fmt.Sprintf("Inside %s (bbolt, %d-byte pages, read after the fill): pages up to %s, "+
			"%d of them free (%s); %s. Each key is stored twice: in `sessions` (app 0x00 openid → expiry + session_key) and in the "+
			"`expiry` index (expiry + kind + key, for the sweeper).", store.DiskFile, u.pageSize, fmtMB(uint64(u.highWater)), u.freePages,
			fmtMB(uint64(u.freePages)*uint64(u.pageSize)), strings.Join(u.buckets, "; ")))
	} else {
		sec.notes = append(sec.notes, "bbolt page statistics could not be read: "+err.Error())
	}

	// Redis.
	h.logf("  writing %d session keys into Redis ...\n", n)
	if _, err := rs.mon.do("FLUSHALL"); err != nil {
		return err
	}
	m0, err := rs.info("memory")
	if err != nil {
		return err
	}
	rst, err := store.OpenRedis(store.RedisOptions{URL: rs.url(), Prefix: policies.DefaultStorePrefix}, store.Options{Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	redisTook, err := fillStore(ctx, rst, appID, n)
	rst.Close()
	if err != nil {
		return err
	}
	m1, err := rs.info("memory")
	if err != nil {
		return err
	}
	ks, _ := rs.info("keyspace")
	used0, _ := infoInt(m0, "used_memory")
	used1, _ := infoInt(m1, "used_memory")
	sec.table = append(sec.table, fmt.Sprintf("| Redis: used_memory | %s (%s before) | %.0f B | written in %s (%.0f keys/s); keyspace %s |",
		fmtMB(uint64(used1)), fmtMB(uint64(used0)), float64(used1-used0)/float64(n), fmtDur(redisTook), float64(n)/redisTook.Seconds(), orDash(ks["db0"])))
	if d1, ok := infoInt(m1, "used_memory_dataset"); ok {
		d0, _ := infoInt(m0, "used_memory_dataset")
		sec.table = append(sec.table, fmt.Sprintf("| Redis: used_memory_dataset | %s | %.0f B | used_memory minus Redis's overhead (keys' dictionaries and expires included in used_memory) |",
			fmtMB(uint64(d1)), float64(d1-d0)/float64(n)))
	}
	if rss, ok := infoInt(m1, "used_memory_rss"); ok {
		sec.table = append(sec.table, fmt.Sprintf("| Redis: used_memory_rss | %s | | the process's resident memory (allocator included) |", fmtMB(uint64(rss))))
	}
	sec.notes = append(sec.notes, fmt.Sprintf("Redis keys look like `%ss:%s:%s` (%d bytes) holding the 24-character key, each with a PXAT expiry.",
		policies.DefaultStorePrefix, appID, probe.OpenID, len(policies.DefaultStorePrefix)+2+len(appID)+1+len(probe.OpenID)))
	if _, err := rs.mon.do("FLUSHALL"); err != nil {
		return err
	}

	// Start-up.
	h.logf("  starting wxgate on an empty disk store and on the one of %d keys ...\n", n)
	var starts []startCheck
	empty, err := h.startOnDisk(on, "store-start-empty", "empty disk store", "data", "", "")
	if err != nil {
		return err
	}
	starts = append(starts, empty)
	warm, err := h.startOnDisk(on, "store-start-cached", fmtCount(n)+" keys, file in the page cache (just written)", dir, probe.OpenID, probe.SessionKey)
	if err != nil {
		return err
	}
	starts = append(starts, warm)
	coldNote := ""
	if err := evictFile(path); err != nil {
		coldNote = "the file could not be evicted from the page cache (" + err.Error() + "): the last start read it from memory"
	}
	cold, err := h.startOnDisk(on, "store-start-cold", fmtCount(n)+" keys, file evicted from the page cache (fadvise DONTNEED)", dir, probe.OpenID, probe.SessionKey)
	if err != nil {
		return err
	}
	starts = append(starts, cold)
	sec.table = append(sec.table, "",
		"| wxgate serve on | start (to /healthz) | RSS after start | RSS 1 s later | wxgate_session_keys | first payment-params answer |",
		"|---|---:|---:|---:|---:|---|")
	for _, s := range starts {
		keys := "n/a"
		if s.sessionsOK {
			keys = fmt.Sprintf("%.0f", s.sessions)
		}
		read := "-"
		if s.readNote != "" {
			read = fmt.Sprintf("%s, %s", fmtDur(s.firstRead), s.readNote)
		}
		sec.table = append(sec.table, fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", s.what, fmtDur(s.startedIn), fmtMB(s.rss), fmtMB(s.rssLater), keys, read))
	}
	worst := max(warm.startedIn, cold.startedIn)
	sec.targets = append(sec.targets, targetCheck{
		what: fmt.Sprintf("store: wxgate serve on a disk store of %s keys, start to healthy", fmtCount(n)), limit: storeStartTarget.Seconds(),
		atMost: true, unit: " s", value: worst.Seconds(), ok: true,
		remark: fmt.Sprintf("the slower of the cached (%s) and the evicted (%s) start; an empty store: %s", fmtDur(warm.startedIn), fmtDur(cold.startedIn), fmtDur(empty.startedIn)),
	})
	grew := int64(max(warm.rssLater, cold.rssLater)) - int64(empty.rssLater)
	note := fmt.Sprintf("RSS with %s keys minus RSS on an empty store, a second after start: %s, against a file of %s",
		fmtCount(n), fmtSignedMB(grew), fmtMB(uint64(size)))
	if grew < size/10 {
		note += ": wxgate does not load the keys; bbolt maps the file and only the pages a lookup touches become resident."
	} else {
		note += ": **a large share of the file became resident at start** (read by wxgate or by bbolt on open)."
	}
	sec.notes = append(sec.notes, note)
	if coldNote != "" {
		sec.notes = append(sec.notes, coldNote)
	}
	return nil
}

// diskWrites returns the bytes process pid caused to be written to storage so far
// (write_bytes of /proc/PID/io: pages it dirtied, counted when dirtied, whoever flushes them).
func diskWrites(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	return parseProcIO(string(b), "write_bytes")
}

// parseProcIO reads one field of a /proc/PID/io text.
func parseProcIO(s, field string) (int64, error) {
	for line := range strings.SplitSeq(s, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/PID/io", field)
}

// writesDuring returns what each gate's process wrote to storage while run ran (-1 where
// /proc/PID/io could not be read).
func writesDuring(gates []storeGate, run func()) []int64 {
	before := make([]int64, len(gates))
	for i, g := range gates {
		var err error
		if before[i], err = diskWrites(g.st.gate.pid()); err != nil {
			before[i] = -1
		}
	}
	run()
	out := make([]int64, len(gates))
	for i, g := range gates {
		after, err := diskWrites(g.st.gate.pid())
		if err != nil || before[i] < 0 {
			out[i] = -1
			continue
		}
		out[i] = after - before[i]
	}
	return out
}

// writesNote says what each gate wrote to storage per unit during the runs of rows.
func writesNote(gates []storeGate, written []int64, rows []row, unit string) string {
	var parts []string
	for i, g := range gates {
		if written[i] < 0 || rows[i].res == nil || rows[i].res.Requests == 0 {
			parts = append(parts, g.kind+" n/a")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s", g.kind, fmtPerUnit(float64(written[i])/float64(rows[i].res.Requests))))
	}
	return fmt.Sprintf("Written to storage by each wxgate per %s during the peak runs (write_bytes of /proc/PID/io): %s", unit, strings.Join(parts, ", "))
}

// fmtPerUnit writes a byte count that may be fractional.
func fmtPerUnit(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

// pacedShortNote flags the paced rows that could not keep the pace: their latencies are queueing.
func pacedShortNote(paced []row, rate float64) string {
	var short []string
	for i := range paced {
		if r := &paced[i]; r.res != nil && r.rps() < 0.95*rate {
			short = append(short, fmt.Sprintf("%s reached %.0f/s", r.col.name, r.rps()))
		}
	}
	if len(short) == 0 {
		return ""
	}
	return fmt.Sprintf("**Could not keep the pace of %.0f/s**: %s; its paced latencies are mostly the queue of requests "+
		"waiting for a connection (counted from their due time).", rate, strings.Join(short, ", "))
}

// fmtCount writes n with thousands separators (1,000,000).
func fmtCount(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// fmtSignedMB writes a memory difference with its sign.
func fmtSignedMB(n int64) string {
	if n == 0 {
		return "0 MB"
	}
	if n < 0 {
		return "−" + fmtMB(uint64(-n))
	}
	return "+" + fmtMB(uint64(n))
}
