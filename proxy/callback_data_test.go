package proxy_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/signer"
)

// TestV3ResourceDuplicateOwner: a decrypted resource whose owner members a parser could read
// otherwise than wxgate did (a name twice, spelt with an escape or in another case) is refused
// and never forwarded; a duplicate nested where wxgate checks nothing passes.
func TestV3ResourceDuplicateOwner(t *testing.T) {
	e := startEnv(t, nil)
	url := e.callbackURL + "/callbacks/wechatpay/pk"
	const tail = `"out_trade_no":"dup-1","trade_state":"SUCCESS"`
	cases := []struct {
		name, resource string
		forwarded      bool
	}{
		{"mchid twice, the last another merchant's", `{"mchid":"1900000001","appid":"wx00000000000000a1",` + tail + `,"mchid":"1999999999"}`, false},
		{"mchid again with an escape", `{"mchid":"1900000001","appid":"wx00000000000000a1",` + tail + `,"mch\u0069d":"1999999999"}`, false},
		{"mchid again in capitals", `{"mchid":"1900000001","appid":"wx00000000000000a1",` + tail + `,"MCHID":"1999999999"}`, false},
		{"only an escaped mchid beside sp_mchid", `{"sp_mchid":"1900000001","mch\u0069d":"1999999999","appid":"wx00000000000000a1",` + tail + `}`, false},
		{"appid twice", `{"mchid":"1900000001","appid":"wx00000000000000a1",` + tail + `,"appid":"wx00000000000000b2"}`, false},
		{"another member twice", `{"mchid":"1900000001","appid":"wx00000000000000a1",` + tail + `,"trade_state":"REFUND"}`, false},
		{"a nested duplicate", `{"mchid":"1900000001","appid":"wx00000000000000a1",` + tail + `,"amount":{"total":1,"total":1}}`, true},
	}
	want := 0
	for _, c := range cases {
		n, err := e.emu.BuildV3Notification("1900000001", "TRANSACTION.SUCCESS", []byte(c.resource), url, emulator.NotifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		acked, status, body, err := e.emu.Deliver(n)
		if c.forwarded {
			want++
			if !acked {
				t.Errorf("%s: refused, %d %s %v", c.name, status, body, err)
			}
		} else if acked || err != nil || status < 400 || status > 499 {
			t.Errorf("%s: acked %v, status %d %s %v; want a 4xx refusal", c.name, acked, status, body, err)
		}
		if evs, _, _ := e.recv.snapshot(); len(evs) != want {
			t.Errorf("%s: the app has %d events, want %d", c.name, len(evs), want)
			want = len(evs)
		}
	}
}

// TestCallbackDataValidUTF8: invalid UTF-8 (and an unpaired surrogate escape) in what WeChat
// sends reaches the app repaired, as valid UTF-8 JSON with U+FFFD in place, from every source
// and format, instead of failing the app's JSON parser on every retry.
func TestCallbackDataValidUTF8(t *testing.T) {
	e := startEnv(t, nil)
	ts := func() string { return fmt.Sprint(time.Now().Unix()) }
	var seq int
	nonce := func() string { seq++; return fmt.Sprint("utf8-", seq) }
	v3 := func(resource string) emulator.Notification {
		n, err := e.emu.BuildV3Notification("1900000001", "TRANSACTION.SUCCESS", []byte(resource), e.callbackURL+"/callbacks/wechatpay/pk", emulator.NotifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	push := func(appID, app, msg string) emulator.Notification {
		n, err := e.emu.BuildPushMessage(appID, []byte(msg), e.callbackURL+"/callbacks/message/"+app, emulator.NotifyOptions{Nonce: nonce()})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	plainXML := func(msg string) emulator.Notification { // the emulator's drama pushes JSON
		sec, n := ts(), nonce()
		return emulator.Notification{Kind: "message_push", Header: map[string]string{"Content-Type": "text/xml"}, Body: []byte(msg),
			URL: e.callbackURL + "/callbacks/message/drama?signature=" + signer.PushSignature("drama-push-token", sec, n) + "&timestamp=" + sec + "&nonce=" + n}
	}
	const head = `"ToUserName":"gh_d","FromUserName":"o2","CreateTime":1,"MsgType":"event","Event":"debug_demo"`
	const xmlHead = `<xml><ToUserName>gh_d</ToUserName><MsgType>event</MsgType><Event>debug_demo</Event>`
	cases := []struct {
		name   string
		n      emulator.Notification
		member string // the member of data that held the bad bytes
		want   string
	}{
		{"v3 resource", v3("{\"mchid\":\"1900000001\",\"appid\":\"wx00000000000000a1\",\"out_trade_no\":\"u8-1\",\"attach\":\"caf\xe9 \xff!\"}"), "attach", "caf\ufffd \ufffd!"},
		{"v3 resource, unpaired surrogate", v3(`{"mchid":"1900000001","out_trade_no":"u8-2","attach":"a\ud800b"}`), "attach", "a\ufffdb"},
		{"plaintext JSON push", push("wx00000000000000b2", "drama", "{"+head+",\"Content\":\"x\xc0\xafy\"}"), "Content", "x\ufffd\ufffdy"},
		{"safe-mode JSON push", push("wx00000000000000a1", "shop", "{"+head+",\"Content\":\"\xe4\xb8\"}"), "Content", "\ufffd\ufffd"},
		{"plaintext XML push", plainXML(xmlHead + "<Content>caf\xe9</Content></xml>"), "Content", "caf\ufffd"},
		{"safe-mode XML push", safePushXML(t, e, "shop", "wx00000000000000a1", []byte(xmlHead+"<Content><![CDATA[a\xffb]]></Content></xml>")), "Content", "a\ufffdb"},
	}
	got := 0
	for _, c := range cases {
		if acked, status, body, err := e.emu.Deliver(c.n); !acked {
			t.Errorf("%s: refused, %d %s %v", c.name, status, body, err)
			continue
		}
		got++
		ev := e.recv.waitEvents(got, waitTime)[got-1]
		var data map[string]any
		if !utf8.Valid(ev.Data) || strings.Contains(strings.ToLower(string(ev.Data)), `\ud800`) || json.Unmarshal(ev.Data, &data) != nil || data[c.member] != c.want {
			t.Errorf("%s: the app got data %q, want valid UTF-8 JSON with %s %q", c.name, ev.Data, c.member, c.want)
		}
	}
}
