package proxy

import (
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
)

// CodeWrongAppKind refuses a virtual-payment API or payment-params mode of the other app kind:
// /wxa/game/... and modes "goods"/"game" are for [[app]] kind = "minigame", /xpay/... and the
// short_series_* modes for mini programs.
const CodeWrongAppKind = "wxgate.wrong_app_kind"

// argSigMethod is the query parameter naming the user-signature hash on /wxa/game/ APIs; wxgate
// owns it there (policies.MiniGameSigMethod).
const argSigMethod = "sig_method"

// checkRouteKind refuses a mini-game virtual-payment API for a mini program and a mini-program
// one (/xpay/...) for a mini game: WeChat would answer either with an error that hides the cause.
func (a *appState) checkRouteKind(r policies.Route) *apiError {
	if r.MiniGame == a.minigame {
		return nil
	}
	if r.MiniGame {
		return newError(fasthttp.StatusBadRequest, CodeWrongAppKind,
			fmt.Sprintf(`%s is a mini-game virtual-payment API but app %q is a mini program; set kind = "minigame" on the [[app]] if it is a mini game`, r.Path, a.name))
	}
	return newError(fasthttp.StatusBadRequest, CodeWrongAppKind,
		fmt.Sprintf(`%s is a mini-program virtual-payment API but app %q has kind = "minigame"; mini games use /wxa/game/getbalance, /wxa/game/pay, /wxa/game/cancelpay, /wxa/game/present and /wxa/game/queryorderinfo`, r.Path, a.name))
}
