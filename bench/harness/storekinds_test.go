package harness

import (
	"bufio"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/bench/loadgen"
	"github.com/wxgate/wxgate/store"
)

// infoSample is the shape of redis-server 7.0's INFO answers (CRLF line ends, # headings).
const infoSample = "# Memory\r\nused_memory:939472\r\nused_memory_human:917.45K\r\nused_memory_dataset:62960\r\n\r\n" +
	"# Commandstats\r\ncmdstat_set:calls=3000,usec=2100,usec_per_call=0.70,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_info:calls=7,usec=93,usec_per_call=13.29,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_config|get:calls=2,usec=10,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n" +
	"# Keyspace\r\ndb0:keys=1000000,expires=1000000,avg_ttl=259199000\r\n"

func TestParseInfo(t *testing.T) {
	info := parseInfo(infoSample)
	if n, ok := infoInt(info, "used_memory"); !ok || n != 939472 {
		t.Errorf("used_memory %d %v", n, ok)
	}
	if n, ok := infoInt(info, "used_memory_dataset"); !ok || n != 62960 {
		t.Errorf("used_memory_dataset %d %v", n, ok)
	}
	if _, ok := infoInt(info, "used_memory_human"); ok {
		t.Error("917.45K read as an integer")
	}
	if _, ok := info["# Memory"]; ok {
		t.Error("a heading read as a field")
	}
	if info["db0"] != "keys=1000000,expires=1000000,avg_ttl=259199000" {
		t.Errorf("db0 = %q (a value holding ':' or '=' must stay whole)", info["db0"])
	}
	calls := commandCalls(info)
	if calls["set"] != 3000 || calls["info"] != 7 || calls["config|get"] != 2 || len(calls) != 3 {
		t.Errorf("commandCalls = %v", calls)
	}
}

func TestCallsDeltaAndPerCommand(t *testing.T) {
	before := map[string]int64{"set": 10, "get": 5, "ping": 1}
	after := map[string]int64{"set": 310, "get": 5, "ping": 2, "eval": 4}
	d := callsDelta(before, after)
	if len(d) != 3 || d["set"] != 300 || d["ping"] != 1 || d["eval"] != 4 {
		t.Fatalf("callsDelta = %v (commands not called in between must be left out)", d)
	}
	s, per := perCommand(d, 100)
	if s != "SET 3, EVAL 0.04, PING 0.01" || per != 3.05 {
		t.Errorf("perCommand = %q, %v", s, per)
	}
	if s, per := perCommand(map[string]int64{}, 100); s != "none" || per != 0 {
		t.Errorf("no commands: %q %v", s, per)
	}
	if s, _ := perCommand(d, 0); s != "n/a" {
		t.Errorf("no requests: %q", s)
	}
}

