package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/store"
)

// openStore opens the store cfg names. It never falls back to another kind: a store that cannot
// be opened is an error naming the key or the file.
func openStore(cfg *policies.Config) (store.Store, error) {
	opts := proxy.StoreOptions(cfg, nil)
	st := cfg.Store
	switch st.Kind {
	case policies.StoreMemory:
		return store.OpenMemory(opts), nil
	case policies.StoreDisk:
		s, err := store.OpenDisk(st.Dir, opts)
		if err != nil {
			return nil, fmt.Errorf("store (kind = \"disk\", dir = %s): %w", st.Dir, err)
		}
		return s, nil
	case policies.StoreRedis:
		s, err := store.OpenRedis(redisOptions(st), opts)
		if err != nil {
			return nil, fmt.Errorf("store (kind = \"redis\"): %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("store.kind %q is not a store kind", st.Kind)
}

// redisOptions is the Redis store's options from the config's [store].
func redisOptions(st policies.Store) store.RedisOptions {
	ro := store.RedisOptions{URL: st.RedisURL.Value(), ClusterAddrs: st.RedisClusterAddrs, Prefix: st.Prefix, CacheTTL: st.CacheTTL, CAFile: st.RedisCAFile}
	if sn := st.RedisSentinel; sn != nil {
		ro.SentinelMaster, ro.SentinelAddrs, ro.SentinelPassword = sn.Master, sn.Addrs, sn.Password.Value()
	}
	return ro
}

const storeUsage = `Usage:
  wxgate store export -config FILE [-secrets] [-out FILE]   write the store's records as JSON lines
  wxgate store import -config FILE [-in FILE]               add JSON lines to the store

Export from the old config, import with the new one (e.g. disk to redis). Session keys are
exported only with -secrets: treat that file like a password file. A disk store is locked by
the wxgate that uses it: stop it first.
`

// runStore runs `wxgate store export|import`.
func runStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelpArg(args[0]) {
		fmt.Fprint(stderr, storeUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || (args[0] != "export" && args[0] != "import") {
		fmt.Fprint(stderr, storeUsage)
		return usageError{msg: "store needs export or import"}
	}
	sub := args[0]
	fs := newFlags("store "+sub, stderr)
	path := fs.String("config", "wxgate.toml", "config file naming the store")
	secrets := fs.Bool("secrets", false, "export: include session keys")
	out := fs.String("out", "-", "export: file to write (- for stdout)")
	in := fs.String("in", "-", "import: file to read (- for stdin)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := policies.Load(*path)
	if err != nil {
		return err
	}
	s, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	x, err := store.AsExporter(s)
	if err != nil {
		return err
	}
	if sub == "export" {
		return exportStore(ctx, x, *secrets, *out, stdout, stderr)
	}
	return importStore(ctx, x, *in, stderr)
}

func exportStore(ctx context.Context, x store.Exporter, secrets bool, out string, stdout, stderr io.Writer) error {
	w := stdout
	if out != "-" {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	counts := map[string]int{}
	err := x.Export(ctx, secrets, func(r store.Record) error {
		counts[r.Type]++
		return enc.Encode(r)
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(stderr, "exported %d sessions, %d replay records, %d delivered events\n", counts[store.RecordSession], counts[store.RecordReplay], counts[store.RecordDelivered])
	if !secrets {
		fmt.Fprintln(stderr, "session keys were left out: add -secrets to move logged-in users too")
	}
	return nil
}

// importBatch is how many records go to the store in one write.
const importBatch = 5000

func importStore(ctx context.Context, x store.Exporter, in string, stderr io.Writer) error {
	var r io.Reader = os.Stdin
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		r = f
	}
	dec := json.NewDecoder(bufio.NewReader(r))
	dec.DisallowUnknownFields()
	var batch []store.Record
	total, line := 0, 0
	flush := func() error {
		if err := x.Import(ctx, batch); err != nil {
			return fmt.Errorf("import (records %d-%d): %w", line-len(batch)+1, line, err)
		}
		total += len(batch)
		batch = batch[:0]
		return nil
	}
	for {
		var rec store.Record
		err := dec.Decode(&rec)
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			return fmt.Errorf("import: record %d is not a store record: %v (nothing after record %d was imported)", line, err, line-len(batch)-1)
		}
		batch = append(batch, rec)
		if len(batch) == importBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "imported %d records (expired ones skipped)\n", total)
	return nil
}
