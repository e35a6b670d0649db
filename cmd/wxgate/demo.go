package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/store"
)

// demoConfig is the throwaway config of `wxgate demo`; the {{...}} fields are filled with fresh
// random values, the emulator's addresses and the files the demo writes.
const demoConfig = `
[server]
app_listen = "127.0.0.1:0"
callback_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[forward]
secret = "{{forward_secret}}"
timeout = "3s"
[upstream]
weixin = "{{weixin}}"
mch = "{{mch}}"
ca_file = "{{ca_file}}"
timeout = "3s"
[[app]]
name = "demo"
appid = "{{appid}}"
secret = "{{secret}}"
forward_url = "{{receiver}}"
[app.push]
token = "{{push_token}}"
encoding_aes_key = "{{push_aes_key}}"
[app.xpay]
offer_id = "1450000001"
app_key = "{{app_key}}"
sandbox_app_key = "{{sandbox_app_key}}"
[[merchant]]
name = "demo"
mchid = "1900000109"
appid = "{{appid}}"
serial_no = "{{serial_no}}"
private_key_file = "merchant_key.pem"
apiv3_key = "{{apiv3_key}}"
public_key_id = "{{public_key_id}}"
public_key_file = "{{public_key_file}}"
apiv2_key = "{{apiv2_key}}"
client_cert_file = "merchant_cert.pem"
client_key_file = "merchant_key.pem"
forward_url = "{{receiver}}"
`

// demoEnv is a running emulator and gateway on loopback, as `wxgate demo` and tests use them.
type demoEnv struct {
	emu      *emulator.Emulator
	emuAddr  string
	srv      *proxy.Server
	store    store.Store
	appURL   string
	adminURL string
	cfg      *policies.Config
	dir      string
	recv     *demoReceiver
	// callbackURL is wxgate's callback listener, where WeChat's notifications go.
	callbackURL string
}

// startDemoEnv starts the emulator (api.weixin.qq.com over HTTP, api.mch.weixin.qq.com over TLS)
// and wxgate on free loopback ports, with a fresh config and merchant keys in a temporary folder.
func startDemoEnv() (env *demoEnv, err error) {
	dir, err := os.MkdirTemp("", "wxgate-demo-")
	if err != nil {
		return nil, fmt.Errorf("demo folder: %w", err)
	}
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
			os.RemoveAll(dir)
		}
	}()
	serial, err := writeMerchantFiles(dir)
	if err != nil {
		return nil, err
	}
	weixinLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emulator listener: %w", err)
	}
	closers = append(closers, func() { weixinLn.Close() })
	mchLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emulator listener: %w", err)
	}
	closers = append(closers, func() { mchLn.Close() })
	recv, err := startDemoReceiver()
	if err != nil {
		return nil, err
	}
	closers = append(closers, recv.close)
	fields := map[string]string{
		"receiver": recv.url, "forward_secret": randomHex(16), "push_token": randomHex(8), "push_aes_key": randomAESKey(),
		"weixin": "http://" + weixinLn.Addr().String(), "mch": "https://" + mchLn.Addr().String(),
		"appid": "wx" + randomHex(8), "secret": randomHex(16), "app_key": randomHex(16), "sandbox_app_key": randomHex(16),
		"serial_no": serial, "apiv3_key": randomHex(16), "apiv2_key": randomHex(16),
		// Stand-ins until the emulator exists: WeChat's side is built from this config first.
		"ca_file": "", "public_key_file": "merchant_pub.pem", "public_key_id": "PUB_KEY_ID_0000000000000000000000000000000000",
	}
	addMiniGameFields(fields) // demo_minigame.go
	pre, err := policies.Parse([]byte(fillTemplate(demoConfig+demoMiniGameConfig, fields)), dir)
	if err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	ec, err := emulatorConfig(pre)
	if err != nil {
		return nil, err
	}
	// wxgate's listeners are bound first, so WeChat knows where to send callbacks.
	ls, err := proxy.Listen(pre.Server)
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { ls.App.Close(); ls.Callback.Close(); ls.Admin.Close() })
	callbackURL := "http://" + ls.Callback.Addr().String()
	ec.Apps[0].PushURL = callbackURL + "/callbacks/message/demo"
	setMiniGamePushURLs(&ec, pre, callbackURL)
	ec.AllowHTTPNotifyURL = true // the demo's callback door is plain HTTP on loopback
	ec.RetryScale = 0.01
	emu, err := emulator.New(ec)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	closers = append(closers, func() { emu.Shutdown() })
	fields["ca_file"], fields["public_key_file"] = filepath.Join(dir, "emulator-ca.pem"), filepath.Join(dir, "wechatpay-pub.pem")
	fields["public_key_id"] = emu.PayPublicKeyID()
	if err := os.WriteFile(fields["ca_file"], emu.CACertPEM(), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(fields["public_key_file"], emu.PayPublicKeyPEM(), 0o600); err != nil {
		return nil, err
	}
	go emu.Serve(weixinLn)
	go emu.ServeTLS(mchLn)
	cfg, err := policies.Parse([]byte(fillTemplate(demoConfig+demoMiniGameConfig, fields)), dir)
	if err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	st, err := openStore(cfg) // the default kind: disk, in the demo's folder
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { st.Close() })
	g, err := proxy.NewGateway(cfg, proxy.Options{Store: st})
	if err != nil {
		return nil, err
	}
	recv.secret = cfg.Forward.Secret.Value()
	srv := proxy.NewServer(g)
	srv.Start(ls)
	return &demoEnv{
		emu: emu, emuAddr: fields["weixin"], srv: srv, store: st, cfg: cfg, dir: dir, recv: recv, callbackURL: callbackURL,
		appURL: "http://" + ls.App.Addr().String(), adminURL: "http://" + ls.Admin.Addr().String(),
	}, nil
}

