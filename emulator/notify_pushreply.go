package emulator

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// Pushes WeChat wants a business answer to (docs/protocol/message-push.md §7): the
// answer is the app's reply, in the push's format, wrapped in {Encrypt, MsgSignature, TimeStamp,
// Nonce} (or its XML form) when the push was encrypted. Anything else, or no answer within the
// event's deadline, leaves WeChat without an answer: it asks again.

// EventIOSRefundQuery is the iOS subscription refund inquiry (iOS 订阅退款问询).
const EventIOSRefundQuery = "xpay_subscribe_ios_refund_query_notify"

// answerDeadlines is how long WeChat waits for each answered event.
var answerDeadlines = map[string]time.Duration{
	EventIOSRefundQuery: 3 * time.Second, // "3 秒内" (message-push.md §7)
}

// answerDeadline is WeChat's deadline for the answer to event.
func answerDeadline(event string) time.Duration {
	if d, ok := answerDeadlines[event]; ok {
		return d
	}
	return deliverTimeout
}

// IOSRefundQuery is what an iOS refund inquiry carries besides its head. The field names are
// those seen in answering apps (the official page was not captured; message-push.md §7).
type IOSRefundQuery struct {
	OpenID        string // the payer
	PayOrderID    string // the order the user asks Apple to refund
	ProductID     string // the subscription product
	Count         int    // p_count
	ProvideStatus int    // provide_status: 0 not delivered, 1 delivered, 2 delivering
}

// iosRefundQueryEvent is xpay_subscribe_ios_refund_query_notify.
type iosRefundQueryEvent struct {
	XMLName xml.Name `json:"-" xml:"xml"`
	pushEventHead
	OpenID        cdata `json:"OpenId" xml:"OpenId"`
	PayOrderID    cdata `json:"pay_order_id" xml:"pay_order_id"`
	ProductID     cdata `json:"product_id" xml:"product_id"`
	Count         int   `json:"p_count" xml:"p_count"`
	ProvideStatus int   `json:"provide_status" xml:"provide_status"`
}

// BuildIOSRefundQuery builds the iOS refund inquiry push of q to the app's PushURL (url when
// not ""), in the app's format and mode; its Answer is set, so Deliver and Send judge the
// answer as WeChat does (OpenPushAnswer).
func (e *Emulator) BuildIOSRefundQuery(appID string, q IOSRefundQuery, target string, opts NotifyOptions) (Notification, error) {
	a := e.apps[appID]
	if a == nil {
		return Notification{}, fmt.Errorf("emulator: build iOS refund query: unknown appid %q", appID)
	}
	if target == "" {
		target = a.push.url
	}
	now := opts.Timestamp
	if now.IsZero() {
		now = e.now()
	}
	msg, err := encodeEvent(a.push.format, &iosRefundQueryEvent{
		pushEventHead: a.push.head(EventIOSRefundQuery, now), OpenID: cdata(q.OpenID),
		PayOrderID: cdata(q.PayOrderID), ProductID: cdata(q.ProductID), Count: q.Count, ProvideStatus: q.ProvideStatus,
	})
	if err != nil {
		return Notification{}, err
	}
	n, err := e.BuildPushMessage(appID, msg, target, opts)
	n.Answer = EventIOSRefundQuery
	return n, err
}

// IOSRefundAnswer is the answer to an iOS refund inquiry.
type IOSRefundAnswer struct {
	ResultCode int    `json:"result_code" xml:"result_code"` // 0 refund, 1 refuse
	ResultInfo string `json:"result_info" xml:"result_info"`
	Evidence   string `json:"evidence" xml:"evidence"` // required
}

// ParseIOSRefundAnswer reads an opened answer (OpenPushAnswer) in format ("json" or "xml")
// and checks it: result_code 0 or 1, evidence not empty.
func ParseIOSRefundAnswer(format string, reply []byte) (IOSRefundAnswer, error) {
	var a IOSRefundAnswer
	if format == pushXML {
		if err := xml.Unmarshal(reply, &a); err != nil {
			return a, fmt.Errorf("the answer is not XML: %w", err)
		}
	} else {
		var raw map[string]json.RawMessage
		if !isJSONObject(reply) || json.Unmarshal(reply, &raw) != nil {
			return a, errors.New("the answer is not a JSON object")
		}
		if c := string(raw["result_code"]); c != "0" && c != "1" {
			return a, fmt.Errorf("result_code is %q, want the number 0 or 1", c)
		}
		if err := json.Unmarshal(reply, &a); err != nil {
			return a, fmt.Errorf("the answer's members: %w", err)
		}
	}
	switch {
	case a.ResultCode != 0 && a.ResultCode != 1:
		return a, fmt.Errorf("result_code is %d, want 0 or 1", a.ResultCode)
	case a.Evidence == "":
		return a, errors.New("evidence is missing")
	}
	return a, nil
}

