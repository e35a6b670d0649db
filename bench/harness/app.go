package harness

import (
	"bytes"
	"encoding/json"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/signer"
)

// appServer is the benchmark's stand-in for the customer's backend, in the harness process:
//
//   - /events accepts what wxgate forwards, after checking X-Wxgate-Signature as a real app must;
//   - /direct/v3 and /direct/push verify and decrypt WeChat's callbacks themselves: what an app
//     without wxgate does (the "direct" column; it keeps no nonce store);
//   - any other path answers 200 at once: the target of the pass-through proxies, which verify
//     nothing.
type appServer struct {
	srv      *fasthttp.Server
	ln       net.Listener // closed by stop too: Shutdown misses a listener Serve has not taken yet
	url      string
	done     chan struct{}
	secret   string
	v3       *signer.RSAVerifier
	aead     *signer.AEADKey
	push     appCreds
	crypter  *signer.PushCrypter
	accepted atomic.Uint64
	refused  atomic.Uint64
}

// startApp serves the app on a loopback port.
func startApp(m *material) (*appServer, error) {
	aead, err := signer.NewAEADKey([]byte(m.apiv3Key))
	if err != nil {
		return nil, err
	}
	crypter, err := signer.NewPushCrypter(m.apps[0].AESKey)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &appServer{
		url: "http://" + ln.Addr().String(), ln: ln, done: make(chan struct{}), secret: m.forwardSecret,
		v3: signer.NewRSAVerifier(&m.payKey.PublicKey), aead: aead, push: m.apps[0], crypter: crypter,
	}
	a.srv = &fasthttp.Server{
		Handler: a.handle, Name: "bench-app", Concurrency: 10000, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, NoDefaultDate: true, CloseOnShutdown: true,
	}
	go func() { a.srv.Serve(ln); close(a.done) }()
	return a, nil
}

func (a *appServer) stop() {
	a.srv.Shutdown()
	a.ln.Close() // Shutdown closes only a listener Serve has taken; this ends a Serve not there yet
	<-a.done
}

func (a *appServer) handle(ctx *fasthttp.RequestCtx) {
	var ok bool
	switch string(ctx.Path()) {
	case "/events":
		ok = event.Verify(a.secret, string(ctx.Request.Header.Peek(event.HeaderSignature)), ctx.PostBody(), time.Now(), event.DefaultTolerance) == nil
	case pathDirectV3:
		ok = a.openV3(ctx) == nil
	case pathDirectPush:
		ok = a.openPush(ctx) == nil
		if ok {
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"ErrCode":0,"ErrMsg":"success"}`)
		}
	default:
		ctx.SetBodyString("ok")
		return
	}
	if !ok {
		a.refused.Add(1)
		ctx.Error("refused", fasthttp.StatusUnauthorized)
		return
	}
	a.accepted.Add(1)
}

// Paths of the app's own verification (the "direct" columns).
const (
	pathDirectV3   = "/direct/v3"
	pathDirectPush = "/direct/push"
)

// openV3 verifies an APIv3 notification's signature and decrypts its resource.
func (a *appServer) openV3(ctx *fasthttp.RequestCtx) error {
	h := &ctx.Request.Header
	body := ctx.PostBody()
	msg := signer.AppendResponseMessage(nil, string(h.Peek("Wechatpay-Timestamp")), string(h.Peek("Wechatpay-Nonce")), body)
	if err := a.v3.Verify(msg, string(h.Peek("Wechatpay-Signature"))); err != nil {
		return err
	}
	var n struct {
		Resource struct {
			Ciphertext, Nonce string
			AssociatedData    string `json:"associated_data"`
		}
	}
	if err := json.Unmarshal(body, &n); err != nil {
		return err
	}
	_, err := a.aead.Open(nil, n.Resource.Nonce, n.Resource.AssociatedData, n.Resource.Ciphertext)
	return err
}

// openPush verifies a safe-mode push's msg_signature and decrypts it.
func (a *appServer) openPush(ctx *fasthttp.RequestCtx) error {
	q := ctx.QueryArgs()
	var b struct{ Encrypt string }
	if err := json.Unmarshal(ctx.PostBody(), &b); err != nil {
		return err
	}
	want := signer.PushSignature(a.push.PushToken, string(q.Peek("timestamp")), string(q.Peek("nonce")), b.Encrypt)
	if !bytes.Equal(q.Peek("msg_signature"), []byte(want)) {
		return errRefused
	}
	_, _, err := a.crypter.Decrypt(b.Encrypt)
	return err
}
