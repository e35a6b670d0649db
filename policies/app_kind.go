package policies

// App kinds ([[app]] kind).
const (
	// AppKindMiniProgram is a mini program (小程序): virtual payment through /xpay/... and
	// wx.requestVirtualPayment.
	AppKindMiniProgram = "miniprogram"
	// AppKindMiniGame is a mini game (小游戏): virtual payment 2.0 through /wxa/game/...,
	// wx.requestMidasPaymentGameItem and wx.requestMidasPayment.
	AppKindMiniGame = "minigame"
)

// IsMiniGame reports whether the app is a mini game.
func (a *App) IsMiniGame() bool { return a.Kind == AppKindMiniGame }

// validateKind checks [[app]] kind (already defaulted to "miniprogram").
func (a *App) validateKind(v *validator, key string) {
	switch a.Kind {
	case AppKindMiniProgram, AppKindMiniGame:
	default:
		v.add(key+".kind", `must be "miniprogram" (the default) or "minigame", got %q`, a.Kind)
	}
}