func TestRESP(t *testing.T) {
	if got := string(appendCommand(nil, "INFO", "memory")); got != "*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n" {
		t.Errorf("appendCommand = %q", got)
	}
	r := bufio.NewReader(strings.NewReader("+PONG\r\n:42\r\n$5\r\na\r\nbc\r\n$-1\r\n-ERR unknown command\r\n*1\r\n"))
	for _, want := range []string{"PONG", "42", "a\r\nbc", ""} {
		if got, err := readReply(r); err != nil || got != want {
			t.Errorf("readReply = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := readReply(r); err == nil || !strings.Contains(err.Error(), "ERR unknown command") {
		t.Errorf("an error reply: %v", err)
	}
	if _, err := readReply(r); err == nil {
		t.Error("an array reply must be refused")
	}
}

func TestSessionRecordsHaveRealisticShapes(t *testing.T) {
	exp := time.Now().Add(store.DefaultSessionTTL)
	recs := sessionRecords("wx0123456789abcdef", 0, 2000, exp)
	if len(recs) != 2000 {
		t.Fatalf("%d records", len(recs))
	}
	seen := map[string]bool{}
	sorted := true
	for i, r := range recs {
		if r.Type != store.RecordSession || r.App != "wx0123456789abcdef" || !r.ExpiresAt.Equal(exp) {
			t.Fatalf("record %d: %+v", i, r)
		}
		if len(r.OpenID) != 28 || r.OpenID[0] != 'o' {
			t.Fatalf("openid %q: want 28 characters starting with o", r.OpenID)
		}
		if _, err := base64.RawURLEncoding.DecodeString(r.OpenID[1:27]); err != nil {
			t.Fatalf("openid %q is not base64url", r.OpenID)
		}
		key, err := base64.StdEncoding.DecodeString(r.SessionKey)
		if len(r.SessionKey) != 24 || err != nil || len(key) != 16 {
			t.Fatalf("session_key %q: want 24 base64 characters of 16 bytes (%v)", r.SessionKey, err)
		}
		if seen[r.OpenID] {
			t.Fatalf("openid %q repeated", r.OpenID)
		}
		seen[r.OpenID] = true
		if i > 0 && r.OpenID < recs[i-1].OpenID {
			sorted = false
		}
	}
	if sorted {
		t.Error("openids come in order: a B+tree fill would be a best case")
	}
	again := sessionRecords("wx0123456789abcdef", 1500, 1501, exp)
	if again[0] != recs[1500] {
		t.Errorf("record 1500 differs when built alone: %+v vs %+v", again[0], recs[1500])
	}
}

func TestFmtCount(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 10000: "10,000", 1000000: "1,000,000"} {
		if got := fmtCount(n); got != want {
			t.Errorf("fmtCount(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseProcIO(t *testing.T) {
	io := "rchar: 6976\nwchar: 12\nsyscr: 10\nsyscw: 1\nread_bytes: 4096\nwrite_bytes: 1052672\ncancelled_write_bytes: 0\n"
	if n, err := parseProcIO(io, "write_bytes"); err != nil || n != 1052672 {
		t.Errorf("write_bytes %d %v", n, err)
	}
	if n, err := parseProcIO(io, "read_bytes"); err != nil || n != 4096 {
		t.Errorf("read_bytes %d %v", n, err)
	}
	if _, err := parseProcIO(io, "bytes"); err == nil {
		t.Error("a missing field must be an error, not a suffix match")
	}
}

func TestStoreNotes(t *testing.T) {
	if got := fmtFine(30*time.Millisecond, 20000); got != "1.5 µs" {
		t.Errorf("fmtFine = %q", got)
	}
	if got := fmtFine(600*time.Millisecond, 20000); got != "30 µs" {
		t.Errorf("fmtFine = %q", got)
	}
	if got := fmtFine(time.Second, 0); got != "-" {
		t.Errorf("fmtFine with no requests = %q", got)
	}
	res := func(n uint64) *loadgen.Result { return &loadgen.Result{Requests: n, Elapsed: time.Second} }
	paced := []row{{col: column{name: "memory"}, res: res(1000)}, {col: column{name: "disk"}, res: res(600)}}
	if got := pacedShortNote(paced, 1000); !strings.Contains(got, "disk reached 600/s") || strings.Contains(got, "memory") {
		t.Errorf("pacedShortNote = %q", got)
	}
	if got := pacedShortNote(paced[:1], 1000); got != "" {
		t.Errorf("a column at the pace is not short: %q", got)
	}
	rounds := [][]roundP99{{{due: time.Millisecond, ok: true}, {}}, {{due: 2 * time.Millisecond, ok: true}, {due: 3 * time.Millisecond, ok: true}}}
	if got := storeRoundsNote(paced, rounds); got != "Each of the 2 paced rounds' p99 on its own: memory 1.00 ms, 2.00 ms; disk n/a, 3.00 ms." {
		t.Errorf("storeRoundsNote = %q", got)
	}
	if storeRoundsNote(paced, rounds[:1]) != "" {
		t.Error("one round needs no note")
	}
}
