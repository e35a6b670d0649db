package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/wxgate/wxgate/signer"
)

// signUsage is `wxgate sign -h`.
const signUsage = `Usage: wxgate sign KIND -key KEY [-uri PATH] -body BODY

Compute an xpay signature by hand, to compare with what an app or SDK produced. KIND is one of:
  pay-sig          HMAC-SHA256(AppKey, uri + "&" + body): the server APIs' pay_sig (needs -uri)
  client-pay-sig   HMAC-SHA256(AppKey, "requestVirtualPayment&" + signData): wx.requestVirtualPayment's paySig
  user             HMAC-SHA256(session_key, body): the user-state signature

Example: wxgate sign pay-sig -key env:APPKEY -uri /xpay/currency_pay -body @body.json
`

// runSign computes xpay signatures by hand, to compare with what an app or SDK produced.
func runSign(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, signUsage)
		return usageError{msg: "sign needs a kind: pay-sig, client-pay-sig or user"}
	}
	if isHelpArg(args[0]) {
		fmt.Fprint(stderr, signUsage)
		return flag.ErrHelp
	}
	kind := args[0]
	fs := newFlags("sign "+kind, stderr)
	key := fs.String("key", "", "AppKey (pay-sig, client-pay-sig) or session_key (user); env:NAME reads it from the environment")
	uri := fs.String("uri", "", "request path for pay-sig, e.g. /xpay/query_user_balance")
	body := fs.String("body", "", "exact body (or signData) bytes; @FILE reads a file")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	k, err := readArg(*key)
	if err != nil {
		return fmt.Errorf("-key: %w", err)
	}
	b, err := readArg(*body)
	if err != nil {
		return fmt.Errorf("-body: %w", err)
	}
	if k == "" {
		return usageError{msg: "-key is required"}
	}
	switch kind {
	case "pay-sig":
		if !strings.HasPrefix(*uri, "/") {
			return usageError{msg: "-uri must be the request path with its leading slash, e.g. /xpay/currency_pay"}
		}
		fmt.Fprintf(stdout, "%s\n", signer.NewXpayKey(k).AppendPaySig(nil, *uri, []byte(b)))
	case "client-pay-sig":
		fmt.Fprintf(stdout, "%s\n", signer.NewXpayKey(k).AppendClientPaySig(nil, []byte(b)))
	case "user":
		fmt.Fprintf(stdout, "%s\n", signer.AppendUserSignature(nil, k, []byte(b)))
	default:
		return usageError{msg: fmt.Sprintf("unknown signature kind %q: use pay-sig, client-pay-sig or user", kind)}
	}
	return nil
}

// readArg resolves env:NAME and @FILE arguments.
func readArg(v string) (string, error) {
	switch {
	case strings.HasPrefix(v, "env:"):
		s, ok := os.LookupEnv(strings.TrimPrefix(v, "env:"))
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", strings.TrimPrefix(v, "env:"))
		}
		return s, nil
	case strings.HasPrefix(v, "@"):
		b, err := os.ReadFile(strings.TrimPrefix(v, "@"))
		return string(b), err
	}
	return v, nil
}
