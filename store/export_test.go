package store

import (
	"errors"
	"testing"

	"github.com/wxgate/wxgate/internal/redistest"
)

// TestExportImportDiskToRedis: state moved from disk to Redis serves the same sessions and
// refuses the same replays; session keys travel only in an export with secrets.
func TestExportImportDiskToRedis(t *testing.T) {
	disk := openDiskT(t, t.TempDir(), Options{})
	defer disk.Close()
	if err := disk.PutSession(bg, "wxa", "o1", "key-1"); err != nil {
		t.Fatal(err)
	}
	c := mustClaim(t, disk, "r1", "ev1", Claimed)
	if err := disk.Delivered(bg, c); err != nil {
		t.Fatal(err)
	}
	mustClaim(t, disk, "r2", "ev2", Claimed) // in flight: not exported
	from, err := AsExporter(disk)
	if err != nil {
		t.Fatal(err)
	}
	collect := func(secrets bool) []Record {
		var recs []Record
		if err := from.Export(bg, secrets, func(r Record) error { recs = append(recs, r); return nil }); err != nil {
			t.Fatal(err)
		}
		return recs
	}
	withoutSecrets := collect(false)
	for _, r := range withoutSecrets {
		if r.Type == RecordSession || r.SessionKey != "" {
			t.Fatalf("an export without secrets holds %+v", r)
		}
	}
	if len(withoutSecrets) != 2 {
		t.Fatalf("export without secrets: %+v, want the replay and the delivered event", withoutSecrets)
	}
	recs := collect(true)
	if len(recs) != 3 {
		t.Fatalf("export: %+v", recs)
	}

	srv := redistest.Start(t)
	r := openRedisT(t, RedisOptions{URL: srv.URL(), Prefix: "t:"}, loadedOptions)
	to, err := AsExporter(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := to.Import(bg, recs); err != nil {
		t.Fatal(err)
	}
	mustSession(t, r, "wxa", "o1", "key-1")
	mustClaim(t, r, "r1", "ev1", Replayed)
	mustClaim(t, r, "r3", "ev1", AlreadyDelivered)
	mustClaim(t, r, "r2", "ev2", Claimed)

	// And back: Redis to a new disk store.
	var back []Record
	if err := to.Export(bg, true, func(rec Record) error { back = append(back, rec); return nil }); err != nil {
		t.Fatal(err)
	}
	disk2 := openDiskT(t, t.TempDir(), Options{})
	defer disk2.Close()
	d2, _ := AsExporter(disk2)
	if err := d2.Import(bg, back); err != nil {
		t.Fatal(err)
	}
	mustSession(t, disk2, "wxa", "o1", "key-1")
	mustClaim(t, disk2, "r3", "ev1", Replayed)
	mustClaim(t, disk2, "r4", "ev1", AlreadyDelivered)
	if n := disk2.Stats().Sessions; n != 1 {
		t.Fatalf("sessions after import: %d", n)
	}
	if _, err := AsExporter(OpenMemory(Options{})); !errors.Is(err, ErrNothingToExport) {
		t.Fatalf("memory exporter: %v", err)
	}
}
