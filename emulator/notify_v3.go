package emulator

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wxgate/wxgate/signer"
)

// APIv3 notifications (wechatpay.md §3): a JSON envelope whose resource is encrypted with the
// merchant's APIv3 key, signed like an APIv3 answer.

// v3Envelope is the body of an APIv3 notification (wechatpay.md §3.2).
type v3Envelope struct {
	ID           string        `json:"id"`
	CreateTime   string        `json:"create_time"`
	ResourceType string        `json:"resource_type"`
	EventType    string        `json:"event_type"`
	Summary      string        `json:"summary"`
	Resource     v3NoticeCrypt `json:"resource"`
}

// v3NoticeCrypt is the encrypted resource of an APIv3 notification.
type v3NoticeCrypt struct {
	OriginalType   string `json:"original_type"`
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
}

// APIv3 event types the emulator sends.
const (
	EventTransactionSuccess = "TRANSACTION.SUCCESS" // a payment succeeded
	EventRefundSuccess      = "REFUND.SUCCESS"      // a refund succeeded
)

// v3Summaries are the summaries WeChat Pay gives its event types.
var v3Summaries = map[string]string{
	EventTransactionSuccess: "支付成功",
	EventRefundSuccess:      "退款成功",
	"REFUND.ABNORMAL":       "退款异常",
	"REFUND.CLOSED":         "退款关闭",
	EventComplaintCreate:    "产生新投诉",
	EventComplaintState:     "投诉状态变化",
	EventTransferFinished:   "商家转账单据终态通知",
	EventProfitSharing:      "分账",
	EventProfitSharingBack:  "分账回退",
}

// originalType is the resource type of an event type: "TRANSACTION.SUCCESS" -> "transaction",
// "REFUND.CLOSED" -> "refund".
func originalType(eventType string) string {
	kind, _, _ := strings.Cut(eventType, ".")
	return strings.ToLower(kind)
}

// v3ContentTypeNotify is the Content-Type of APIv3 notifications.
const v3ContentTypeNotify = "application/json"

// BuildV3Notification builds the APIv3 notification eventType (e.g. "TRANSACTION.SUCCESS",
// "REFUND.SUCCESS") of merchant mchID to url. resource is the plaintext JSON (a transaction or
// refund object); it is encrypted with AEAD_AES_256_GCM under the merchant's APIv3 key with a
// random 12-character nonce and associated_data = original_type (the event type's first word in
// lower case: "transaction", "refund"). The envelope (wechatpay.md §3.2) has a fresh uuid-like
// id, create_time in RFC 3339 with +08:00, resource_type "encrypt-resource" and WeChat Pay's
// summary (opts.ID sets the id). The body is signed over "timestamp\nnonce\nbody\n" like an answer (wechatpay.md §2),
// with the key opts.Serial (or the merchant's mode) names; opts can forge it.
func (e *Emulator) BuildV3Notification(mchID, eventType string, resource []byte, url string, opts NotifyOptions) (Notification, error) {
	return e.buildV3Notification(mchID, eventType, originalType(eventType), resource, url, opts)
}

// buildV3Notification is BuildV3Notification with the resource's original_type (also its
// associated_data) given: "mch_payment" for transfers, where it is not the event type's first word.
func (e *Emulator) buildV3Notification(mchID, eventType, otype string, resource []byte, url string, opts NotifyOptions) (Notification, error) {
	m := e.merchant(mchID)
	if m == nil {
		return Notification{}, fmt.Errorf("emulator: build %s notification: unknown merchant %q", eventType, mchID)
	}
	now := opts.Timestamp
	if now.IsZero() {
		now = e.now()
	}
	nonce := randomNonce(12)
	ct, err := m.aead.Seal(nonce, otype, resource)
	if err != nil {
		return Notification{}, fmt.Errorf("emulator: build %s notification: %w", eventType, err)
	}
	id := opts.ID
	if id == "" {
		id = newUUID()
	}
	env := &v3Envelope{
		ID:           id,
		CreateTime:   rfc3339(now),
		ResourceType: "encrypt-resource",
		EventType:    eventType,
		Summary:      v3Summaries[eventType],
		Resource: v3NoticeCrypt{
			OriginalType: otype, Algorithm: "AEAD_AES_256_GCM", Ciphertext: ct, AssociatedData: otype, Nonce: nonce,
		},
	}
	body, err := marshalV3(env)
	if err != nil {
		return Notification{}, fmt.Errorf("emulator: build %s notification: %w", eventType, err)
	}
	header, err := e.signV3Notification(m, body, now, opts)
	if err != nil {
		return Notification{}, fmt.Errorf("emulator: build %s notification: %w", eventType, err)
	}
	return Notification{Kind: KindV3, URL: url, Header: header, Body: body, ID: env.ID}, nil
}

// signV3Notification returns the headers of an APIv3 notification with body, made at now.
func (e *Emulator) signV3Notification(m *merchantState, body []byte, now time.Time, opts NotifyOptions) (map[string]string, error) {
	s, serial := e.notifySigner(m, opts.Serial, now)
	if opts.ForeignKey {
		s = foreignSigner()
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := opts.Nonce
	if nonce == "" {
		nonce = randomNonce(32)
	}
	var sig string
	if opts.SignTest {
		sig = probeSignature()
	} else {
		b, err := s.AppendSign(nil, signer.AppendResponseMessage(nil, ts, nonce, body))
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		sig = string(b)
	}
	return map[string]string{
		"Content-Type":             v3ContentTypeNotify,
		"User-Agent":               notifyUserAgent,
		"Wechatpay-Timestamp":      ts,
		"Wechatpay-Nonce":          nonce,
		"Wechatpay-Signature":      sig,
		"Wechatpay-Serial":         serial,
		"Wechatpay-Signature-Type": signer.AuthScheme,
	}, nil
}

// notifySigner picks the key of a notification to m and the serial naming it: the default one
// of m's mode when serial is "", the key serial names when WeChat Pay published it, else (a
// forged serial) the default key under serial.
func (e *Emulator) notifySigner(m *merchantState, serial string, now time.Time) (*signer.RSASigner, string) {
	k := e.mch.keys
	switch {
	case serial == "":
		return e.answerSigner(m, nil, now)
	case serial == k.id:
		s, _ := k.publicPair()
		return s, serial
	}
	if pc := e.listedPlatformCert(serial, now); pc != nil {
		return pc.signer, serial
	}
	s, _ := e.answerSigner(m, nil, now)
	return s, serial
}

// listedPlatformCert returns the unexpired platform certificate with serial, or nil; it issues
// none.
func (e *Emulator) listedPlatformCert(serial string, now time.Time) *platformCert {
	k := e.mch.keys
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, pc := range k.platform {
		if pc.serial == serial && now.Before(pc.cert.NotAfter) {
			return pc
		}
	}
	return nil
}

// newUUID returns a random UUID (version 4) in its canonical text form, like the ids of WeChat
// Pay's notifications.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand contract since Go 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
