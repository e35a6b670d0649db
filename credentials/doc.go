// Package credentials keeps the WeChat credentials that wxgate injects on behalf of legacy
// backends: one access_token per app (Tokens, fed by StableTokenClient) and one session_key per
// (app, openid) (Sessions).
//
// Both stores are deterministic: a value that was stored is readable immediately afterwards and
// stays until it expires or is explicitly replaced or evicted. Probabilistic caches such as
// ristretto are deliberately not used here, because they may drop an entry even after Wait().
//
// Errors produced by this package never contain an AppSecret, an access_token or a session_key.
package credentials
