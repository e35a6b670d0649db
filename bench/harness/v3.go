package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// jsapiPath is the WeChat Pay API of the v3 runs.
const jsapiPath = "/v3/pay/transactions/jsapi"

// v3Load builds JSAPI orders.
type v3Load struct {
	appID, openid string
	publicKeyID   string
	tag           string
	seq           []uint64
	signer        *signer.RSASigner // signs in the load generator (direct); nil for wxgate
	serial        string
	presigned     []v3Signed // cycled through (bare, nginx): the emulator accepts a repeated order
	next          []int
}

// v3Signed is one order the load generator signed before the run.
type v3Signed struct {
	body []byte
	auth string
}

func (h *harness) newV3Load(openid string, sign bool) *v3Load {
	l := &v3Load{appID: h.main.apps[0].AppID, openid: openid, publicKeyID: h.main.emuInfo.PublicKeyID, tag: randomHex(3),
		seq: make([]uint64, h.opts.Conns), next: make([]int, h.opts.Conns), serial: h.mat.merchantSerial}
	if sign {
		l.signer = signer.NewRSASigner(h.mat.merchantKey)
	}
	return l
}

// body returns a JSAPI order with a unique out_trade_no.
func (l *v3Load) body(conn int) []byte {
	n := l.seq[conn]
	l.seq[conn]++
	b := make([]byte, 0, 320)
	b = append(b, `{"appid":"`...)
	b = append(b, l.appID...)
	b = append(b, `","mchid":"`+mchID+`","description":"bench","out_trade_no":"`...)
	b = append(b, l.tag...)
	b = strconv.AppendInt(append(b, 'c'), int64(conn), 10)
	b = strconv.AppendUint(append(b, 'n'), n, 10)
	b = append(b, `","notify_url":"https://127.0.0.1/notify","amount":{"total":1,"currency":"CNY"},"payer":{"openid":"`...)
	b = append(b, l.openid...)
	return append(b, `"}}`...)
}

// authorization signs a request as an app without wxgate does.
func (l *v3Load) authorization(body []byte) (string, error) {
	var nb [16]byte
	rand.Read(nb[:])
	nonce := strings.ToUpper(hex.EncodeToString(nb[:]))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig, err := l.signer.AppendSign(nil, signer.AppendRequestMessage(nil, "POST", jsapiPath, ts, nonce, body))
	if err != nil {
		return "", err
	}
	return string(signer.AppendAuthorization(nil, mchID, nonce, string(sig), ts, l.serial)), nil
}

// presign signs n orders before a run.
func (l *v3Load) presign(n int) error {
	for i := range n {
		b := l.body(i % len(l.seq))
		auth, err := l.authorization(b)
		if err != nil {
			return err
		}
		l.presigned = append(l.presigned, v3Signed{b, auth})
	}
	return nil
}

// build fills req with connection conn's next order: plain (wxgate), pre-signed (bare, nginx)
// or signed now (direct).
func (l *v3Load) build(conn int, req *fasthttp.Request) bool {
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(jsapiPath)
	req.Header.SetContentType("application/json")
	req.Header.Set("Accept", "application/json")
	switch {
	case l.presigned != nil:
		s := l.presigned[(conn+l.next[conn]*len(l.seq))%len(l.presigned)]
		l.next[conn]++
		req.SetBody(s.body)
		req.Header.Set("Authorization", s.auth)
	case l.signer != nil:
		b := l.body(conn)
		auth, err := l.authorization(b)
		if err != nil {
			return false
		}
		req.SetBody(b)
		req.Header.Set("Authorization", auth)
	default:
		req.SetBody(l.body(conn))
		return true
	}
	req.Header.Set("Wechatpay-Serial", l.publicKeyID)
	return true
}

// checkPrepay refuses an answer without a prepay_id.
func checkPrepay(resp *fasthttp.Response) error {
	if !bytes.Contains(resp.Body(), []byte(`"prepay_id"`)) {
		return fmt.Errorf("no prepay_id: %.160s", resp.Body())
	}
	return nil
}

// verifyingCheck also verifies WeChat Pay's signature on the answer, as an app without wxgate
// must.
func (h *harness) verifyingCheck() func(*fasthttp.Response) error {
	v := signer.NewRSAVerifier(&h.mat.payKey.PublicKey)
	return func(resp *fasthttp.Response) error {
		if err := checkPrepay(resp); err != nil {
			return err
		}
		hd := &resp.Header
		msg := signer.AppendResponseMessage(nil, string(hd.Peek("Wechatpay-Timestamp")), string(hd.Peek("Wechatpay-Nonce")), resp.Body())
		if err := v.Verify(msg, string(hd.Peek("Wechatpay-Signature"))); err != nil {
			return errors.New("answer signature: " + err.Error())
		}
		return nil
	}
}

// presignedOrders is how many orders bare and nginx cycle through.
const presignedOrders = 256

// scenarioV3 compares JSAPI orders (RSA-2048 Authorization, answer verified) with the
// machine's RSA signing ceiling.
func (h *harness) scenarioV3(ctx context.Context) error {
	apps, err := h.xpayApps() // a logged-in user as the payer
	if err != nil {
		return err
	}
	openid := apps[0].users[0].openid
	h.logf("  measuring the RSA-2048 signing ceiling (%v) ...\n", h.opts.CeilingDuration)
	ceiling := rsaSignCeiling(h.mat.merchantKey, h.opts.CeilingDuration)
	h.logf("  %.0f signatures/s\n", ceiling)
	pre := h.newV3Load(openid, true)
	if err := pre.presign(presignedOrders); err != nil {
		return err
	}
	mchAddr := strings.TrimPrefix(h.main.emuInfo.Mch, "https://")
	direct := column{name: colDirect, addr: mchAddr, tls: h.mchTLS, build: h.newV3Load(openid, true).build, check: h.verifyingCheck(),
		note: "signs each order in the load generator and verifies each answer's signature, as an app without wxgate must"}
	bare := h.bareColumn("mch")
	bare.build, bare.check = pre.build, checkPrepay
	gate := column{name: colWxgate, addr: h.main.appAddr, pid: h.main.gate.pid(), metrics: h.main.metricsURL(), pprof: h.main.pprofURL(), build: h.newV3Load(openid, false).build, check: checkPrepay}
	ngx := h.nginxColumn("mch")
	if ngx.skip == "" {
		ngx.build, ngx.check = pre.build, checkPrepay
	}
	sec := &section{
		title: "2. WeChat Pay APIv3 JSAPI order (RSA-2048 path)",
		intro: fmt.Sprintf("POST %s over TLS to the emulated api.mch.weixin.qq.com, a unique out_trade_no per request "+
			"(bare and nginx cycle through %d orders the load generator signed before the run; the emulator accepts a repeated order). "+
			"wxgate signs the Authorization (RSA-2048) and verifies WeChat Pay's RSA signature on every answer. "+
			"The emulator RSA-signs every answer too, on the same cores.", jsapiPath, presignedOrders),
	}
	sec.rows = h.compare(ctx, []column{direct, bare, gate, ngx})
	sec.addRatios(false)
	sec.notes = append(sec.notes, fmt.Sprintf("RSA-2048 signing ceiling of this machine: %.0f signatures/s (%d goroutines, signer.RSASigner, %v), i.e. %s of CPU per signature",
		ceiling, gomaxprocs(), h.opts.CeilingDuration, fmtDur(cpuPerOp(ceiling))))
	sec.targets = append(sec.targets, ceilingChecks("v3 JSAPI", sec.find(colWxgate), ceiling, 0.85)...)
	h.report.add(sec)
	return nil
}
