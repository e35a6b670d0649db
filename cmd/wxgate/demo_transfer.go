package main

import (
	"fmt"
	"net/http"

	"github.com/wxgate/wxgate/proxy"
)

// transferDemoStep is the demo's merchant transfer (商家转账): the app sends the payee's real
// name in clear and names it in X-Wxgate-Encrypt; wxgate encrypts it with WeChat Pay's key (RSA-
// OAEP), sets Wechatpay-Serial and signs; the emulator, as WeChat, decrypts it. The query then
// reads the name back, decrypted by wxgate with the merchant key (X-Wxgate-Decrypt).
func transferDemoStep(env *demoEnv, w *walker, openid func() string) demoStep {
	return demoStep{
		title: "Merchant transfer with an encrypted user_name: POST /v3/fund-app/mch-transfer/transfer-bills with X-Wxgate-Encrypt: user_name, then its query with X-Wxgate-Decrypt: user_name",
		run: func() error {
			m := env.cfg.Merchants[0]
			no := "tr" + randomHex(6)
			const name = "张三"
			body := map[string]any{"appid": m.AppID, "out_bill_no": no, "transfer_scene_id": "1000", "openid": openid(),
				"user_name": name, "transfer_amount": 100, "transfer_remark": "新会员奖励",
				"transfer_scene_report_infos": []map[string]string{{"info_type": "活动名称", "info_content": "新会员有礼"}}}
			var created struct{ State string }
			status, err := w.doWithHeaders("POST", "/v3/fund-app/mch-transfer/transfer-bills", body, &created, proxy.HeaderEncrypt, "user_name")
			if err != nil {
				return err
			}
			if err := expect(status == http.StatusOK && created.State == "WAIT_USER_CONFIRM", "200 WAIT_USER_CONFIRM, got %d %q", status, created.State); err != nil {
				return err
			}
			got, _ := env.emu.TransferUserName(m.MchID, no)
			fmt.Fprintf(w.out, "   WeChat Pay decrypted user_name with its private key: %q\n", got)
			if err := expect(got == name, "WeChat to decrypt %q, got %q", name, got); err != nil {
				return err
			}
			var queried struct {
				UserName string `json:"user_name"`
			}
			status, err = w.doWithHeaders("GET", "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/"+no, nil, &queried, proxy.HeaderDecrypt, "user_name")
			if err != nil {
				return err
			}
			return expect(status == http.StatusOK && queried.UserName == name, "the query to return user_name %q decrypted, got %d %q", name, status, queried.UserName)
		},
	}
}
