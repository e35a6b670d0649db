package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
)

// demoConfig is the throwaway config of `wxgate demo`; %s are filled with fresh random values.
const demoConfig = `
[server]
app_listen = "127.0.0.1:0"
callback_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[upstream]
weixin = "%s"
timeout = "3s"
[[app]]
name = "demo"
appid = "wx%s"
secret = "%s"
[app.xpay]
offer_id = "1450000001"
app_key = "%s"
sandbox_app_key = "%s"
`

// demoEnv is a running emulator and gateway on loopback, as `wxgate demo` and tests use them.
type demoEnv struct {
	emu      *emulator.Emulator
	emuAddr  string
	srv      *proxy.Server
	appURL   string
	adminURL string
	cfg      *policies.Config
}

// startDemoEnv starts the emulator and wxgate on free loopback ports with a fresh config.
func startDemoEnv() (*demoEnv, error) {
	emuLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emulator listener: %w", err)
	}
	text := fmt.Sprintf(demoConfig, "http://"+emuLn.Addr().String(), randomHex(8), randomHex(16), randomHex(16), randomHex(16))
	cfg, err := policies.Parse([]byte(text), os.TempDir())
	if err != nil {
		emuLn.Close()
		return nil, fmt.Errorf("demo config: %w", err)
	}
	emu, err := emulator.New(emulatorConfig(cfg))
	if err != nil {
		emuLn.Close()
		return nil, fmt.Errorf("emulator: %w", err)
	}
	go emu.Serve(emuLn)
	g, err := proxy.NewGateway(cfg, proxy.Options{})
	if err != nil {
		emu.Shutdown()
		return nil, err
	}
	ls, err := proxy.Listen(cfg.Server)
	if err != nil {
		emu.Shutdown()
		return nil, err
	}
	srv := proxy.NewServer(g)
	srv.Start(ls)
	return &demoEnv{
		emu: emu, emuAddr: "http://" + emuLn.Addr().String(), srv: srv, cfg: cfg,
		appURL: "http://" + ls.App.Addr().String(), adminURL: "http://" + ls.Admin.Addr().String(),
	}, nil
}

// Close stops the gateway and the emulator.
func (d *demoEnv) Close() error {
	return errors.Join(d.srv.Shutdown(), d.emu.Shutdown())
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
	steps := demoSteps(env, w)
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
	var openid string
	order := "demo" + randomHex(6)
	var balance float64
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
	var reqBody []byte
	if body != nil {
		var err error
		if reqBody, err = json.Marshal(body); err != nil {
			return 0, err
		}
	}
	req, err := http.NewRequestWithContext(w.ctx, method, w.base+path, bytes.NewReader(reqBody))
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := w.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return 0, err
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
	if len(s) > 220 {
		s = s[:220] + "..."
	}
	return s
}