// Close stops the gateway, the emulator and the receiver, and removes the demo's files.
func (d *demoEnv) Close() error {
	err := errors.Join(d.srv.Shutdown(), d.emu.Shutdown())
	d.srv.Gateway.Close()
	err = errors.Join(err, d.store.Close())
	d.recv.close()
	os.RemoveAll(d.dir)
	return err
}

// fillTemplate replaces {{name}} fields.
func fillTemplate(t string, fields map[string]string) string {
	for k, v := range fields {
		t = strings.ReplaceAll(t, "{{"+k+"}}", v)
	}
	return t
}

// writeMerchantFiles writes a fresh merchant key, its public key and a client certificate for it,
// and returns the certificate's serial (the merchant API certificate serial).
func writeMerchantFiles(dir string) (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("merchant key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", err
	}
	serial := new(big.Int).SetBytes([]byte(randomHex(10)))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "1900000109", Organization: []string{"wxgate demo merchant"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", fmt.Errorf("merchant certificate: %w", err)
	}
	files := map[string]*pem.Block{
		"merchant_key.pem":  {Type: "PRIVATE KEY", Bytes: der},
		"merchant_pub.pem":  {Type: "PUBLIC KEY", Bytes: pub},
		"merchant_cert.pem": {Type: "CERTIFICATE", Bytes: cert},
	}
	for name, block := range files {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return "", err
		}
	}
	return strings.ToUpper(serial.Text(16)), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// runDemo walks a virtual-payment flow through wxgate against the emulator, as an app would.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	env, err := startDemoEnv()
	if err != nil {
		return err
	}
	defer env.Close()
	fmt.Fprintf(stdout, "wxgate demo: WeChat emulator at %s, wxgate app listener at %s (admin %s)\n", env.emuAddr, env.appURL, env.adminURL)
	fmt.Fprintf(stdout, "The app below sends plain requests; wxgate adds access_token, pay_sig and signature.\n\n")
	w := &walker{out: stdout, http: &http.Client{Timeout: 10 * time.Second}, base: env.appURL, ctx: ctx}
	steps := append(demoSteps(env, w), pushReplyAndPartnerSteps(env, w)...) // demo_pushreply.go
	steps = append(steps, demoMiniGameSteps(env, w)...)                     // demo_minigame.go
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d. %s\n", i+1, s.title)
		if err := s.run(); err != nil {
			fmt.Fprintf(stdout, "   FAILED: %v\n", err)
			return fmt.Errorf("demo step %d (%s) failed: %w", i+1, s.title, err)
		}
	}
	fmt.Fprintf(stdout, "\nAll %d steps succeeded.\n", len(steps))
	return nil
}

