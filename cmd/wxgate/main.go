// Command wxgate is a sidecar that signs WeChat virtual-payment and WeChat Pay calls for the backend
// beside it, verifies WeChat's callbacks, and ships a local WeChat emulator.
//
//	wxgate demo                       the whole system against the built-in emulator
//	wxgate serve   -config FILE       run the gateway
//	wxgate emulate -config FILE       run the WeChat emulator for the apps in FILE
//	wxgate check   -config FILE       validate a config and print a summary (secrets masked)
//	wxgate sign    ...                compute xpay signatures by hand, for debugging
//	wxgate verify-event ...           check a forwarded event's signature by hand
//	wxgate version
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue usageError
		if !errors.As(err, &ue) || ue.msg != "" {
			fmt.Fprintln(os.Stderr, "wxgate:", err)
		}
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
