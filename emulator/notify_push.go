package emulator

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/wxgate/wxgate/signer"
)

// Mini-program message push (消息推送, xpay.md §4): the query carries signature = SHA-1 of the
// sorted token, timestamp and nonce; safe mode encrypts the event with the EncodingAESKey and
// adds msg_signature over the ciphertext too.

// Message push formats and modes (App.PushFormat, App.PushMode).
const (
	pushJSON   = "json"
	pushXML    = "xml"
	pushSafe   = "safe"   // 安全模式: only the ciphertext
	pushCompat = "compat" // 兼容模式: the plaintext fields and the ciphertext
	pushPlain  = "plain"  // 明文模式: only the plaintext, the body unsigned
)

// Content-Types of message pushes; Deliver tells the push's format by them.
const (
	pushJSONContentType = "application/json"
	pushXMLContentType  = "text/xml"
)

// pushSettings is an app's message push configuration, checked and prepared.
type pushSettings struct {
	url        string              // "" pushes nothing
	token      string              //
	format     string              // pushJSON or pushXML
	mode       string              // pushSafe, pushCompat or pushPlain
	originalID string              // ToUserName
	crypter    *signer.PushCrypter // nil without an EncodingAESKey
}

// newPushSettings checks a's message push settings and fills in the defaults. An app that
// pushes (PushURL set) needs a token, and an EncodingAESKey unless its mode is plain.
func newPushSettings(a App) (*pushSettings, error) {
	ps := &pushSettings{url: a.PushURL, token: a.PushToken, format: a.PushFormat, mode: a.PushMode, originalID: a.OriginalID}
	if ps.format == "" {
		ps.format = pushJSON
	}
	if ps.mode == "" {
		ps.mode = pushSafe
	}
	if ps.originalID == "" {
		ps.originalID = "gh_" + sha1Hex([]byte("wxgate-emulator:" + a.AppID))[:12]
	}
	var errs []error
	if ps.format != pushJSON && ps.format != pushXML {
		errs = append(errs, fmt.Errorf("push format %q is not json or xml", a.PushFormat))
	}
	if ps.mode != pushSafe && ps.mode != pushCompat && ps.mode != pushPlain {
		errs = append(errs, fmt.Errorf("push mode %q is not safe, compat or plain", a.PushMode))
	}
	if a.PushAESKey != "" {
		c, err := signer.NewPushCrypter(a.PushAESKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("push AES key: %w", err))
		}
		ps.crypter = c
	}
	if ps.url != "" {
		if u, err := url.Parse(ps.url); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, fmt.Errorf("push URL %q is not an absolute http(s) URL", ps.url))
		}
		if ps.token == "" {
			errs = append(errs, errors.New("push URL is set but push token is empty"))
		}
		if ps.mode != pushPlain && a.PushAESKey == "" {
			errs = append(errs, fmt.Errorf("push mode %s needs a push AES key", ps.mode))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ps, nil
}

// pushHead is what a message push needs from the event it carries.
type pushHead struct {
	ToUserName   string `json:"ToUserName" xml:"ToUserName"`
	FromUserName string `json:"FromUserName" xml:"FromUserName"`
	OpenID       string `json:"OpenId" xml:"OpenId"`
}

// parsePushHead reads the head of an event in format.
func parsePushHead(format string, msg []byte) (pushHead, error) {
	var h pushHead
	if format == pushXML {
		if err := xml.Unmarshal(msg, &h); err != nil {
			return h, fmt.Errorf("the event is not XML: %w", err)
		}
		return h, nil
	}
	if !isJSONObject(msg) {
		return h, errors.New("the event is not a JSON object")
	}
	if err := json.Unmarshal(msg, &h); err != nil {
		return h, fmt.Errorf("the event's head: %w", err)
	}
	return h, nil
}

// BuildPushMessage builds a message push of msg — the plaintext event, JSON or XML as the app's
// PushFormat says — to url, wrapped per the app's PushMode: plain (body = msg), safe (body
// {"ToUserName","Encrypt"} or <xml><ToUserName/><Encrypt/></xml>, Encrypt being msg encrypted
// with the EncodingAESKey for the appid), or compat (msg with Encrypt added). The query carries
// signature (SHA-1 of the sorted token, timestamp and nonce), timestamp, nonce, openid (the
// event's OpenId, else its FromUserName) and, in safe and compat modes, encrypt_type=aes and
// msg_signature (SHA-1 of the sorted token, timestamp, nonce and Encrypt). opts.ID sets the
// Notification's ID (nothing sent carries it); opts.Timestamp, opts.Nonce and opts.ForeignKey
// (a token nobody configured) forge it; Serial and SignTest are WeChat Pay's and rejected.
func (e *Emulator) BuildPushMessage(appID string, msg []byte, url string, opts NotifyOptions) (Notification, error) {
	a := e.apps[appID]
	if a == nil {
		return Notification{}, fmt.Errorf("emulator: build message push: unknown appid %q", appID)
	}
	n, err := e.buildPush(a, msg, url, opts)
	if err != nil {
		return Notification{}, fmt.Errorf("emulator: build message push for %s: %w", appID, err)
	}
	return n, nil
}

