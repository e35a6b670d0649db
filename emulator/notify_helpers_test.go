package emulator

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// Push test apps. appA pushes JSON in safe mode; appX pushes XML in compat mode with the
// official sample's key; appT pushes plaintext JSON with the token of the official vectors;
// appY shares appA's token and key (another mini program of the same developer).
const (
	pushTokenA = "push-token-a"
	pushKeyA   = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	pushKeyX   = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)

var (
	appX = App{AppID: "wx00000000000000x1", Secret: "secret-x", OfferID: "1450000009", AppKey: "appkey-prod-x", SandboxAppKey: "appkey-sandbox-x"}
	appT = App{AppID: "wx00000000000000t1", Secret: "secret-t"}
	appY = App{AppID: "wx00000000000000y1", Secret: "secret-y"}
)

// pushApps returns the push test apps, pushing to the receiver at base.
func pushApps(base string) []App {
	a := appA
	a.PushURL, a.PushToken, a.PushAESKey = base+"/push/"+appA.AppID, pushTokenA, pushKeyA
	x := appX
	x.PushURL, x.PushToken, x.PushAESKey, x.PushFormat, x.PushMode, x.OriginalID = base+"/push/"+appX.AppID, "AAAAA", pushKeyX, "xml", "compat", "gh_97417a04a28d"
	tt := appT
	tt.PushToken, tt.PushMode = "AAAAA", "plain"
	y := appY
	y.PushToken, y.PushAESKey = pushTokenA, pushKeyA
	return []App{a, x, tt, y}
}

// Verification failures, one per check a callback receiver makes.
var (
	errSkew          = errors.New("timestamp outside five minutes")
	errReplay        = errors.New("timestamp and nonce seen before")
	errUnknownSerial = errors.New("unknown Wechatpay-Serial")
	errSignature     = errors.New("signature does not verify")
	errDecrypt       = errors.New("decryption failed")
	errPushSignature = errors.New("push signature does not verify")
	errAppID         = errors.New("push is for another appid")
)

// received is one callback the receiver got, with the outcome of its verification.
type received struct {
	path   string
	query  url.Values
	header map[string]string
	body   []byte
	err    error  // the verification failure, nil when genuine (scripted paths are not verified)
	plain  []byte // the verified event: the decrypted resource, push message or v2 document
	params []signer.Param
}

// receiver is a callback receiver on loopback that verifies what it gets like a merchant
// backend: /v3/<mchid>, /v2/<mchid>, /push/<appid>. /script/<name> answers what the test's
// script says, unverified; /block/ holds the request until the test ends.
type receiver struct {
	t    *testing.T
	base string
	srv  *fasthttp.Server

	mu      sync.Mutex
	cond    *sync.Cond
	h       *mchHarness
	got     []received
	seen    map[string]bool                      // timestamp + nonce of every verified callback
	scripts map[string]func(n int) (int, string) // by name: the answer to the n-th request (1-based)
	counts  map[string]int                       // requests per script
	block   chan struct{}                        // /block/ requests wait for it
}

// startReceiver serves a receiver until the test ends.
func startReceiver(t *testing.T) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	r := &receiver{
		t: t, base: "http://" + ln.Addr().String(), seen: map[string]bool{},
		scripts: map[string]func(int) (int, string){}, counts: map[string]int{}, block: make(chan struct{}),
	}
	r.cond = sync.NewCond(&r.mu)
	r.srv = &fasthttp.Server{Handler: r.handle, CloseOnShutdown: true, DisableHeaderNamesNormalizing: true}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		r.unblock()
		_ = r.srv.Shutdown()
		_ = ln.Close() // Shutdown closes only a listener Serve has taken; this ends one not there yet
		<-done
	})
	return r
}

// attach gives the receiver the harness whose keys it verifies with.
func (r *receiver) attach(h *mchHarness) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h = h
}

// script makes /script/<name> answer f(n) to its n-th request.
func (r *receiver) script(name string, f func(n int) (int, string)) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scripts[name] = f
	return r.base + "/script/" + name
}

// unblock releases every /block/ request, now and later.
func (r *receiver) unblock() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.block:
	default:
		close(r.block)
	}
}

