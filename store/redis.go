package store

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// RedisOptions say which Redis to use. Exactly one topology applies: ClusterAddrs (a Redis
// Cluster), SentinelMaster with SentinelAddrs (a master found through Sentinel), or URL alone
// (one server). URL always gives the credentials, TLS (rediss://) and database.
type RedisOptions struct {
	URL            string
	ClusterAddrs   []string
	SentinelMaster string
	SentinelAddrs  []string
	// SentinelPassword authenticates to the sentinels, when they require it.
	SentinelPassword string
	// CAFile is a PEM file of CA certificates trusted for rediss:// besides the system's.
	CAFile string
	// Prefix starts every key wxgate writes, so that several deployments share one Redis.
	Prefix string
	// CacheTTL bounds how long a session key read from Redis is served from this process's
	// memory. An instance that writes a key publishes its name and every instance drops its
	// copy on receipt; while that subscription is down no copy is served at all. CacheTTL is
	// the bound should a message be late.
	CacheTTL time.Duration
	// CacheEntries caps the cached keys; default 100,000.
	CacheEntries int
}

// Defaults of RedisOptions.
const (
	DefaultRedisCacheTTL     = 10 * time.Second
	DefaultRedisCacheEntries = 100_000
)

// resubscribeAfter is the pause before subscribing again to invalidations after a failure.
const resubscribeAfter = 500 * time.Millisecond