// buildPush is BuildPushMessage for a known app.
func (e *Emulator) buildPush(a *appState, msg []byte, target string, opts NotifyOptions) (Notification, error) {
	ps := a.push
	switch {
	case opts.Serial != "" || opts.SignTest:
		return Notification{}, errors.New("options Serial and SignTest apply to WeChat Pay notifications only")
	case ps.token == "":
		return Notification{}, errors.New("the app has no push token")
	case ps.mode != pushPlain && ps.crypter == nil:
		return Notification{}, fmt.Errorf("push mode %s needs a push AES key", ps.mode)
	}
	head, err := parsePushHead(ps.format, msg)
	if err != nil {
		return Notification{}, err
	}
	token := ps.token
	if opts.ForeignKey {
		token = "foreign-" + randomNonce(24)
	}
	now := opts.Timestamp
	if now.IsZero() {
		now = e.now()
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := opts.Nonce
	if nonce == "" {
		nonce = randomDigits()
	}
	q := []string{
		"signature=" + signer.PushSignature(token, ts, nonce),
		"timestamp=" + ts,
		"nonce=" + url.QueryEscape(nonce),
	}
	openid := head.OpenID
	if openid == "" {
		openid = head.FromUserName
	}
	if openid != "" {
		q = append(q, "openid="+url.QueryEscape(openid))
	}
	body := msg
	if ps.mode != pushPlain {
		var random [16]byte
		rand.Read(random[:]) // never fails (crypto/rand contract since Go 1.24)
		encrypt := ps.crypter.Encrypt(random, msg, a.cfg.AppID)
		q = append(q, "encrypt_type=aes", "msg_signature="+signer.PushSignature(token, ts, nonce, encrypt))
		toUser := head.ToUserName
		if toUser == "" {
			toUser = ps.originalID
		}
		if body, err = wrapEncrypted(ps.format, ps.mode, msg, toUser, encrypt); err != nil {
			return Notification{}, err
		}
	}
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	contentType := pushJSONContentType
	if ps.format == pushXML {
		contentType = pushXMLContentType
	}
	return Notification{
		Kind:   KindPush,
		URL:    target + sep + strings.Join(q, "&"),
		Header: map[string]string{"Content-Type": contentType, "User-Agent": notifyUserAgent},
		Body:   bytes.Clone(body),
		ID:     cmp.Or(opts.ID, sha1Hex(msg)),
	}, nil
}

// wrapEncrypted returns the body of a safe-mode (ToUserName and Encrypt) or compat-mode (msg
// with Encrypt added) push.
func wrapEncrypted(format, mode string, msg []byte, toUser, encrypt string) ([]byte, error) {
	if format == pushXML {
		if mode == pushSafe {
			return signer.AppendXML(nil, []signer.Param{param("ToUserName", toUser), param("Encrypt", encrypt)}), nil
		}
		m := bytes.TrimSpace(msg)
		end := bytes.LastIndex(m, []byte("</xml>"))
		if end < 0 {
			return nil, errors.New("the event has no </xml> end tag")
		}
		out := append(bytes.Clone(m[:end]), signer.AppendXML(nil, []signer.Param{param("Encrypt", encrypt)})[len("<xml>"):]...)
		return out, nil
	}
	enc, err := json.Marshal(encrypt) // base64: nothing to escape
	if err != nil {
		return nil, fmt.Errorf("encode Encrypt: %w", err)
	}
	if mode == pushSafe {
		to, err := json.Marshal(toUser)
		if err != nil {
			return nil, fmt.Errorf("encode ToUserName: %w", err)
		}
		return fmt.Appendf(nil, `{"ToUserName":%s,"Encrypt":%s}`, to, enc), nil
	}
	m := bytes.TrimSpace(msg) // a JSON object: parsePushHead checked it
	out := bytes.Clone(m[:len(m)-1])
	if len(bytes.TrimSpace(out)) > 1 { // not "{"
		out = append(out, ',')
	}
	return fmt.Appendf(out, `"Encrypt":%s}`, enc), nil
}

// pushFormatOf tells a push's format by its Content-Type.
func pushFormatOf(n Notification) string {
	if strings.Contains(n.Header["Content-Type"], "xml") {
		return pushXML
	}
	return pushJSON
}

// randomDigits returns a random decimal nonce, like message push's ("415670741").
func randomDigits() string {
	var b [4]byte
	rand.Read(b[:]) // never fails (crypto/rand contract since Go 1.24)
	return strconv.FormatUint(uint64(binary.BigEndian.Uint32(b[:])), 10)
}