// OpenPushAnswer checks an answer to a push n that needs one as WeChat does and returns the
// app's reply in the push's format: HTTP 200; for an encrypted push (encrypt_type=aes) a body
// {Encrypt, MsgSignature, TimeStamp, Nonce} (or its XML form) whose MsgSignature is the SHA-1 of
// the sorted token, TimeStamp, Nonce and Encrypt, TimeStamp within 300 s, and whose Encrypt
// decrypts for the app's appid; for a plaintext push the body itself. For the iOS refund inquiry
// the reply must also parse (ParseIOSRefundAnswer). "success" and ErrCode acknowledgements are
// no answer.
func (e *Emulator) OpenPushAnswer(n Notification, status int, body []byte) ([]byte, error) {
	if status != fasthttp.StatusOK {
		return nil, fmt.Errorf("the answer is HTTP %d, want 200", status)
	}
	u, err := url.Parse(n.URL)
	if err != nil {
		return nil, fmt.Errorf("the push URL: %w", err)
	}
	q := u.Query()
	var a *appState
	for _, s := range e.apps {
		if s.push != nil && s.push.token != "" && signer.PushSignature(s.push.token, q.Get("timestamp"), q.Get("nonce")) == q.Get("signature") {
			a = s
			break
		}
	}
	if a == nil {
		return nil, errors.New("the push names no app the emulator knows")
	}
	format := pushFormatOf(n)
	reply := bytes.TrimSpace(body)
	if q.Get("encrypt_type") == "aes" {
		if reply, err = e.openEncryptedAnswer(a, format, reply); err != nil {
			return nil, err
		}
	}
	if len(reply) == 0 || string(reply) == "success" {
		return nil, errors.New("the answer is an acknowledgement, not the business reply")
	}
	if n.Answer == EventIOSRefundQuery {
		if _, err := ParseIOSRefundAnswer(format, reply); err != nil {
			return nil, err
		}
	}
	return reply, nil
}

// encryptedAnswer is the envelope of an encrypted answer.
type encryptedAnswer struct {
	Encrypt      string `json:"Encrypt" xml:"Encrypt"`
	MsgSignature string `json:"MsgSignature" xml:"MsgSignature"`
	TimeStamp    int64  `json:"TimeStamp" xml:"TimeStamp"`
	Nonce        string `json:"Nonce" xml:"Nonce"`
}

// openEncryptedAnswer verifies and decrypts an encrypted answer.
func (e *Emulator) openEncryptedAnswer(a *appState, format string, body []byte) ([]byte, error) {
	var env encryptedAnswer
	var err error
	if format == pushXML {
		err = xml.Unmarshal(body, &env)
	} else {
		err = json.Unmarshal(body, &env)
	}
	if err != nil || env.Encrypt == "" || env.MsgSignature == "" || env.Nonce == "" || env.TimeStamp == 0 {
		return nil, errors.New("the answer to an encrypted push is not {Encrypt, MsgSignature, TimeStamp, Nonce}")
	}
	ts := strconv.FormatInt(env.TimeStamp, 10)
	if !signer.VerifyPushSignature([]byte(env.MsgSignature), a.push.token, ts, env.Nonce, env.Encrypt) {
		return nil, errors.New("the answer's MsgSignature does not verify")
	}
	if skew := e.now().Sub(time.Unix(env.TimeStamp, 0)); skew > maxClockSkew || skew < -maxClockSkew {
		return nil, errors.New("the answer's TimeStamp is more than 300 s away")
	}
	msg, appID, err := a.push.crypter.Decrypt(env.Encrypt)
	if err != nil {
		return nil, errors.New("the answer's Encrypt does not decrypt")
	}
	if appID != a.cfg.AppID {
		return nil, fmt.Errorf("the answer is encrypted for appid %q", strings.TrimSpace(appID))
	}
	return msg, nil
}

// iosRefundQueryControl is the body of POST /_emulator/xpay/ios_refund_query.
type iosRefundQueryControl struct {
	OpenID        string `json:"openid"`
	PayOrderID    string `json:"pay_order_id"`
	ProductID     string `json:"product_id"`
	Count         int    `json:"p_count"`
	ProvideStatus int    `json:"provide_status"`
}

// serveIOSRefundQuery answers POST /_emulator/xpay/ios_refund_query?appid=: it queues an iOS
// refund inquiry to the app's push URL, asked again on WeChat's schedule until answered
// (GET /_emulator/deliveries shows it), and answers {"ok":true,"index":N}.
func (e *Emulator) serveIOSRefundQuery(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		writeControlError(ctx, fasthttp.StatusMethodNotAllowed, "use POST")
		return
	}
	var in iosRefundQueryControl
	if !isJSONObject(ctx.PostBody()) || json.Unmarshal(ctx.PostBody(), &in) != nil {
		writeControlError(ctx, fasthttp.StatusBadRequest, "body must be a JSON object {openid, pay_order_id, product_id, p_count, provide_status}")
		return
	}
	appID := string(ctx.QueryArgs().Peek("appid"))
	a := e.apps[appID]
	if a == nil || a.push == nil || a.push.url == "" {
		writeControlError(ctx, fasthttp.StatusNotFound, "no app with a push URL has appid "+appID)
		return
	}
	n, err := e.BuildIOSRefundQuery(appID, IOSRefundQuery(in), "", NotifyOptions{})
	if err != nil {
		writeControlError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	index := e.queue(n)
	writeJSON(ctx, fasthttp.StatusOK, &deliveriesAnswer{OK: true, Index: &index})
}
