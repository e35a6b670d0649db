// Package proxy is wxgate's HTTP side: three fasthttp listeners and what each serves. Its files
// come in groups named by their prefix:
//
//   - server*, routing.go, admin.go, errors.go, metrics.go, reqlog.go, gateway.go: the listeners
//     and their limits (server.go), accepting through descriptor exhaustion (server_listener.go),
//     the fasthttp logger that never writes request bytes and the rate limit of repeated
//     warnings (server_log.go), which handler serves which path (routing.go), /healthz, /readyz
//     and /metrics (admin.go, metrics.go, with the WeChat Pay API names of payapi.go), request
//     ids, the access log and the refusal lines (reqlog.go), the one place an error becomes an
//     HTTP answer (errors.go), and the Gateway built from a validated config (gateway.go,
//     merchant.go).
//   - outbound_*: the signing proxy, app -> WeChat: access_token, xpay pay_sig and user
//     signature (outbound_weixin.go, outbound_usersig.go, outbound_code2session.go), WeChat
//     Pay APIv3 and APIv2 (outbound_v3*.go, outbound_v2*.go: the APIv2 families of
//     policies/routes_v2.go and the sandbox key), the pooled upstream clients; APIv3
//     sensitive fields: X-Wxgate-Encrypt/-Decrypt and their field paths (outbound_sensitive.go,
//     sensitive_paths.go); APIv3 media uploads signed over their meta part, the upload body
//     limit and the unsigned-download route table (outbound_media.go).
//   - helper_*: the /wxgate/* endpoints on the app listener (payment parameters, session keys,
//     sensitive-field encrypt and decrypt, the papay contract-page URL).
//   - callback_*: the callback door, WeChat -> app: verify, decrypt and de-duplicate each
//     notification (callback_v3.go, callback_v2.go, callback_push.go), read bodies within the
//     limits (callback_body.go), and forward the event to the app, acknowledging WeChat only
//     once the app accepted it.
//
// RSA admission and scheduling live in internal/signing, JSON scanning in internal/jsonscan, the
// crypto in signer, the config in policies. proxy must never import cmd, emulator or bench.
package proxy
