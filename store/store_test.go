package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/redistest"
)

var bg = context.Background()

// kind opens a fresh store of one kind; a second call of open returns another handle on the
// same state where the kind can share it (redis), else nil.
type kind struct {
	name string
	open func(t *testing.T) (Store, func() Store)
}

// loadedOptions give Redis operations 5 s instead of 500 ms: go test runs packages side by side,
// and on a 2-core machine a loaded redis-server may answer late. Outage tests set their own.
var loadedOptions = Options{Timeout: 5 * time.Second}

func kinds() []kind {
	return []kind{
		{"memory", func(t *testing.T) (Store, func() Store) {
			return OpenMemory(Options{}), nil
		}},
		{"disk", func(t *testing.T) (Store, func() Store) {
			s, err := OpenDisk(t.TempDir(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s, nil
		}},
		{"redis", func(t *testing.T) (Store, func() Store) {
			srv := redistest.Start(t)
			open := func() Store { return openRedisT(t, RedisOptions{URL: srv.URL(), Prefix: "t:"}, loadedOptions) }
			return open(), open
		}},
		{"redis-cluster", func(t *testing.T) (Store, func() Store) {
			c := redistest.StartCluster(t)
			open := func() Store {
				return openRedisT(t, RedisOptions{ClusterAddrs: c.Addrs(), Prefix: "t:"}, loadedOptions)
			}
			return open(), open
		}},
	}
}

func openRedisT(t testing.TB, ro RedisOptions, opts Options) Store {
	t.Helper()
	s, err := OpenRedis(ro, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustSession(t *testing.T, s Store, app, openid, want string) {
	t.Helper()
	got, ok, err := s.AppendSession(bg, []byte("k="), app, []byte(openid))
	if err != nil {
		t.Fatalf("AppendSession: %v", err)
	}
	if want == "" {
		if ok {
			t.Fatalf("session of %s/%s = %q, want none", app, openid, got)
		}
		return
	}
	if !ok || string(got) != "k="+want {
		t.Fatalf("session of %s/%s = %q, %v; want %q", app, openid, got, ok, "k="+want)
	}
}

func mustClaim(t *testing.T, s Store, replay, id string, want Verdict) Claim {
	t.Helper()
	c, err := s.Claim(bg, replay, id)
	if err != nil {
		t.Fatalf("Claim(%q, %q): %v", replay, id, err)
	}
	if c.Verdict != want {
		t.Fatalf("Claim(%q, %q) = %v, want %v", replay, id, c.Verdict, want)
	}
	return c
}

func TestSessions(t *testing.T) {
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) {
			s, _ := k.open(t)
			mustSession(t, s, "wxa", "o1", "")
			if err := s.PutSession(bg, "wxa", "o1", "key-1"); err != nil {
				t.Fatal(err)
			}
			mustSession(t, s, "wxa", "o1", "key-1")
			mustSession(t, s, "wxb", "o1", "") // apps apart
			mustSession(t, s, "wxa", "o2", "") // users apart
			if err := s.PutSession(bg, "wxa", "o1", "key-2"); err != nil {
				t.Fatal(err)
			}
			mustSession(t, s, "wxa", "o1", "key-2") // the newest login wins
		})
	}
}

// TestClaimSemantics walks one event through what WeChat and an attacker can send.
func TestClaimSemantics(t *testing.T) {
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) {
			s, _ := k.open(t)
			c := mustClaim(t, s, "r1", "ev1", Claimed)
			mustClaim(t, s, "r1", "ev1", Replayed) // the same signed request, at once
			mustClaim(t, s, "r2", "ev1", InFlight) // WeChat's retry while the first is delivered
			if err := s.Release(bg, c); err != nil {
				t.Fatal(err)
			}
			// A failed delivery forgets the replay key: the same request may come again.
			c = mustClaim(t, s, "r1", "ev1", Claimed)
			if err := s.Delivered(bg, c); err != nil {
				t.Fatal(err)
			}
			mustClaim(t, s, "r1", "ev1", Replayed)         // an exact replay, after delivery
			mustClaim(t, s, "r3", "ev1", AlreadyDelivered) // WeChat's retry: acknowledged
			mustClaim(t, s, "r3", "ev1", Replayed)         // and that retry is used up too
			// APIv2 notifications carry no timestamp or nonce: the event id alone decides.
			c = mustClaim(t, s, "", "ev2", Claimed)
			mustClaim(t, s, "", "ev2", InFlight)
			if err := s.Delivered(bg, c); err != nil {
				t.Fatal(err)
			}
			mustClaim(t, s, "", "ev2", AlreadyDelivered)
			// A releases a claim that is no longer its own: nothing changes.
			c = mustClaim(t, s, "r4", "ev3", Claimed)
			if err := s.Delivered(bg, c); err != nil {
				t.Fatal(err)
			}
			if err := s.Release(bg, c); err != nil {
				t.Fatal(err)
			}
			mustClaim(t, s, "r5", "ev3", AlreadyDelivered)
			// A very long id is kept as a digest: two ids with a common 128-byte prefix differ.
			long := string(make([]byte, 200))
			mustClaim(t, s, "", long+"a", Claimed)
			mustClaim(t, s, "", long+"b", Claimed)
		})
	}
}

