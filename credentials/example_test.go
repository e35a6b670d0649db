package credentials_test

import (
	"fmt"

	"github.com/wxgate/wxgate/credentials"
)

func ExampleNewTokens() {
	client := &credentials.StableTokenClient{AppID: "wx0123456789abcdef", Secret: "APPSECRET"}
	tokens := credentials.NewTokens(client.Fetch, credentials.TokenOptions{})

	token, err := tokens.Get()
	if err != nil {
		fmt.Println("no access_token:", err) // never contains the secret
		return
	}
	// ... call WeChat with token; if it answers 40001, 40014 or 42001:
	if credentials.TokenRejected(40001) {
		token, err = tokens.Stale(token)
	}
	_, _ = token, err
}
