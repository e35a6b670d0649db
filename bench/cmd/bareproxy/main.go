// Command bareproxy runs the benchmark's yardstick proxy (package bareproxy): it forwards every
// request to one upstream and signs nothing. With -refuse-beside-signers N it is the overload
// yardstick instead: every request is answered 503 at once while N low-priority threads sign
// RSA-2048 without pause. It prints "bareproxy listening on ADDR" once it accepts connections
// and runs until interrupted or terminated.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/bench/bareproxy"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := flag.String("upstream", "", "http(s)://host:port to forward to")
	caFile := flag.String("ca-file", "", "extra CA certificates (PEM) for an https upstream")
	signers := flag.Int("refuse-beside-signers", 0, "answer every request 503 while this many low-priority threads sign RSA-2048 (0: forward to -upstream)")
	nice := flag.Int("signer-nice", 5, "nice increment of the signing threads (wxgate's signing workers: 5)")
	procs := flag.Int("gomaxprocs", 0, "GOMAXPROCS to run with (0: leave it)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	var srv *fasthttp.Server
	if *signers > 0 {
		r, err := bareproxy.NewRefuser(*signers, *nice)
		if err != nil {
			return err
		}
		start := time.Now()
		r.Start()
		defer func() {
			r.Stop()
			fmt.Printf("bareproxy signed %d signatures in %v\n", r.Signed(), time.Since(start).Round(time.Millisecond))
		}()
		srv = r.Server()
	} else {
		p, err := bareproxy.New(bareproxy.Config{Upstream: *upstream, CAFile: *caFile})
		if err != nil {
			return err
		}
		srv = p.Server()
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Printf("bareproxy listening on %s\n", ln.Addr())
	select {
	case <-ctx.Done():
		return srv.Shutdown()
	case err := <-done:
		return err
	}
}