type demoStep struct {
	title string
	run   func() error
}

// demoSteps is the flow: login, coins bought on the client, balance, present, pay, refund, an item
// bought on the client, its order queried, and a token WeChat invalidated mid-run.
func demoSteps(env *demoEnv, w *walker) []demoStep {
	var openid, prepayID string
	order := "demo" + randomHex(6)
	cashOrder := "cash" + randomHex(6)
	m := env.cfg.Merchants[0]
	var balance float64
	var transfer demoTransfer // demo_transfer.go
	return []demoStep{
		{"Log the user in: GET /sns/jscode2session?js_code=test:alice (wxgate adds appid+secret, keeps the session_key)", func() error {
			var out struct{ OpenID string }
			if err := w.call("GET", "/sns/jscode2session?js_code=test:alice", nil, &out); err != nil {
				return err
			}
			if out.OpenID == "" {
				return errors.New("no openid in the answer")
			}
			openid = out.OpenID
			return nil
		}},
		{"Client buys 100 coins: POST /wxgate/xpay/payment-params, then wx.requestVirtualPayment (emulated client)", func() error {
			return w.clientPay(env, openid, "short_series_coin", map[string]any{
				"buyQuantity": 100, "env": 0, "currencyType": "CNY", "outTradeNo": "coin" + randomHex(6),
			})
		}},
		{"WeChat pushes xpay_coin_pay_notify (safe mode); wxgate verifies, decrypts and forwards it to the app", func() error {
			return w.expectEvent(env, "xpay_coin_pay_notify")
		}},
		{"Query the balance: POST /xpay/query_user_balance", func() error {
			var out struct{ Errcode, Balance float64 }
			if err := w.call("POST", "/xpay/query_user_balance", map[string]any{"openid": openid, "env": 0, "user_ip": "127.0.0.1"}, &out); err != nil {
				return err
			}
			balance = out.Balance
			return expect(out.Errcode == 0 && balance == 100, "balance 100, got errcode %v balance %v", out.Errcode, out.Balance)
		}},
		{"Present 20 coins: POST /xpay/present_currency", func() error {
			var out struct{ Errcode, Balance float64 }
			if err := w.call("POST", "/xpay/present_currency", map[string]any{"openid": openid, "env": 0, "order_id": "gift" + randomHex(6), "amount": 20}, &out); err != nil {
				return err
			}
			return expect(out.Errcode == 0 && out.Balance == 120, "balance 120, got errcode %v balance %v", out.Errcode, out.Balance)
		}},
		{"Spend 50 coins: POST /xpay/currency_pay", func() error {
			var out struct{ Errcode, Balance float64 }
			body := map[string]any{"openid": openid, "env": 0, "user_ip": "127.0.0.1", "amount": 50, "order_id": order,
				"payitem": `[{"productid":"episode-7","unit_price":50,"quantity":1}]`, "remark": "demo"}
			if err := w.call("POST", "/xpay/currency_pay", body, &out); err != nil {
				return err
			}
			return expect(out.Errcode == 0 && out.Balance == 70, "balance 70, got errcode %v balance %v", out.Errcode, out.Balance)
		}},
		{"Refund that payment: POST /xpay/cancel_currency_pay", func() error {
			var out struct{ Errcode float64 }
			body := map[string]any{"openid": openid, "env": 0, "user_ip": "127.0.0.1", "pay_order_id": order, "order_id": "rf" + randomHex(6), "amount": 50}
			if err := w.call("POST", "/xpay/cancel_currency_pay", body, &out); err != nil {
				return err
			}
			return expect(out.Errcode == 0, "errcode 0, got %v", out.Errcode)
		}},
		{"Client buys an item for 990 fen: payment-params + wx.requestVirtualPayment (emulated client)", func() error {
			return w.clientPay(env, openid, "short_series_goods", map[string]any{
				"buyQuantity": 1, "env": 0, "currencyType": "CNY", "productId": "vip-pass", "goodsPrice": 990, "outTradeNo": "item" + order,
			})
		}},
		{"Query that order: POST /xpay/query_order", func() error {
			var out struct {
				Errcode float64
				Order   struct {
					Status  float64
					PaidFee float64 `json:"paid_fee"`
				}
			}
			if err := w.call("POST", "/xpay/query_order", map[string]any{"openid": openid, "env": 0, "order_id": "item" + order}, &out); err != nil {
				return err
			}
			return expect(out.Errcode == 0 && out.Order.Status == 2 && out.Order.PaidFee == 990, "a paid order of 990, got %+v", out)
		}},
		{"WeChat invalidates the access_token; the next call still succeeds (wxgate refreshes and retries once)", func() error {
			env.emu.InvalidateTokens(env.cfg.Apps[0].AppID)
			var out struct{ Errcode, Balance float64 }
			if err := w.call("POST", "/xpay/query_user_balance", map[string]any{"openid": openid, "env": 0, "user_ip": "127.0.0.1"}, &out); err != nil {
				return err
			}
			return expect(out.Errcode == 0 && out.Balance == 120, "balance 120 after the refund, got errcode %v balance %v", out.Errcode, out.Balance)
		}},
		{"WeChat Pay: place an order, POST /v3/pay/transactions/jsapi (wxgate signs the Authorization and verifies WeChat Pay's signed answer)", func() error {
			var out struct {
				PrepayID string `json:"prepay_id"`
			}
			body := map[string]any{"appid": m.AppID, "mchid": m.MchID, "description": "VIP pass", "out_trade_no": cashOrder,
				"notify_url": env.callbackURL + "/callbacks/wechatpay/demo", "amount": map[string]any{"total": 1990, "currency": "CNY"},
				"payer": map[string]any{"openid": openid}}
			if err := w.call("POST", "/v3/pay/transactions/jsapi", body, &out); err != nil {
				return err
			}
			prepayID = out.PrepayID
			return expect(prepayID != "", "a prepay_id")
		}},
		{"Client pays: POST /wxgate/v3/payment-params, then wx.requestPayment (emulated client checks paySign)", func() error {
			var p proxy.RequestPaymentParams
			if err := w.call("POST", proxy.PathV3PaymentParams, map[string]any{"prepay_id": prepayID}, &p); err != nil {
				return err
			}
			start := time.Now()
			msg, ok := env.emu.RequestPaymentClient(emulator.RequestPayment{AppID: m.AppID, TimeStamp: p.TimeStamp, NonceStr: p.NonceStr, Package: p.Package, SignType: p.SignType, PaySign: p.PaySign})
			fmt.Fprintf(w.out, "   -> wx.requestPayment({timeStamp, nonceStr, package, signType:%q, paySign}) in the emulated client\n", p.SignType)
			fmt.Fprintf(w.out, "   <- %s (%s)\n", msg, time.Since(start).Round(10*time.Microsecond))
			return expect(ok, "the client to accept paySign, got %s", msg)
		}},
		{"WeChat Pay notifies TRANSACTION.SUCCESS; wxgate verifies the signature, decrypts the resource and forwards it", func() error {
			return w.expectEvent(env, "TRANSACTION.SUCCESS")
		}},
		{"Query it: GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=...", func() error {
			var out struct {
				TradeState string `json:"trade_state"`
			}
			if err := w.call("GET", "/v3/pay/transactions/out-trade-no/"+cashOrder+"?mchid="+m.MchID, nil, &out); err != nil {
				return err
			}
			return expect(out.TradeState == "SUCCESS", "trade_state SUCCESS, got %q", out.TradeState)
		}},
		{"Refund it: POST /v3/refund/domestic/refunds", func() error {
			var out struct{ Status string }
			body := map[string]any{"out_trade_no": cashOrder, "out_refund_no": "r" + cashOrder, "amount": map[string]any{"refund": 1990, "total": 1990, "currency": "CNY"}}
			if err := w.call("POST", "/v3/refund/domestic/refunds", body, &out); err != nil {
				return err
			}
			return expect(out.Status == "PROCESSING" || out.Status == "SUCCESS", "a refund under way, got %q", out.Status)
		}},
		complaintStep(env, w, m.MchID),
		demoMediaStep(w),
		{"Legacy APIv2: POST /pay/unifiedorder as plain XML (wxgate fills appid, mch_id, nonce_str and sign)", func() error {
			doc := "<xml><body>VIP pass</body><out_trade_no>v2" + cashOrder + "</out_trade_no><total_fee>990</total_fee><spbill_create_ip>127.0.0.1</spbill_create_ip><notify_url>" + env.callbackURL + "/callbacks/wechatpay-v2/demo</notify_url><trade_type>JSAPI</trade_type><openid>" + openid + "</openid></xml>"
			status, answer, err := w.raw("POST", "/pay/unifiedorder", "text/xml", []byte(doc))
			if err != nil {
				return err
			}
			return expect(status == 200 && strings.Contains(answer, "prepay_id"), "a prepay_id, got %d %s", status, answer)
		}},
		transferDemoStep(env, w, func() string { return openid }, &transfer),
		receiptDemoStep(env, w, &transfer),
		{"A forged answer never reaches the app: WeChat Pay sends a WECHATPAY/SIGNTEST/ probe", func() error {
			env.emu.TamperNext(emulator.TamperSignTest, 1)
			var out struct {
				Error struct{ Code string }
			}
			status, err := w.do("GET", "/v3/pay/transactions/out-trade-no/"+cashOrder+"?mchid="+m.MchID, nil, &out)
			if err != nil {
				return err
			}
			return expect(status == 502 && out.Error.Code == proxy.CodeResponseSignature, "502 %s, got %d %+v", proxy.CodeResponseSignature, status, out)
		}},
		{"A mistake gets a clear error: currency_pay without env", func() error {
			var out struct {
				Error struct{ Code, Message string }
			}
			status, err := w.do("POST", "/xpay/currency_pay", map[string]any{"openid": openid, "amount": 1}, &out)
			if err != nil {
				return err
			}
			return expect(status == 400 && out.Error.Code == proxy.CodeMissingEnv, "400 %s, got %d %+v", proxy.CodeMissingEnv, status, out)
		}},
	}
}