// TestClaimOnce: eight deliveries of one event at once, each with its own signed request,
// through two handles where the kind shares state: exactly one is claimed.
func TestClaimOnce(t *testing.T) {
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) {
			a, open := k.open(t)
			b := a
			if open != nil {
				b = open()
			}
			for round := range 5 {
				var wg sync.WaitGroup
				verdicts := make([]Verdict, 8)
				for i := range verdicts {
					wg.Add(1)
					go func() {
						defer wg.Done()
						s := a
						if i%2 == 1 {
							s = b
						}
						c, err := s.Claim(bg, fmt.Sprintf("r%d-%d", round, i), fmt.Sprintf("ev%d", round))
						if err != nil {
							t.Error(err)
							if c.Verdict != Failed {
								t.Errorf("a failed claim's verdict is %v", c.Verdict)
							}
							return
						}
						verdicts[i] = c.Verdict
					}()
				}
				wg.Wait()
				claimed := 0
				for _, v := range verdicts {
					if v == Claimed {
						claimed++
					} else if v != InFlight && v != Failed {
						t.Fatalf("round %d: verdict %v", round, v)
					}
				}
				if claimed != 1 {
					t.Fatalf("round %d: %d claims of one event, want 1 (%v)", round, claimed, verdicts)
				}
			}
		})
	}
}

// TestFleet: two instances on one Redis see each other's writes.
func TestFleet(t *testing.T) {
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) {
			a, open := k.open(t)
			if open == nil {
				t.Skipf("%s is one process's state: no fleet to test", k.name)
			}
			b := open()
			if err := a.PutSession(bg, "wxa", "o1", "key-A"); err != nil {
				t.Fatal(err)
			}
			mustSession(t, b, "wxa", "o1", "key-A")
			mustSession(t, a, "wxa", "o1", "key-A") // now cached on both
			if err := b.PutSession(bg, "wxa", "o1", "key-B"); err != nil {
				t.Fatal(err)
			}
			mustSession(t, b, "wxa", "o1", "key-B")
			waitSession(t, a, "wxa", "o1", "key-B") // Redis invalidates A's cached copy

			c := mustClaim(t, a, "r1", "ev1", Claimed)
			mustClaim(t, b, "r1", "ev1", Replayed)
			mustClaim(t, b, "r2", "ev1", InFlight)
			if err := a.Delivered(bg, c); err != nil {
				t.Fatal(err)
			}
			mustClaim(t, b, "r3", "ev1", AlreadyDelivered)
		})
	}
}