// handle answers one callback.
func (r *receiver) handle(ctx *fasthttp.RequestCtx) {
	rec := received{path: string(ctx.Path()), header: map[string]string{}, body: append([]byte(nil), ctx.PostBody()...)}
	rec.query, _ = url.ParseQuery(string(ctx.QueryArgs().QueryString()))
	for k, v := range ctx.Request.Header.All() {
		rec.header[string(k)] = string(v)
	}
	kind, name, _ := strings.Cut(strings.TrimPrefix(rec.path, "/"), "/")
	name, _, _ = strings.Cut(name, "/") // /v3/<mchid>/anything is <mchid>'s door too
	if kind == "block" {
		r.mu.Lock()
		block := r.block
		r.got = append(r.got, rec)
		r.cond.Broadcast()
		r.mu.Unlock()
		<-block
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	r.mu.Lock()
	defer func() {
		r.got = append(r.got, rec)
		r.cond.Broadcast()
		r.mu.Unlock()
	}()
	switch kind {
	case "script":
		r.counts[name]++
		status, body := r.scripts[name](r.counts[name])
		ctx.SetStatusCode(status)
		ctx.SetBodyString(body)
	case "v3":
		rec.plain, rec.err = r.verifyV3(name, &rec)
		if rec.err != nil {
			ctx.SetStatusCode(fasthttp.StatusUnauthorized)
			ctx.SetBodyString(`{"code":"FAIL","message":"失败"}`)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case "v2":
		rec.params, rec.err = r.verifyV2(name, &rec)
		code := "SUCCESS"
		if rec.err != nil {
			code = "FAIL"
		}
		ctx.SetBody(signer.AppendXML(nil, []signer.Param{{Key: "return_code", Value: code}, {Key: "return_msg", Value: "OK"}}))
	case "push":
		rec.plain, rec.err = r.verifyPush(name, &rec)
		code := 0
		if rec.err != nil {
			code = 1
		}
		if strings.Contains(rec.header["Content-Type"], "xml") {
			fmt.Fprintf(ctx, "<xml><ErrCode>%d</ErrCode><ErrMsg><![CDATA[x]]></ErrMsg></xml>", code)
		} else {
			fmt.Fprintf(ctx, `{"ErrCode":%d,"ErrMsg":"x"}`, code)
		}
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
	}
}

// fresh checks a callback's timestamp against the emulator's clock and that its timestamp and
// nonce are new. Callers hold r.mu.
func (r *receiver) fresh(ts, nonce string) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", errSkew, ts)
	}
	if d := r.h.clock.Now().Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("%w: off by %v", errSkew, d)
	}
	if r.seen[ts+"/"+nonce] {
		return errReplay
	}
	r.seen[ts+"/"+nonce] = true
	return nil
}

// v3Notice is an APIv3 notification body as a receiver reads it.
type v3Notice struct {
	ID           string `json:"id"`
	CreateTime   string `json:"create_time"`
	ResourceType string `json:"resource_type"`
	EventType    string `json:"event_type"`
	Summary      string `json:"summary"`
	Resource     struct {
		OriginalType   string `json:"original_type"`
		Algorithm      string `json:"algorithm"`
		Ciphertext     string `json:"ciphertext"`
		AssociatedData string `json:"associated_data"`
		Nonce          string `json:"nonce"`
	} `json:"resource"`
}

// verifyV3 verifies an APIv3 notification for merchant mchID like the official SDKs: signature
// with the key Wechatpay-Serial names (the public key, or a platform certificate fetched from
// /v3/certificates), timestamp, then AEAD decryption with the APIv3 key. Callers hold r.mu.
func (r *receiver) verifyV3(mchID string, rec *received) ([]byte, error) {
	m := r.h.mk
	if mchID == mchIDP {
		m = r.h.mp
	}
	hd := rec.header
	if err := r.fresh(hd["Wechatpay-Timestamp"], hd["Wechatpay-Nonce"]); err != nil {
		return nil, err
	}
	key, err := r.h.answerKey(m, hd["Wechatpay-Serial"])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnknownSerial, err)
	}
	msg := signer.AppendResponseMessage(nil, hd["Wechatpay-Timestamp"], hd["Wechatpay-Nonce"], rec.body)
	if err := signer.NewRSAVerifier(key).Verify(msg, hd["Wechatpay-Signature"]); err != nil {
		return nil, fmt.Errorf("%w: %w", errSignature, err)
	}
	var n v3Notice
	if err := json.Unmarshal(rec.body, &n); err != nil || n.Resource.Algorithm != "AEAD_AES_256_GCM" {
		return nil, fmt.Errorf("%w: body %s", errDecrypt, rec.body)
	}
	aead, err := signer.NewAEADKey([]byte(m.APIv3Key))
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, n.Resource.Nonce, n.Resource.AssociatedData, n.Resource.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errDecrypt, err)
	}
	return plain, nil
}