// Scripts that delete a key only if it still holds the value this claim wrote.
const releaseScript = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`

// OpenRedis connects to Redis and returns a store on it. It fails at once if Redis cannot be
// reached, so a wrong redis_url is found at start-up.
func OpenRedis(ro RedisOptions, opts Options) (Store, error) {
	opts = opts.withDefaults()
	co, err := redisClientOption(ro, opts.Timeout)
	if err != nil {
		return nil, err
	}
	client, err := rueidis.NewClient(co)
	if err != nil {
		return nil, fmt.Errorf("connect to Redis %s: %w", redisWhere(ro), err)
	}
	if ro.CacheTTL <= 0 {
		ro.CacheTTL = DefaultRedisCacheTTL
	}
	if ro.CacheEntries <= 0 {
		ro.CacheEntries = DefaultRedisCacheEntries
	}
	s := &redisStore{
		client: client, prefix: ro.Prefix, opts: opts, where: redisWhere(ro),
		cache: newLocalCache(ro.CacheTTL, ro.CacheEntries), channel: ro.Prefix + "invalidate",
		stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	s.instance = hex.EncodeToString(id[:])
	if err := s.Check(context.Background()); err != nil {
		client.Close()
		return nil, fmt.Errorf("connect to Redis %s: %w", s.where, err)
	}
	go s.watchInvalidations()
	return s, nil
}

// redisClientOption turns RedisOptions into rueidis options.
func redisClientOption(ro RedisOptions, timeout time.Duration) (rueidis.ClientOption, error) {
	var co rueidis.ClientOption
	if ro.URL != "" {
		var err error
		if co, err = rueidis.ParseURL(ro.URL); err != nil {
			return co, fmt.Errorf("store.redis_url does not parse (redis://[user:password@]host:port[/db] or rediss:// for TLS)")
		}
	}
	if ro.CAFile != "" {
		if co.TLSConfig == nil {
			return co, errors.New("store.redis_ca_file is set but store.redis_url is not rediss://: TLS is off")
		}
		pem, err := os.ReadFile(ro.CAFile)
		if err != nil {
			return co, fmt.Errorf("store.redis_ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return co, fmt.Errorf("store.redis_ca_file %s holds no PEM certificate", ro.CAFile)
		}
		co.TLSConfig.RootCAs = pool
	}
	switch {
	case len(ro.ClusterAddrs) > 0:
		co.InitAddress = ro.ClusterAddrs
	case ro.SentinelMaster != "":
		co.InitAddress = ro.SentinelAddrs
		co.Sentinel = rueidis.SentinelOption{MasterSet: ro.SentinelMaster, Password: ro.SentinelPassword, TLSConfig: co.TLSConfig, TopologyRefreshInterval: 5 * time.Second}
	default:
		co.ForceSingleClient = true
	}
	if len(co.InitAddress) == 0 {
		return co, errors.New("no Redis address: set store.redis_url, store.redis_cluster_addrs or store.redis_sentinel")
	}
	co.Dialer.Timeout = timeout
	co.ConnWriteTimeout = timeout
	co.ClientName = "wxgate"
	co.DisableCache = true // the session cache is localCache, invalidated by wxgate's own messages
	return co, nil
}

// RedisWhere names the Redis ro points at, for logs: its addresses, never its credentials.
func RedisWhere(ro RedisOptions) string { return redisWhere(ro) }

// redisWhere names the Redis for messages: its addresses, never its credentials.
func redisWhere(ro RedisOptions) string {
	switch {
	case len(ro.ClusterAddrs) > 0:
		return fmt.Sprintf("cluster %v", ro.ClusterAddrs)
	case ro.SentinelMaster != "":
		return fmt.Sprintf("master %q of sentinels %v", ro.SentinelMaster, ro.SentinelAddrs)
	}
	if co, err := rueidis.ParseURL(ro.URL); err == nil && len(co.InitAddress) > 0 {
		return co.InitAddress[0]
	}
	return "(unparsable redis_url)"
}

// redisStore keeps the state in Redis, shared by every instance that uses the same Redis and
// prefix. Keys: {prefix}s:{app}:{openid} (session keys), {prefix}r:{replay} and {prefix}e:{event};
// channel {prefix}invalidate carries the names of session keys just written.
type redisStore struct {
	client   rueidis.Client
	prefix   string
	opts     Options
	where    string
	instance string        // random per process: claim tokens are instance:counter
	next     atomic.Uint64 // the last claim number
	errors   atomic.Uint64
	down     atomic.Bool

	cache   *localCache
	channel string
	// cacheOn is true while the invalidation subscription is live: only then is cache used.
	cacheOn atomic.Bool
	// invalidations counts invalidations (and subscription losses): a read from Redis is
	// cached only if none happened while it was in flight, so a stale answer is never kept.
	invalidations atomic.Uint64
	stop, stopped chan struct{}
}

func (s *redisStore) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	return context.WithTimeout(parent, s.opts.Timeout)
}

// failed wraps a Redis error as ErrUnavailable and counts it; nil stays nil (and marks the
// store up).
func (s *redisStore) failed(what string, err error) error {
	if err == nil {
		s.down.Store(false)
		return nil
	}
	s.errors.Add(1)
	s.down.Store(true)
	return fmt.Errorf("%w: %s on Redis %s: %v", ErrUnavailable, what, s.where, err)
}

func (s *redisStore) sessionKey(app, openid string) string {
	return s.prefix + "s:" + app + ":" + openid
}

func (s *redisStore) PutSession(ctx context.Context, app, openid, sessionKey string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	key := s.sessionKey(app, openid)
	// One round trip: the write, then its announcement to every instance's cache.
	res := s.client.DoMulti(ctx,
		s.client.B().Set().Key(key).Value(sessionKey).Px(s.opts.SessionTTL).Build(),
		s.client.B().Publish().Channel(s.channel).Message(key).Build())
	s.invalidate(key)
	for _, r := range res {
		if err := r.Error(); err != nil {
			return s.failed("write a session key", err)
		}
	}
	return s.failed("", nil)
}

func (s *redisStore) AppendSession(ctx context.Context, dst []byte, app string, openid []byte) ([]byte, bool, error) {
	key := s.sessionKey(app, string(openid))
	if s.cacheOn.Load() {
		if v, ok := s.cache.get(key, s.opts.Clock()); ok {
			return append(dst, v...), true, nil
		}
	}
	gen := s.invalidations.Load()
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := s.client.Do(ctx, s.client.B().Get().Key(key).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		s.down.Store(false)
		return dst, false, nil
	}
	if err != nil {
		return dst, false, s.failed("read a session key", err)
	}
	s.down.Store(false)
	if s.cacheOn.Load() && s.invalidations.Load() == gen {
		s.cache.set(key, v, s.opts.Clock())
	}
	return append(dst, v...), true, nil
}

// invalidate drops key from the cache and makes reads in flight not cache what they read.
func (s *redisStore) invalidate(key string) {
	s.invalidations.Add(1)
	s.cache.del(key)
}

// watchInvalidations keeps a subscription to the invalidation channel until Close, and turns
// the cache off (and empties it) whenever the subscription is down: a message missed then could
// leave a stale key.
func (s *redisStore) watchInvalidations() {
	defer close(s.stopped)
	for {
		s.subscribe()
		s.cacheOn.Store(false)
		s.invalidations.Add(1)
		s.cache.clear()
		select {
		case <-s.stop:
			return
		case <-time.After(resubscribeAfter):
		}
	}
}

// subscribe subscribes on a dedicated connection and returns when that connection is lost or
// the store is closed.
func (s *redisStore) subscribe() {
	dc, release := s.client.Dedicate()
	defer release()
	lost := dc.SetPubSubHooks(rueidis.PubSubHooks{
		OnMessage: func(m rueidis.PubSubMessage) { s.invalidate(m.Message) },
		OnSubscription: func(sub rueidis.PubSubSubscription) {
			if sub.Kind == "subscribe" && sub.Channel == s.channel {
				s.cache.clear() // nothing read before the subscription is trusted
				s.cacheOn.Store(true)
			}
		},
	})
	ctx, cancel := s.ctx(context.Background())
	err := dc.Do(ctx, dc.B().Subscribe().Channel(s.channel).Build()).Error()
	cancel()
	if err != nil {
		dc.Close()
		return
	}
	select {
	case <-lost:
	case <-s.stop:
		dc.Close()
	}
}

func (s *redisStore) Claim(ctx context.Context, replay, eventID string) (Claim, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	c := Claim{event: s.prefix + "e:" + eventKey(eventID)}
	c.token = s.instance + ":" + strconv.FormatUint(s.next.Add(1), 10)
	claimEvent := s.client.B().Set().Key(c.event).Value(c.token).Nx().Get().Px(s.opts.ClaimTTL).Build()
	var replayRes, eventRes rueidis.RedisResult
	if replay == "" {
		eventRes = s.client.Do(ctx, claimEvent)
	} else {
		c.replay = s.prefix + "r:" + replay
		// One round trip: record the replay key and claim the event together.
		res := s.client.DoMulti(ctx,
			s.client.B().Set().Key(c.replay).Value(c.token).Nx().Px(s.opts.ReplayTTL).Build(),
			claimEvent)
		replayRes, eventRes = res[0], res[1]
		if err := replayRes.Error(); err != nil && !rueidis.IsRedisNil(err) {
			return Claim{}, s.failed("claim a callback", err)
		}
	}
	old, err := eventRes.ToString()
	eventClaimed := rueidis.IsRedisNil(err)
	if err != nil && !eventClaimed {
		return Claim{}, s.failed("claim a callback", err)
	}
	replayNew := replay == "" || replayRes.Error() == nil
	switch {
	case !replayNew:
		c.Verdict = Replayed
		if eventClaimed { // nobody held the event: give it back
			s.release(ctx, Claim{event: c.event, token: c.token})
		}
	case eventClaimed:
		c.Verdict = Claimed
	case old == deliveredMark:
		c.Verdict = AlreadyDelivered // the replay key stays: this request is used
	default:
		c.Verdict = InFlight
		if c.replay != "" { // WeChat's retry of this request must not be taken for a replay
			s.release(ctx, Claim{replay: c.replay, token: c.token})
		}
	}
	s.down.Store(false)
	if c.Verdict != Claimed {
		c.token = ""
	}
	return c, nil
}

func (s *redisStore) Delivered(ctx context.Context, c Claim) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	cmd := s.client.B().Set().Key(c.event).Value(deliveredMark).Px(s.opts.DeliveredTTL).Build()
	return s.failed("record a delivered event", s.client.Do(ctx, cmd).Error())
}

func (s *redisStore) Release(ctx context.Context, c Claim) error {
	if c.token == "" {
		return nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.release(ctx, c)
}

func (s *redisStore) Answered(ctx context.Context, c Claim) error {
	if c.token == "" {
		return nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	// The replay record was written by Claim with the replay TTL and stays; only the event
	// claim is given up.
	return s.release(ctx, Claim{event: c.event, token: c.token})
}

// release deletes c's event and replay records if they still hold c's token, in one round trip.
func (s *redisStore) release(ctx context.Context, c Claim) error {
	var cmds rueidis.Commands
	for _, key := range []string{c.event, c.replay} {
		if key != "" {
			cmds = append(cmds, s.client.B().Eval().Script(releaseScript).Numkeys(1).Key(key).Arg(c.token).Build())
		}
	}
	for _, r := range s.client.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return s.failed("release a callback claim", err)
		}
	}
	return nil
}

func (s *redisStore) Check(ctx context.Context) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.failed("ping", s.client.Do(ctx, s.client.B().Ping().Build()).Error())
}

func (s *redisStore) Stats() Stats {
	return Stats{Kind: KindRedis, Up: !s.down.Load(), Sessions: -1, Errors: s.errors.Load()}
}

func (s *redisStore) Close() error {
	close(s.stop)
	<-s.stopped
	s.client.Close()
	return nil
}