// waitSession polls until s serves want for (app, openid): an invalidation travels from Redis
// on its own connection, so the bound is stated (DefaultRedisCacheTTL), not "at once".
func waitSession(t *testing.T, s Store, app, openid, want string) {
	t.Helper()
	deadline := time.Now().Add(DefaultRedisCacheTTL)
	for {
		got, ok, err := s.AppendSession(bg, nil, app, []byte(openid))
		if err == nil && ok && string(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session = %q, %v, %v; want %q within %s", got, ok, err, want, DefaultRedisCacheTTL)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestExpiry(t *testing.T) {
	for _, name := range []string{"memory", "disk"} {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			opts := Options{Clock: clock.Now, SessionTTL: time.Hour, ReplayTTL: 10 * time.Minute, DeliveredTTL: 2 * time.Hour, ClaimTTL: 30 * time.Second}
			var s Store
			if name == "memory" {
				s = OpenMemory(opts)
			} else {
				var err error
				if s, err = OpenDisk(t.TempDir(), opts); err != nil {
					t.Fatal(err)
				}
				defer s.Close()
			}
			if err := s.PutSession(bg, "wxa", "o1", "key-1"); err != nil {
				t.Fatal(err)
			}
			mustClaim(t, s, "held", "ev-held", Claimed) // never released: its holder died
			c := mustClaim(t, s, "r1", "ev1", Claimed)
			if err := s.Delivered(bg, c); err != nil {
				t.Fatal(err)
			}
			clock.Advance(31 * time.Second)
			mustClaim(t, s, "held2", "ev-held", Claimed) // the dead holder's claim lapsed
			mustClaim(t, s, "r1", "ev1", Replayed)
			clock.Advance(10*time.Minute - 31*time.Second)
			mustClaim(t, s, "r1", "ev1", AlreadyDelivered) // the replay key lapsed after 10 min
			clock.Advance(50*time.Minute - time.Nanosecond)
			mustSession(t, s, "wxa", "o1", "key-1")
			clock.Advance(time.Nanosecond)
			mustSession(t, s, "wxa", "o1", "")
			clock.Advance(time.Hour)
			mustClaim(t, s, "r9", "ev1", Claimed) // delivered ids lapse after DeliveredTTL
		})
	}
}

// TestRedisDown: with Redis stopped every operation fails at once with ErrUnavailable; when
// it is back the same store works again, without reopening.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	s := openRedisT(t, RedisOptions{URL: srv.URL(), Prefix: "t:"}, Options{Timeout: 300 * time.Millisecond})
	if err := s.PutSession(bg, "wxa", "o1", "key-1"); err != nil {
		t.Fatal(err)
	}
	mustSession(t, s, "wxa", "o1", "key-1")
	mustSession(t, s, "wxa", "o1", "key-1") // served from the cache now
	srv.Kill()
	// The cache is trusted only while its invalidation subscription lives; the store notices
	// the lost connection by itself (the server's socket closed), without any request.
	waitFor(t, "the cache to turn off", func() bool { return !s.(*redisStore).cacheOn.Load() })
	start := time.Now()
	checks := map[string]error{}
	_, _, checks["AppendSession"] = s.AppendSession(bg, nil, "wxa", []byte("o1"))
	checks["PutSession"] = s.PutSession(bg, "wxa", "o2", "key-2")
	c, claimErr := s.Claim(bg, "r1", "ev1")
	checks["Claim"] = claimErr
	if c.Verdict != Failed {
		t.Errorf("a claim with Redis down has verdict %v, want failed", c.Verdict)
	}
	checks["Check"] = s.Check(bg)
	for op, err := range checks {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", op, err)
		}
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("four operations against a stopped Redis took %s", took)
	}
	if st := s.Stats(); st.Up || st.Errors == 0 {
		t.Errorf("Stats with Redis down = %+v, want Up=false and errors counted", st)
	}
	srv.Restart() // empty: started without persistence
	waitFor(t, "the store to reconnect", func() bool { return s.Check(bg) == nil })
	waitFor(t, "the cache to turn on again", func() bool { return s.(*redisStore).cacheOn.Load() })
	if err := s.PutSession(bg, "wxa", "o1", "key-3"); err != nil {
		t.Fatal(err)
	}
	mustSession(t, s, "wxa", "o1", "key-3")
	if !s.Stats().Up {
		t.Error("Stats.Up stays false after Redis came back")
	}
}

