package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/wxgate/wxgate/internal/buildinfo"
)

// version is set at build time with -ldflags "-X main.version=..."; it overrides the module
// version Go records. commit, set the same way (-X main.commit=...), is used only when the build
// recorded no VCS revision (a container build without .git). See internal/buildinfo.
var (
	version = "dev"
	commit  = ""
)

// build describes this binary: `wxgate version` and the start-up line print it.
func build() buildinfo.Info { return buildinfo.Read(version, commit) }

// usageError is a mistake in the command line; it exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `wxgate: WeChat virtual payment and WeChat Pay, signed and verified beside your backend.

Usage:
  wxgate demo                   run the whole system against the built-in emulator (no WeChat account)
  wxgate serve   -config FILE   run the gateway
  wxgate emulate -config FILE   run the WeChat emulator for the apps in FILE
  wxgate check   -config FILE   validate a config and print a summary with secrets masked
  wxgate store   export|import  move session keys and callback records between stores
  wxgate sign    KIND [flags]   compute an xpay signature by hand (KIND: pay-sig, client-pay-sig, user)
  wxgate verify-event [flags]   check a forwarded event's X-Wxgate-Signature by hand
  wxgate version                print the version, the commit and the Go version

Run "wxgate COMMAND -h" for a command's flags.
`

// run is the whole program behind main, testable: it returns instead of exiting.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{msg: "no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "emulate":
		return runEmulate(ctx, rest, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "check":
		return runCheck(rest, stdout, stderr)
	case "store":
		return runStore(ctx, rest, stdout, stderr)
	case "sign":
		return runSign(rest, stdout, stderr)
	case "verify-event":
		return runVerifyEvent(rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprint(stdout, build())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{msg: fmt.Sprintf("unknown command %q", cmd)}
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wxgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, turning flag mistakes into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return usageError{}
		}
		return usageError{msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
