package proxy_test

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/signer"
)

// genuineResource is a transaction for merchant pk.
const genuineResource = `{"mchid":"1900000001","appid":"wx00000000000000a1","out_trade_no":"tamper-1","transaction_id":"4200","trade_state":"SUCCESS","amount":{"total":1}}`

// TestV3CallbackTamperMatrix sends forged variants of a genuine APIv3 notification: every one is
// refused and none reaches the app; the genuine one then passes.
func TestV3CallbackTamperMatrix(t *testing.T) {
	e := startEnv(t, nil)
	url := e.callbackURL + "/callbacks/wechatpay/pk"
	build := func(opts emulator.NotifyOptions, resource string) emulator.Notification {
		n, err := e.emu.BuildV3Notification("1900000001", "TRANSACTION.SUCCESS", []byte(resource), url, opts)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	type variant struct {
		name string
		n    emulator.Notification
	}
	var vs []variant
	genuine := build(emulator.NotifyOptions{}, genuineResource)
	// Every byte region of the body: flip one byte in each 1/24th.
	for i := 0; i < 24; i++ {
		n := clone(genuine)
		pos := i * len(n.Body) / 24
		n.Body[pos] ^= 0x01
		vs = append(vs, variant{fmt.Sprintf("body byte %d", pos), n})
	}
	for _, h := range []string{"Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"} {
		changed := clone(genuine)
		v := changed.Header[h]
		switch h {
		case "Wechatpay-Timestamp":
			ts, _ := strconv.ParseInt(v, 10, 64)
			v = strconv.FormatInt(ts+1, 10)
		case "Wechatpay-Signature":
			v = "A" + v[1:]
			if v == changed.Header[h] {
				v = "B" + v[1:]
			}
		default:
			v = v[:len(v)-1] + "0"
			if v == changed.Header[h] {
				v = v[:len(v)-1] + "1"
			}
		}
		changed.Header[h] = v
		vs = append(vs, variant{"header " + h + " changed", changed})
		missing := clone(genuine)
		delete(missing.Header, h)
		vs = append(vs, variant{"header " + h + " missing", missing})
	}
	vs = append(vs,
		variant{"foreign key", build(emulator.NotifyOptions{ForeignKey: true}, genuineResource)},
		variant{"unknown serial", build(emulator.NotifyOptions{Serial: "0123456789ABCDEF0123456789ABCDEF01234567"}, genuineResource)},
		variant{"old timestamp", build(emulator.NotifyOptions{Timestamp: time.Now().Add(-6 * time.Minute)}, genuineResource)},
		variant{"future timestamp", build(emulator.NotifyOptions{Timestamp: time.Now().Add(6 * time.Minute)}, genuineResource)},
		variant{"SIGNTEST probe", build(emulator.NotifyOptions{SignTest: true}, genuineResource)},
		variant{"another merchant's order", build(emulator.NotifyOptions{}, strings.Replace(genuineResource, "1900000001", "1900000002", 1))},
		variant{"another app's order", build(emulator.NotifyOptions{}, strings.Replace(genuineResource, "wx00000000000000a1", "wx00000000000000b2", 1))},
	)
	wrongDoor := clone(genuine)
	wrongDoor.URL = e.callbackURL + "/callbacks/wechatpay/certs" // signed for pk, sent to certs
	vs = append(vs, variant{"sent to another merchant's door", wrongDoor})
	for _, v := range vs {
		acked, status, body, err := e.emu.Deliver(v.n)
		if acked || err != nil || status < 400 || status > 499 {
			t.Errorf("%s: acked %v, status %d %s %v; want a 4xx refusal", v.name, acked, status, body, err)
		}
	}
	if evs, _, _ := e.recv.snapshot(); len(evs) != 0 {
		t.Fatalf("forged notifications reached the app: %+v", evs)
	}
	if acked, status, body, _ := e.emu.Deliver(genuine); !acked {
		t.Fatalf("the genuine notification was refused: %d %s", status, body)
	}
	if acked, status, _, _ := e.emu.Deliver(genuine); acked || status != 401 {
		t.Fatalf("replay: acked %v status %d, want 401", acked, status)
	}
	if evs := e.recv.waitEvents(1, waitTime); len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
}

// TestPushCallbackTamperMatrix does the same for safe-mode message pushes.
func TestPushCallbackTamperMatrix(t *testing.T) {
	e := startEnv(t, nil)
	msg := []byte(fmt.Sprintf(`{"ToUserName":"gh_shop","FromUserName":"sys","CreateTime":%d,"MsgType":"event","Event":"xpay_coin_pay_notify","OpenId":"o1","OutTradeNo":"t1"}`, time.Now().Unix()))
	genuine := safePushXML(t, e, "shop", "wx00000000000000a1", msg)
	var vs []struct {
		name string
		n    emulator.Notification
	}
	add := func(name string, n emulator.Notification) {
		vs = append(vs, struct {
			name string
			n    emulator.Notification
		}{name, n})
	}
	for i := 0; i < 16; i++ {
		n := clone(genuine)
		pos := len("<xml><ToUserName><![CDATA[gh_shop]]></ToUserName><Encrypt><![CDATA[") + i*5
		n.Body[pos] ^= 0x01
		add(fmt.Sprintf("Encrypt byte %d", pos), n)
	}
	for _, param := range []string{"msg_signature", "timestamp", "nonce"} {
		n := clone(genuine)
		n.URL = strings.Replace(n.URL, param+"=", param+"=1", 1)
		add("query "+param+" changed", n)
	}
	plain := clone(genuine)
	plain.URL = strings.Replace(plain.URL, "encrypt_type=aes", "encrypt_type=raw", 1)
	add("downgraded to plaintext", plain)
	add("another app's message", safePushXML(t, e, "shop", "wx00000000000000b2", msg))
	old := safePushXMLAt(t, e, msg, time.Now().Add(-10*time.Minute))
	add("old timestamp", old)
	foreign, err := e.emu.BuildPushMessage("wx00000000000000a1", msg, e.callbackURL+"/callbacks/message/shop", emulator.NotifyOptions{ForeignKey: true})
	if err != nil {
		t.Fatal(err)
	}
	add("foreign token", foreign)
	for _, v := range vs {
		acked, status, body, _ := e.emu.Deliver(v.n)
		if acked || status < 400 || status > 499 {
			t.Errorf("%s: acked %v status %d %s; want a 4xx refusal", v.name, acked, status, body)
		}
	}
	if evs, _, _ := e.recv.snapshot(); len(evs) != 0 {
		t.Fatalf("forged pushes reached the app: %+v", evs)
	}
	if acked, status, body, _ := e.emu.Deliver(genuine); !acked {
		t.Fatalf("genuine push refused: %d %s", status, body)
	}
	if acked, _, _, _ := e.emu.Deliver(genuine); acked {
		t.Fatal("replayed push acknowledged")
	}
	e.recv.waitEvents(1, waitTime)
}

// safePushXMLAt builds a safe-mode push for shop signed at ts.
func safePushXMLAt(t *testing.T, e *testEnv, msg []byte, ts time.Time) emulator.Notification {
	n := safePushXML(t, e, "shop", "wx00000000000000a1", msg)
	c, _ := signer.NewPushCrypter("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
	enc := c.Encrypt([16]byte{9}, msg, "wx00000000000000a1")
	sec := fmt.Sprint(ts.Unix())
	n.URL = e.callbackURL + "/callbacks/message/shop?timestamp=" + sec + "&nonce=old1&encrypt_type=aes&signature=" + signer.PushSignature("shop-push-token", sec, "old1") +
		"&msg_signature=" + signer.PushSignature("shop-push-token", sec, "old1", enc)
	n.Body = []byte("<xml><ToUserName><![CDATA[gh_shop]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")
	return n
}

// TestMalformedCallbacks: garbage at every callback door gets a 4xx and never crashes.
func TestMalformedCallbacks(t *testing.T) {
	e := startEnv(t, nil)
	bodies := []string{"", "{", "null", "[]", `{"resource":{}}`, "<xml>", "<xml><a>1</a></xml>", strings.Repeat("[", 10000), "\x00\xff", `{"id":"x","event_type":"T","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"!!"}}`}
	doors := []string{"/callbacks/wechatpay/pk", "/callbacks/wechatpay/certs", "/callbacks/wechatpay-v2/pk", "/callbacks/message/shop", "/callbacks/message/shop?encrypt_type=aes", "/callbacks/message/drama"}
	for _, d := range doors {
		for _, b := range bodies {
			a := e.doURL("POST", e.callbackURL+d, []byte(b))
			if a.Status < 400 || a.Status > 499 {
				t.Errorf("%s %q: status %d %s", d, b, a.Status, a.Body)
			}
		}
	}
	for _, d := range []string{"/callbacks/wechatpay/nobody", "/callbacks/message/nobody", "/callbacks/wechatpay-v2/certs-none", "/xpay/currency_pay", "/"} {
		if a := e.doURL("POST", e.callbackURL+d, []byte("{}")); a.Status != 404 {
			t.Errorf("%s: %d, want 404", d, a.Status)
		}
	}
	if evs, _, _ := e.recv.snapshot(); len(evs) != 0 {
		t.Fatalf("malformed callbacks reached the app: %+v", evs)
	}
}

// clone copies a notification so a variant can change it.
func clone(n emulator.Notification) emulator.Notification {
	c := n
	c.Body = bytes.Clone(n.Body)
	c.Header = make(map[string]string, len(n.Header))
	for k, v := range n.Header {
		c.Header[k] = v
	}
	return c
}
