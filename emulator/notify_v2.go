package emulator

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/wxgate/wxgate/signer"
)

// APIv2 notifications (wechatpay.md §8): the pay notification is a signed XML document; the
// refund notification carries the refund encrypted in req_info and no sign.

// BuildV2PayNotification builds an APIv2 pay notification of merchant mchID to url: XML with
// return_code SUCCESS and return_msg OK, appid, mch_id and a random nonce_str (each unless params
// has it), then params (the fields of wechatpay.md §8.1; empty values are left out), signed with
// the merchant's APIv2 key and the sign_type params names (MD5 when it names none).
func (e *Emulator) BuildV2PayNotification(mchID string, params []signer.Param, url string) (Notification, error) {
	m := e.merchant(mchID)
	if m == nil {
		return Notification{}, fmt.Errorf("emulator: build APIv2 pay notification: unknown merchant %q", mchID)
	}
	if m.v2 == nil {
		return Notification{}, fmt.Errorf("emulator: build APIv2 pay notification: merchant %s has no APIv2 key", mchID)
	}
	doc := v2Head(m, params, param("return_code", "SUCCESS"), param("return_msg", "OK"))
	signType, _ := signer.ParamValue(doc, "sign_type")
	// AppendSign sorts its argument; the document keeps WeChat Pay's field order.
	sign, err := m.v2.AppendSign(nil, signType, slices.Clone(doc))
	if err != nil {
		return Notification{}, fmt.Errorf("emulator: build APIv2 pay notification: %w", err)
	}
	// The event's digest leaves out what differs between builds of it: nonce_str and sign.
	digest := signer.AppendStringA(nil, slices.DeleteFunc(slices.Clone(doc), func(p signer.Param) bool {
		return p.Key == "nonce_str"
	}))
	doc = append(doc, param("sign", string(sign)))
	return Notification{
		Kind:   KindV2,
		URL:    url,
		Header: map[string]string{"Content-Type": v2ContentType, "User-Agent": notifyUserAgent},
		Body:   signer.AppendXML(nil, doc),
		ID:     sha1Hex(digest),
	}, nil
}

// BuildV2RefundNotification builds an APIv2 refund notification of merchant mchID to url: XML
// with return_code SUCCESS and return_msg OK, appid, mch_id, a random nonce_str, and req_info =
// the refund fields reqInfo (wechatpay.md §8.3) as <root>...</root>, encrypted with AES-256-ECB
// under the MD5 of the APIv2 key. It has no sign.
func (e *Emulator) BuildV2RefundNotification(mchID string, reqInfo []signer.Param, url string) (Notification, error) {
	m := e.merchant(mchID)
	if m == nil {
		return Notification{}, fmt.Errorf("emulator: build APIv2 refund notification: unknown merchant %q", mchID)
	}
	if m.v2 == nil {
		return Notification{}, fmt.Errorf("emulator: build APIv2 refund notification: merchant %s has no APIv2 key", mchID)
	}
	var fields []signer.Param
	for _, p := range reqInfo {
		if p.Value != "" {
			fields = append(fields, p)
		}
	}
	// AppendXML writes <xml>...</xml>; req_info's root element is <root>.
	inner := signer.AppendXML(nil, fields)
	plain := append([]byte("<root>"), inner[len("<xml>"):len(inner)-len("</xml>")]...)
	plain = append(plain, "</root>"...)
	doc := v2Head(m, nil, param("return_code", "SUCCESS"), param("return_msg", "OK"))
	doc = append(doc, param("req_info", m.v2.EncryptRefundInfo(plain)))
	return Notification{
		Kind:   KindV2,
		URL:    url,
		Header: map[string]string{"Content-Type": v2ContentType, "User-Agent": notifyUserAgent},
		Body:   signer.AppendXML(nil, doc),
		ID:     sha1Hex(plain),
	}, nil
}

// v2Head returns the head fields (unless params has them), then appid, mch_id and nonce_str
// (unless params has them), then params without empty values.
func v2Head(m *merchantState, params []signer.Param, head ...signer.Param) []signer.Param {
	defaults := slices.Concat(head, []signer.Param{
		param("appid", m.cfg.AppID), param("mch_id", m.cfg.MchID), param("nonce_str", randomNonce(32)),
	})
	var doc []signer.Param
	for _, d := range defaults {
		if _, given := signer.ParamValue(params, d.Key); !given {
			doc = append(doc, d)
		}
	}
	for _, p := range params {
		if p.Value != "" {
			doc = append(doc, p)
		}
	}
	return doc
}

// sha1Hex returns the lower-case hex SHA-1 of b.
func sha1Hex(b []byte) string {
	sum := sha1.Sum(b)
	return hex.EncodeToString(sum[:])
}