// TestRedisUnreachableAtOpen: a wrong address is an error at start-up, naming the address but
// never the password.
func TestRedisUnreachableAtOpen(t *testing.T) {
	port := redistest.Start(t)
	port.Kill()
	_, err := OpenRedis(RedisOptions{URL: "redis://:hunter2-secret@" + port.Addr() + "/0"}, Options{Timeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("OpenRedis succeeded against a stopped server")
	}
	if msg := err.Error(); !strings.Contains(msg, port.Addr()) || strings.Contains(msg, "hunter2") {
		t.Fatalf("error %q should name %s and not the password", msg, port.Addr())
	}
}

// TestRedisPrefixesApart: two deployments with different prefixes on one Redis share nothing.
func TestRedisPrefixesApart(t *testing.T) {
	srv := redistest.Start(t)
	a := openRedisT(t, RedisOptions{URL: srv.URL(), Prefix: "one:"}, loadedOptions)
	b := openRedisT(t, RedisOptions{URL: srv.URL(), Prefix: "two:"}, loadedOptions)
	if err := a.PutSession(bg, "wxa", "o1", "key-1"); err != nil {
		t.Fatal(err)
	}
	mustSession(t, b, "wxa", "o1", "")
	mustClaim(t, a, "r1", "ev1", Claimed)
	mustClaim(t, b, "r1", "ev1", Claimed)
	if keys := srv.Do("--scan", "--pattern", "one:*"); !strings.Contains(keys, "one:s:wxa:o1") {
		t.Fatalf("keys under one: = %q", keys)
	}
}

// TestRedisAuth: a password in redis_url is used.
func TestRedisAuth(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "pw-123456")
	if _, err := OpenRedis(RedisOptions{URL: srv.URL()}, Options{}); err == nil {
		t.Fatal("OpenRedis without the password succeeded")
	}
	s := openRedisT(t, RedisOptions{URL: "redis://:pw-123456@" + srv.Addr() + "/2"}, loadedOptions)
	if err := s.PutSession(bg, "wxa", "o1", "key-1"); err != nil {
		t.Fatal(err)
	}
	if got := srv.Do("-a", "pw-123456", "--no-auth-warning", "-n", "2", "get", "s:wxa:o1"); got != "key-1" {
		t.Fatalf("db 2 holds %q", got)
	}
}

// TestRedisSentinel: the master is found through a Sentinel.
func TestRedisSentinel(t *testing.T) {
	master := redistest.Start(t)
	sentinel := redistest.StartSentinel(t, "wxgate-test", master)
	s := openRedisT(t, RedisOptions{SentinelMaster: "wxgate-test", SentinelAddrs: []string{sentinel.Addr()}, Prefix: "t:"}, loadedOptions)
	if err := s.PutSession(bg, "wxa", "o1", "key-1"); err != nil {
		t.Fatal(err)
	}
	if got := master.Do("get", "t:s:wxa:o1"); got != "key-1" {
		t.Fatalf("the master holds %q", got)
	}
}

// waitFor polls cond until it holds, for conditions no event announces (a process noticing a
// closed socket); it fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRedisCacheServesHotKeys: a hot session key costs Redis one GET, not one per call; a write
// by another instance is served by this one from the next read after its invalidation arrives.
func TestRedisCacheServesHotKeys(t *testing.T) {
	srv := redistest.Start(t)
	a := openRedisT(t, RedisOptions{URL: srv.URL(), Prefix: "t:"}, loadedOptions)
	b := openRedisT(t, RedisOptions{URL: srv.URL(), Prefix: "t:"}, loadedOptions)
	waitFor(t, "the caches to turn on", func() bool {
		return a.(*redisStore).cacheOn.Load() && b.(*redisStore).cacheOn.Load()
	})
	if err := a.PutSession(bg, "wxa", "o1", "key-1"); err != nil {
		t.Fatal(err)
	}
	gets := func() int { // cmdstat_get:calls=N,... (absent before the first GET)
		for _, line := range strings.Split(srv.Do("info", "commandstats"), "\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_get:calls="); ok {
				return atoi(t, strings.Split(rest, ",")[0])
			}
		}
		return 0
	}
	before := gets()
	for range 100 {
		mustSession(t, a, "wxa", "o1", "key-1")
	}
	if after := gets(); after != before+1 {
		t.Fatalf("100 reads of one key cost %d GETs, want 1", after-before)
	}
	if err := b.PutSession(bg, "wxa", "o1", "key-2"); err != nil {
		t.Fatal(err)
	}
	waitSession(t, a, "wxa", "o1", "key-2")
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}
