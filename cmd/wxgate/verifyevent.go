package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/wxgate/wxgate/event"
)

// runVerifyEvent checks a forwarded event's X-Wxgate-Signature by hand (the same algorithm an
// app implements): exit 0 when valid.
func runVerifyEvent(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify-event", stderr)
	secret := fs.String("secret", "", "the [forward] secret; env:NAME reads it from the environment")
	header := fs.String("signature", "", "the X-Wxgate-Signature header value, t=<unix>,v1=<hex>")
	body := fs.String("body", "", "the exact request body; @FILE reads a file")
	tolerance := fs.Duration("tolerance", event.DefaultTolerance, "largest accepted age of the signature")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := readArg(*secret)
	if err != nil {
		return fmt.Errorf("-secret: %w", err)
	}
	b, err := readArg(*body)
	if err != nil {
		return fmt.Errorf("-body: %w", err)
	}
	if s == "" || *header == "" {
		return usageError{msg: "-secret and -signature are required"}
	}
	if err := event.Verify(s, *header, []byte(b), time.Now(), *tolerance); err != nil {
		return errors.New("invalid event: " + err.Error())
	}
	fmt.Fprintln(stdout, "valid")
	return nil
}
