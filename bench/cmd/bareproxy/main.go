// Command bareproxy runs the benchmark's yardstick proxy (package bareproxy): it forwards every
// request to one upstream and signs nothing. It prints "bareproxy listening on ADDR" once it
// accepts connections and runs until interrupted or terminated.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

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
	flag.Parse()
	p, err := bareproxy.New(bareproxy.Config{Upstream: *upstream, CAFile: *caFile})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := p.Server()
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
