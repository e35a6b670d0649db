package proxy

import (
	"fmt"
	"strings"

	"github.com/wxgate/wxgate/internal/jsonscan"
)

// Mini-game pay events (docs/protocol/xpay.md, "Mini-game virtual payment"): on top of the
// message-push signature, WeChat signs their MiniGame.Payload (a JSON text) with the AppKey of
// the payload's Env: PayEventSig = HMAC-SHA256(AppKey, Event + "&" + Payload). wxgate checks it
// before forwarding, so the app gets only events the AppKey vouches for.

// miniGamePayEvents must carry a PayEventSig; another event whose MiniGame object has one is
// checked too.
var miniGamePayEvents = map[string]bool{
	"minigame_coin_deliver_completed":                 true, // 游戏币发货完成
	"minigame_pay_refund_succ_notify":                 true, // 退款成功
	"minigame_recharge_center_coin_deliver_completed": true, // 充值中心发货完成
	"minigame_h5_goods_deliver_notify":                true, // 道具直购（商城）发货
	"minigame_game_pay_goods_deliver_notify":          true, // 道具直购（游戏内）发货
	"minigame_deliver_h5_pay_products":                true, // the name the official goods example uses
}

var (
	payEventSigMembers = []string{"Payload", "PayEventSig"}
	payloadEnvMember   = []string{"Env"}
)

// checkPayEvent verifies the PayEventSig of a mini-game pay event whose message's MiniGame member
// is miniGame (nil when absent; readPushFields finds it as the app's parser would); it returns
// why the event is refused, or "". Whether a signature is required is decided on the event name
// trimmed and in lower case, so that no spelling an app may normalise skips it; the signature
// itself covers the name as sent.
func (a *appState) checkPayEvent(event string, miniGame []byte) string {
	norm := strings.ToLower(strings.TrimSpace(event))
	required := miniGamePayEvents[norm]
	if miniGame == nil {
		if required {
			return fmt.Sprintf("%s has no MiniGame object to verify", event)
		}
		return "" // not a mini-game pay event: nothing more to check, nothing allocated
	}
	var f [2][]byte // miniGame is valid JSON: readPushFields checked the whole message
	if err := jsonscan.UniqueTopFields(miniGame, payEventSigMembers, f[:]); err != nil {
		return "MiniGame: " + err.Error()
	}
	if f[1] == nil && !required {
		return ""
	}
	payload, ok1 := jsonscan.StringValue(f[0])
	sig, ok2 := jsonscan.StringValue(f[1])
	if !ok1 || !ok2 || payload == "" || sig == "" {
		return fmt.Sprintf("%s needs MiniGame.Payload and MiniGame.PayEventSig strings", event)
	}
	var env [1][]byte
	if err := jsonscan.UniqueTopFields([]byte(payload), payloadEnvMember, env[:]); err != nil {
		return "MiniGame.Payload is not a JSON object: " + err.Error()
	}
	n, ok := jsonscan.SmallInt(env[0])
	if !ok || (n != 0 && n != 1) {
		return "MiniGame.Payload has no Env 0 or 1 to choose the AppKey with"
	}
	key, aerr := a.xpayKey(n)
	if aerr != nil {
		return "cannot verify PayEventSig: " + aerr.Message
	}
	if !key.VerifyPayEventSig([]byte(sig), event, []byte(payload)) {
		return fmt.Sprintf("PayEventSig mismatch: not HMAC-SHA256 of %s&Payload under the app's env-%d AppKey", event, n)
	}
	return ""
}
