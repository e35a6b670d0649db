package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/signer"
)

// pushNotifications is how many message pushes are built per second of -duration (building one
// costs a SHA-1 and an AES-CBC encryption, microseconds).
const pushNotifications = 15000

// scenarioPush compares safe-mode message pushes (xpay_coin_pay_notify, JSON).
func (h *harness) scenarioPush(ctx context.Context) error {
	emu, err := h.notifier()
	if err != nil {
		return err
	}
	a := h.main.apps[0]
	path := pathPushCallback + a.Name
	n := int(h.opts.Duration.Seconds()*float64(max(h.opts.Rounds, 1))*pushNotifications) + 1000
	h.logf("  building %d message pushes ...\n", n)
	pool, took, err := buildPushPool(emu, a, n)
	if err != nil {
		return err
	}
	ceiling, err := h.pushCeiling(pool.items[0])
	if err != nil {
		return err
	}
	sec := &section{
		title: "4. Message push, safe mode (xpay_coin_pay_notify)",
		intro: fmt.Sprintf("POST %s?signature=...&msg_signature=...&encrypt_type=aes with genuine safe-mode JSON pushes built by the emulator "+
			"package (%d built in %v, each with its own nonce and event). wxgate checks signature and msg_signature (SHA-1), the timestamp and "+
			"nonce, decrypts (AES-256-CBC), checks the appid, forwards the event to the harness app and answers {\"ErrCode\":0}. "+
			"bare and nginx pass the raw push to the app; direct is the app checking msg_signature and decrypting by itself.",
			path, len(pool.items), took.Round(time.Millisecond)),
	}
	h.runCallbackColumns(ctx, sec, pool, path, pathDirectPush, h.main.cbAddr)
	sec.notes = append(sec.notes, fmt.Sprintf("msg_signature + AES-CBC-decrypt ceiling of this machine: %.0f/s (%d goroutines, best of %d runs of %v)", ceiling, gomaxprocs(), ceilingRuns, h.opts.CeilingDuration))
	for _, c := range ceilingChecks("push", sec.find(colWxgate), ceiling, 0) {
		sec.notes = append(sec.notes, c.what+": "+c.value2()+" (no target; the crypto is microseconds, HTTP and the forward dominate)")
	}
	h.report.add(sec)
	return nil
}

// buildPushPool builds n safe-mode xpay_coin_pay_notify pushes of app a to its callback path,
// each with its own nonce and event, within 30 s; it returns how long building took.
func buildPushPool(emu *emulator.Emulator, a appCreds, n int) (*notificationPool, time.Duration, error) {
	path := pathPushCallback + a.Name
	return buildPool(n, 30*time.Second, func(i int) (notification, error) {
		msg := fmt.Appendf(nil, `{"ToUserName":"gh_0123456789ab","FromUserName":"oWxPay0000000000000000000000","CreateTime":%d,`+
			`"MsgType":"event","Event":"%s","OpenId":"oBench000000000000000000000","OutTradeNo":"push%s%d","Env":0,`+
			`"WeChatPayInfo":{"MchOrderNo":"m%d","TransactionId":"4200000000%010d","PaidTime":%d},"CoinInfo":{"Quantity":10,"OrigPrice":100,"ActualPrice":100,"Attach":""}}`,
			time.Now().Unix(), emulator.EventCoinPay, randomHex(3), i, i, i, time.Now().Unix())
		nt, err := emu.BuildPushMessage(a.AppID, msg, path, emulator.NotifyOptions{})
		if err != nil {
			return notification{}, err
		}
		return notification{path: nt.URL, header: nt.Header, body: nt.Body}, nil
	})
}

// pushCeiling measures msg_signature checks + decryptions per second on a real push.
func (h *harness) pushCeiling(n notification) (float64, error) {
	a := h.main.apps[0]
	c, err := signer.NewPushCrypter(a.AESKey)
	if err != nil {
		return 0, err
	}
	var body struct{ Encrypt string }
	if err := jsonUnmarshal(n.body, &body); err != nil {
		return 0, err
	}
	q, err := queryOf(n.path)
	if err != nil {
		return 0, err
	}
	ts, nonce, want := q.Get("timestamp"), q.Get("nonce"), q.Get("msg_signature")
	rate := loopCeiling(h.opts.CeilingDuration, func() error {
		if signer.PushSignature(a.PushToken, ts, nonce, body.Encrypt) != want {
			return errRefused
		}
		_, _, err := c.Decrypt(body.Encrypt)
		return err
	})
	if rate == 0 {
		return 0, fmt.Errorf("the push ceiling loop failed to open a push")
	}
	return rate, nil
}
