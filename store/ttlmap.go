package store

// ttlMap maps keys to values until each key's expiry, and holds at most max keys: past it the
// oldest go first. It is not safe for concurrent use; its owner holds a lock.
type ttlMap struct {
	max   int
	m     map[string]ttlEntry
	order []ttlOrder // insertion order, for expiry and eviction
	head  int        // first live index in order
}

type ttlEntry struct {
	val string
	exp int64 // Unix ns
}

type ttlOrder struct {
	key string
	exp int64
}

func newTTLMap(maxEntries int) *ttlMap {
	return &ttlMap{max: maxEntries, m: make(map[string]ttlEntry)}
}

// get returns key's value unless it is absent or expired at now.
func (t *ttlMap) get(key string, now int64) (string, bool) {
	e, ok := t.m[key]
	if !ok || now >= e.exp {
		return "", false
	}
	return e.val, true
}

// set stores key = val until exp, then drops what expired by now and, past max, the oldest.
func (t *ttlMap) set(key, val string, exp, now int64) {
	t.m[key] = ttlEntry{val: val, exp: exp}
	t.order = append(t.order, ttlOrder{key: key, exp: exp})
	t.sweep(now)
}

// del forgets key.
func (t *ttlMap) del(key string) { delete(t.m, key) }

// sweep drops the expired entries at the front of the insertion order and, past max, the
// oldest ones.
func (t *ttlMap) sweep(now int64) {
	for t.head < len(t.order) {
		o := t.order[t.head]
		e, live := t.m[o.key]
		current := live && e.exp == o.exp // not set again since
		if current && now < o.exp && len(t.m) <= t.max {
			break
		}
		if current {
			delete(t.m, o.key)
		}
		t.order[t.head] = ttlOrder{}
		t.head++
	}
	if t.head > 1024 && t.head*2 > len(t.order) {
		t.order = append(t.order[:0], t.order[t.head:]...)
		t.head = 0
	}
}