func expect(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf("expected "+format, args...)
}

// walker is the demo's app: plain HTTP calls to wxgate, printed with their latency.
type walker struct {
	out  io.Writer
	http *http.Client
	base string
	ctx  context.Context
}

// expectEvent waits for the app receiver to get a verified event of type typ and prints it
// (events of other types that arrive first, such as the goods-delivery push, are printed too).
func (w *walker) expectEvent(env *demoEnv, typ string) error {
	start := time.Now()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-env.recv.events:
			fmt.Fprintf(w.out, "   -> app received %s %s (X-Wxgate-Signature verified) %s\n", ev.Source, ev.Type, oneLine(ev.Data))
			if ev.Type == typ {
				fmt.Fprintf(w.out, "   <- the app answered 200, so wxgate acknowledged WeChat (%s after the trigger)\n", time.Since(start).Round(10*time.Microsecond))
				return nil
			}
		case <-timeout:
			return fmt.Errorf("no %s event reached the app within 10s", typ)
		case <-w.ctx.Done():
			return w.ctx.Err()
		}
	}
}

// raw sends a body with a content type and prints the exchange.
func (w *walker) raw(method, path, contentType string, body []byte) (int, string, error) {
	resp, answer, took, err := w.send(method, w.base+path, body, "Content-Type", contentType)
	if err != nil {
		return 0, "", err
	}
	fmt.Fprintf(w.out, "   -> %s %s %s\n", method, path, oneLine(body))
	fmt.Fprintf(w.out, "   <- %d %s (%s)\n", resp.StatusCode, oneLine(answer), took.Round(10*time.Microsecond))
	return resp.StatusCode, string(answer), nil
}

