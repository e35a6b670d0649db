// Command wxbench runs wxgate's end-to-end benchmark on this machine and writes the comparison
// (direct to the emulator, the bare pass-through proxy, wxgate, nginx) to a Markdown file:
//
//	go run ./bench/cmd/wxbench [-duration 5s] [-conns 32] [-out bench/RESULTS.md] [-scenarios xpay,v3,...]
//
// It stops every process it started before it exits, also on error or interrupt (Ctrl-C), and
// never runs longer than -timeout. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wxgate/wxgate/bench/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wxbench:", err)
		os.Exit(1)
	}
}

func run() error {
	opts := harness.Options{Log: os.Stderr}
	flag.DurationVar(&opts.Duration, "duration", 5*time.Second, "load time of each column of each main scenario")
	flag.IntVar(&opts.Conns, "conns", 32, "connections of the closed-loop load generator")
	flag.StringVar(&opts.Out, "out", "bench/RESULTS.md", "Markdown report to write")
	scenarios := flag.String("scenarios", strings.Join(harness.Scenarios, ","), "comma-separated scenarios to run")
	flag.DurationVar(&opts.GrowthDuration, "growth-duration", 2*time.Second, "load time of each cost-growth step")
	flag.DurationVar(&opts.CeilingDuration, "ceiling-duration", time.Second, "time of each crypto ceiling loop (a ceiling is the best of 3)")
	flag.StringVar(&opts.Nginx, "nginx", "", "nginx binary (default: nginx on PATH, else /usr/sbin/nginx)")
	flag.IntVar(&opts.MaxSessions, "max-sessions", 1_000_000, "largest stored-session-key step (steps 1k, 10k, ... up to it)")
	flag.IntVar(&opts.Notifications, "notifications", 0, "APIv3 notifications built before the callback run (an RSA signature each; default 8000 per second of -duration and round, built within 45 s)")
	flag.BoolVar(&opts.Keep, "keep", false, "keep the temporary folder (configs, keys, logs)")
	flag.IntVar(&opts.Rounds, "rounds", 1, "measure each comparison's columns this many times in turn (interleaved) and add the rounds up")
	flag.StringVar(&opts.SignPriority, "sign-priority", "", `[server] sign_priority of the generated wxgate configs: "low" (wxgate's default) or "normal" (sign on the request's goroutine)`)
	flag.IntVar(&opts.PacedRounds, "paced-rounds", 5, "rounds of the paced and open-loop runs (xpay at half of the peak, v3 overload); their latency targets read the median round")
	flag.StringVar(&opts.Profile, "profile", "", "write a CPU profile of each wxgate column (from wxgate's /debug/pprof) into this folder")
	timeout := flag.Duration("timeout", 20*time.Minute, "stop everything after this long")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if opts.Scenarios = strings.Split(*scenarios, ","); *scenarios == "" {
		opts.Scenarios = nil
	}
	if opts.Notifications == 0 {
		opts.Notifications = int(opts.Duration.Seconds()*float64(max(opts.Rounds, 1))*8000) + 500
	}
	if opts.Conns < 1 || opts.Duration <= 0 || opts.GrowthDuration <= 0 || opts.CeilingDuration <= 0 || opts.MaxSessions < 1000 || opts.PacedRounds < 1 {
		return errors.New("-conns, -duration, -growth-duration, -ceiling-duration and -paced-rounds must be positive and -max-sessions at least 1000")
	}
	opts.Command = "go run ./bench/cmd/wxbench " + strings.Join(os.Args[1:], " ")
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	opts.Root = root
	if opts.Out != "" && !filepath.IsAbs(opts.Out) {
		if opts.Out, err = filepath.Abs(opts.Out); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := harness.Run(ctx, opts); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", opts.Out)
	return nil
}

// moduleRoot returns the folder of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run wxbench inside the wxgate module (go run ./bench/cmd/wxbench)")
	}
	return filepath.Dir(mod), nil
}
