package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/wxgate/wxgate/emulator"
)

// complaintStep is the demo's complaint: WeChat Pay (the emulator, asked through its control
// endpoint) sends COMPLAINT.CREATE, whose resource names no merchant; wxgate verifies the
// signature, decrypts the resource with the merchant's APIv3 key and forwards it to the app,
// the merchant in the callback URL being its owner.
func complaintStep(env *demoEnv, w *walker, mchID string) demoStep {
	return demoStep{"A user files a complaint: WeChat Pay notifies COMPLAINT.CREATE (no merchant id in it; the door's merchant and its keys own it)", func() error {
		body, err := json.Marshal(map[string]any{
			"kind": emulator.NoticeComplaint, "mchid": mchID, "url": env.callbackURL + "/callbacks/wechatpay/demo",
			"fields": map[string]any{"complaint_id": "2002018" + time.Now().Format("20060102150405") + "0001"},
		})
		if err != nil {
			return err
		}
		resp, answer, _, err := w.send("POST", env.emuAddr+"/_emulator/pay/notify", body)
		if err != nil {
			return err
		}
		fmt.Fprintf(w.out, "   -> WeChat Pay (emulator) POST /_emulator/pay/notify %s\n", body)
		fmt.Fprintf(w.out, "   <- %d %s\n", resp.StatusCode, oneLine(answer))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the emulator refused to send the complaint: HTTP %d", resp.StatusCode)
		}
		return w.expectEvent(env, emulator.EventComplaintCreate)
	}}
}