// send sends a request to url with the headers (name, value pairs) and returns the answer, its
// body and how long it took until the body was read.
func (w *walker) send(method, url string, body []byte, headers ...string) (*http.Response, []byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(w.ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, 0, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	resp, err := w.http.Do(req)
	if err != nil {
		return nil, nil, 0, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, 0, err
	}
	return resp, answer, time.Since(start), nil
}

// call sends a request that must answer 200 and decodes the JSON answer into out.
func (w *walker) call(method, path string, body any, out any) error {
	status, err := w.do(method, path, body, out)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("HTTP %d", status)
	}
	return nil
}

// do sends a request, prints it with the answer and its latency, and decodes the answer into out.
func (w *walker) do(method, path string, body any, out any) (int, error) {
	return w.doWithHeaders(method, path, body, out)
}

// doWithHeaders is do with request headers (name, value pairs), printed with the request.
func (w *walker) doWithHeaders(method, path string, body any, out any, headers ...string) (int, error) {
	var reqBody []byte
	sent := headers
	if body != nil {
		var err error
		if reqBody, err = json.Marshal(body); err != nil {
			return 0, err
		}
		sent = append([]string{"Content-Type", "application/json"}, headers...)
	}
	resp, answer, took, err := w.send(method, w.base+path, reqBody, sent...)
	if err != nil {
		return 0, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(w.out, "   -> %s: %s\n", headers[i], headers[i+1])
	}
	fmt.Fprintf(w.out, "   -> %s %s %s\n", method, path, reqBody)
	fmt.Fprintf(w.out, "   <- %d %s (%s)\n", resp.StatusCode, oneLine(answer), took.Round(10*time.Microsecond))
	if out != nil && len(answer) > 0 {
		if err := json.Unmarshal(answer, out); err != nil {
			return resp.StatusCode, fmt.Errorf("answer is not JSON: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// clientPay asks wxgate for wx.requestVirtualPayment parameters and submits them to the emulated
// WeChat client, which checks paySig and signature as WeChat would.
func (w *walker) clientPay(env *demoEnv, openid, mode string, signData map[string]any) error {
	var params proxy.PaymentParams
	if err := w.call("POST", proxy.PathXpayPaymentParams, map[string]any{"openid": openid, "mode": mode, "signData": signData}, &params); err != nil {
		return err
	}
	start := time.Now()
	res := env.emu.RequestVirtualPayment(emulator.ClientPayment{
		AppID: env.cfg.Apps[0].AppID, OpenID: openid, Mode: params.Mode,
		SignData: params.SignData, PaySig: params.PaySig, Signature: params.Signature,
	})
	fmt.Fprintf(w.out, "   -> wx.requestVirtualPayment({mode:%q, signData, paySig, signature}) in the emulated client\n", params.Mode)
	fmt.Fprintf(w.out, "   <- errCode %d %s (%s)\n", res.ErrCode, res.ErrMsg, time.Since(start).Round(10*time.Microsecond))
	return expect(res.ErrCode == 0, "the client to accept the payment, got errCode %d %s", res.ErrCode, res.ErrMsg)
}

// sessionKeyField matches a session_key in an answer, which the demo masks like any secret.
var sessionKeyField = regexp.MustCompile(`("session_key"\s*:\s*")[^"]*"`)

// oneLine shortens an answer for printing, with session keys masked.
func oneLine(b []byte) string {
	s := strings.TrimSpace(sessionKeyField.ReplaceAllString(string(b), `${1}[redacted]"`))
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "..."
	}
	return s
}

// demoReceiver is the demo's app: an HTTP endpoint that accepts an event only when its
// X-Wxgate-Signature verifies, as a real backend must.
type demoReceiver struct {
	url    string
	secret string
	events chan event.Event
	srv    *http.Server
}

func startDemoReceiver() (*demoReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("app receiver: %w", err)
	}
	r := &demoReceiver{url: "http://" + ln.Addr().String() + "/wechat/events", events: make(chan event.Event, 16)}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *demoReceiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil || event.Verify(r.secret, req.Header.Get(event.HeaderSignature), body, time.Now(), event.DefaultTolerance) != nil {
		http.Error(w, "forged or stale event", http.StatusUnauthorized)
		return
	}
	var ev event.Event
	if json.Unmarshal(body, &ev) != nil {
		http.Error(w, "not an event", http.StatusBadRequest)
		return
	}
	select {
	case r.events <- ev:
	default: // the demo reads every event it triggers; never block WeChat's delivery
	}
	if reply := demoReply(ev); reply != nil { // a push WeChat wants answered (demo_pushreply.go)
		w.Header().Set("Content-Type", "application/json")
		w.Write(reply)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (r *demoReceiver) close() { r.srv.Close() }

// randomAESKey returns a fresh 43-character EncodingAESKey.
func randomAESKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return strings.TrimRight(base64.StdEncoding.EncodeToString(b), "=")
}
