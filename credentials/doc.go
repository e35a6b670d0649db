// Package credentials keeps the WeChat credentials wxgate fetches itself: one access_token per
// app (Tokens, fed by StableTokenClient), the merchant keys and certificates of WeChat Pay
// (paykeys.go), and the one list of errcodes that mean "this access_token is stale" (stale.go).
// Session keys, which must survive restarts and be shared by several instances, live in package
// store.
//
// Tokens are per process by design: stable_token hands every instance the same token, so no
// instance invalidates another's. The token cache is deterministic: a token stored is readable at
// once and stays until it expires or is replaced.
//
// Errors produced by this package never contain an AppSecret, an access_token or a session_key.
package credentials
