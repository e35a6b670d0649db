package policies

// Mini-game virtual payment 2.0 ("pay_v2") server APIs on api.weixin.qq.com/wxa/game/
// (docs/protocol/xpay.md, "Mini-game virtual payment"). Every one takes access_token, pay_sig
// (AppKey over uri + "&" + body), the user-state signature (session_key over the body) and
// sig_method=hmac_sha256 in the query: the official page of each lists all four as required.
var minigameUserSigned = []string{
	"/wxa/game/getbalance",     // pay_v2.getBalance: game-coin balance
	"/wxa/game/pay",            // pay_v2.pay: deduct game coins
	"/wxa/game/cancelpay",      // pay_v2.cancelPay: return deducted coins
	"/wxa/game/present",        // pay_v2.present: give game coins
	"/wxa/game/queryorderinfo", // pay_v2.queryOrder: coin or item order state
}

// MiniGameSigMethod is the sig_method every /wxa/game/ virtual-payment API requires: the only
// hash WeChat accepts for the user-state signature there.
const MiniGameSigMethod = "hmac_sha256"

// MiniGamePaths returns the mini-game virtual-payment API paths, for summaries and tests.
func MiniGamePaths() []string { return append([]string(nil), minigameUserSigned...) }

func addMinigameRoutes(m map[string]Route) {
	for _, p := range minigameUserSigned {
		m[p] = Route{Path: p, Kind: RouteXpay, UserSignature: true, MiniGame: true}
	}
}