// verifyV2 verifies an APIv2 notification for merchant mchID: the pay notification's sign
// (with its sign_type, MD5 by default), or the refund notification's req_info by decrypting it.
// It returns the document, with a refund's decrypted fields after the outer ones. Callers hold
// r.mu.
func (r *receiver) verifyV2(mchID string, rec *received) ([]signer.Param, error) {
	m := r.h.mp
	if mchID != m.MchID {
		return nil, fmt.Errorf("no APIv2 key for %s", mchID)
	}
	params, err := signer.ParseXML(rec.body)
	if err != nil {
		return nil, err
	}
	key := signer.NewV2Key(m.APIv2Key)
	info, ok := signer.ParamValue(params, "req_info")
	if !ok {
		if err := key.Verify("", params); err != nil {
			return nil, fmt.Errorf("%w: %w", errSignature, err)
		}
		return params, nil
	}
	plain, err := key.DecryptRefundInfo(info)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errDecrypt, err)
	}
	inner, err := signer.ParseXML(plain)
	if err != nil || !strings.HasPrefix(string(plain), "<root>") {
		return nil, fmt.Errorf("%w: req_info %q", errDecrypt, plain)
	}
	return append(params, inner...), nil
}

// verifyPush verifies a message push for appID like the official sample: signature (plaintext
// mode) or msg_signature over Encrypt (safe and compat modes), timestamp and nonce, then
// decryption and the trailing appid. Callers hold r.mu.
func (r *receiver) verifyPush(appID string, rec *received) ([]byte, error) {
	var app App
	for _, a := range pushApps(r.base) {
		if a.AppID == appID {
			app = a
		}
	}
	q := rec.query
	ts, nonce := q.Get("timestamp"), q.Get("nonce")
	if q.Get("encrypt_type") != "aes" {
		if q.Get("signature") != signer.PushSignature(app.PushToken, ts, nonce) {
			return nil, errPushSignature
		}
		if err := r.fresh(ts, nonce); err != nil {
			return nil, err
		}
		return rec.body, nil
	}
	var encrypt string
	if strings.Contains(rec.header["Content-Type"], "xml") {
		params, err := parsePushXML(rec.body)
		if err != nil {
			return nil, err
		}
		encrypt, _ = signer.ParamValue(params, "Encrypt")
	} else {
		var env struct{ Encrypt string }
		if err := json.Unmarshal(rec.body, &env); err != nil {
			return nil, err
		}
		encrypt = env.Encrypt
	}
	if q.Get("msg_signature") != signer.PushSignature(app.PushToken, ts, nonce, encrypt) {
		return nil, errPushSignature
	}
	if err := r.fresh(ts, nonce); err != nil {
		return nil, err
	}
	c, err := signer.NewPushCrypter(app.PushAESKey)
	if err != nil {
		return nil, err
	}
	msg, gotApp, err := c.Decrypt(encrypt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errDecrypt, err)
	}
	if gotApp != appID {
		return nil, fmt.Errorf("%w: %s", errAppID, gotApp)
	}
	return msg, nil
}

// parsePushXML reads the top-level elements of an XML push whose nested elements (compat mode
// carries the event's) are skipped.
func parsePushXML(body []byte) ([]signer.Param, error) {
	var doc struct {
		ToUserName string `xml:"ToUserName"`
		Encrypt    string `xml:"Encrypt"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	return []signer.Param{{Key: "ToUserName", Value: doc.ToUserName}, {Key: "Encrypt", Value: doc.Encrypt}}, nil
}

// wait returns the callbacks once n arrived; it fails the test after 10 s.
func (r *receiver) wait(n int) []received {
	r.t.Helper()
	timedOut := false
	timer := time.AfterFunc(10*time.Second, func() {
		r.mu.Lock()
		timedOut = true
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer timer.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.got) < n && !timedOut {
		r.cond.Wait()
	}
	if len(r.got) < n {
		r.t.Fatalf("%d callbacks arrived, want %d", len(r.got), n)
	}
	return append([]received(nil), r.got...)
}

// last returns the most recent callback.
func (r *receiver) last() received {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		r.t.Fatal("no callback arrived")
	}
	return r.got[len(r.got)-1]
}

// newNotifyHarness starts a receiver and an emulator (mchP, mchK and the push apps) that
// accepts http notify URLs and retries on scale, after applying changes.
func newNotifyHarness(t *testing.T, scale float64, changes ...func(*Config)) (*mchHarness, *receiver) {
	t.Helper()
	r := startReceiver(t)
	setup := func(c *Config) {
		c.RetryScale, c.AllowHTTPNotifyURL, c.Apps = scale, true, pushApps(r.base)
	}
	h := newMchHarness(t, append([]func(*Config){setup}, changes...)...)
	r.attach(h)
	return h, r
}

// deliver delivers n once and returns the receiver's verdict on it.
func deliver(t *testing.T, h *mchHarness, r *receiver, n Notification) (bool, received) {
	t.Helper()
	acked, _, _, err := h.emu.Deliver(n)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	return acked, r.last()
}
