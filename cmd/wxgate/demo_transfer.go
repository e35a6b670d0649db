package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/proxy"
)

// transferDemoStep is the demo's merchant transfer (商家转账): the app sends the payee's real
// name in clear and names it in X-Wxgate-Encrypt; wxgate encrypts it with WeChat Pay's key (RSA-
// OAEP), sets Wechatpay-Serial and signs; the emulator, as WeChat, decrypts it. The query then
// reads the name back, decrypted by wxgate with the merchant key (X-Wxgate-Decrypt).
func transferDemoStep(env *demoEnv, w *walker, openid func() string, tr *demoTransfer) demoStep {
	return demoStep{
		title: "Merchant transfer with an encrypted user_name: POST /v3/fund-app/mch-transfer/transfer-bills with X-Wxgate-Encrypt: user_name, then its query with X-Wxgate-Decrypt: user_name",
		run: func() error {
			m := env.cfg.Merchants[0]
			no := "tr" + randomHex(6)
			const name = "张三"
			body := map[string]any{"appid": m.AppID, "out_bill_no": no, "transfer_scene_id": "1000", "openid": openid(),
				"user_name": name, "transfer_amount": 100, "transfer_remark": "新会员奖励",
				"transfer_scene_report_infos": []map[string]string{{"info_type": "活动名称", "info_content": "新会员有礼"}}}
			var created struct {
				State       string
				BillNo      string `json:"transfer_bill_no"`
				PackageInfo string `json:"package_info"`
			}
			status, err := w.doWithHeaders("POST", "/v3/fund-app/mch-transfer/transfer-bills", body, &created, proxy.HeaderEncrypt, "user_name")
			if err != nil {
				return err
			}
			if err := expect(status == http.StatusOK && created.State == "WAIT_USER_CONFIRM", "200 WAIT_USER_CONFIRM, got %d %q", status, created.State); err != nil {
				return err
			}
			*tr = demoTransfer{outBillNo: no, billNo: created.BillNo, pkg: created.PackageInfo}
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

// demoTransfer is the transfer the demo made, for its receipt step.
type demoTransfer struct{ outBillNo, billNo, pkg string }

// receiptDemoStep is the transfer's e-receipt (电子回单): the user confirms the transfer in the
// emulated client (wx.requestMerchantTransfer), the app applies for the receipt and queries it
// (signed answers), then downloads the file, which WeChat Pay serves unsigned: wxgate marks it
// X-Wxgate-Unsigned and the app checks its SHA-256 against the signed hash_value.
func receiptDemoStep(env *demoEnv, w *walker, tr *demoTransfer) demoStep {
	return demoStep{
		title: "The payee confirms (wx.requestMerchantTransfer); its e-receipt: apply, query, then GET /v3/transferdownload/signfile (unsigned, marked; SHA-256 checked)",
		run: func() error {
			m := env.cfg.Merchants[0]
			msg, ok := env.emu.RequestMerchantTransfer(emulator.MerchantTransfer{MchID: m.MchID, AppID: m.AppID, Package: tr.pkg})
			fmt.Fprintf(w.out, "   -> wx.requestMerchantTransfer({mchId, appId, package}) in the emulated client\n   <- %s\n", msg)
			if !ok {
				return fmt.Errorf("the client refused the confirmation: %s", msg)
			}
			var applied struct{ State string }
			if err := w.call("POST", "/v3/fund-app/mch-transfer/elecsign/out-bill-no", map[string]any{"out_bill_no": tr.outBillNo}, &applied); err != nil {
				return err
			}
			var receipt struct {
				State       string
				HashValue   string `json:"hash_value"`
				DownloadURL string `json:"download_url"`
			}
			if err := w.call("GET", "/v3/fund-app/mch-transfer/elecsign/transfer-bill-no/"+tr.billNo, nil, &receipt); err != nil {
				return err
			}
			u, err := url.Parse(receipt.DownloadURL)
			if err != nil || receipt.State != "FINISHED" {
				return fmt.Errorf("expected a FINISHED receipt with a download_url, got %q %q", receipt.State, receipt.DownloadURL)
			}
			status, file, h, err := w.exchange("GET", u.RequestURI(), "", nil, "")
			if err != nil {
				return err
			}
			sum := sha256.Sum256(file)
			return expect(status == http.StatusOK && h.Get(proxy.HeaderUnsigned) == "true" && strings.EqualFold(hex.EncodeToString(sum[:]), receipt.HashValue),
				"the receipt marked %s: true with the SHA-256 %s, got %d %q %x", proxy.HeaderUnsigned, receipt.HashValue, status, h.Get(proxy.HeaderUnsigned), sum)
		},
	}
}
