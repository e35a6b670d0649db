package main

import (
	"context"
	"errors"
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

Run "wxgate COMMAND -h" for a command's flags. Help goes to standard error and exits 0.
`

// run is the whole program behind main, testable: it returns instead of exiting. A command's -h
// prints its usage to stderr and returns nil.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// dispatch runs the command args name.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
		fmt.Fprint(stderr, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{msg: fmt.Sprintf("unknown command %q", cmd)}
}

// commandHelp is the usage text above each command's flags, by the name given to newFlags.
var commandHelp = map[string]string{
	"serve": `Usage: wxgate serve [-config FILE]

Run the gateway: the app listener (signing proxy), the callback listener and the admin listener
of the config. SIGTERM or SIGINT drains and stops it.
`,
	"emulate": `Usage: wxgate emulate [-config FILE] [flags]

Run the WeChat emulator (api.weixin.qq.com over HTTP, api.mch.weixin.qq.com over HTTPS) for the
apps and merchants of FILE, as WeChat knows them. Login codes are test:<user> (test:<user>:<nonce>
logs the same user in again). Relative paths (-out, -pay-key) start from the config file's folder.
Its CA and WeChat Pay key are kept in -out and reused on the next start. See docs/emulator.md.
`,
	"demo": `Usage: wxgate demo

Start the emulator and wxgate on free loopback ports and walk every flow as an app would
(no WeChat account needed). Exits 0 only if every step succeeded.
`,
	"check": `Usage: wxgate check [-config FILE] [-routes]

Validate a config and print what wxgate would run with; secrets are shown only by their source.
Every problem is reported at once, placeholder values (replace-with-...) included.
`,
	"verify-event": `Usage: wxgate verify-event -secret S -signature HEADER -body BODY

Check a forwarded event's X-Wxgate-Signature by hand, as an app does; prints "valid".
`,
	"store export": storeUsage,
	"store import": storeUsage,
}

func init() {
	for _, kind := range []string{"pay-sig", "client-pay-sig", "user"} {
		commandHelp["sign "+kind] = signUsage
	}
}

// newFlags returns a flag set that reports errors instead of exiting; its usage (-h) prints the
// command's help from commandHelp and its flags.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wxgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		if help, ok := commandHelp[name]; ok {
			fmt.Fprint(fs.Output(), help)
		} else {
			fmt.Fprintf(fs.Output(), "Usage: wxgate %s [flags]\n", name)
		}
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(fs.Output(), "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args, turning flag mistakes into usage errors. -h returns flag.ErrHelp after
// printing the usage, which run turns into success.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		return usageError{msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// isHelpArg reports whether a is one of the help flags.
func isHelpArg(a string) bool {
	switch a {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}
