package emulator

import (
	"slices"

	"github.com/wxgate/wxgate/signer"
)

// V2Tamper is a way the emulator forges its next signed APIv2 answers, to prove that a client
// verifies them: a client must reject every one of these.
type V2Tamper string

// The APIv2 forgeries the emulator can send.
const (
	V2TamperNone      V2Tamper = ""
	V2TamperWrongKey  V2Tamper = "wrong_key"  // signed with a key that is not the merchant's
	V2TamperField     V2Tamper = "field"      // a field changed after signing
	V2TamperSignStrip V2Tamper = "sign_strip" // a signed-type answer (result_code present) without sign
	// V2TamperFailNoSign: return_code turned to FAIL and the sign dropped, the business result
	// kept: a forgery hiding behind the rule that return_code FAIL answers are unsigned.
	V2TamperFailNoSign V2Tamper = "fail_no_sign"
	// V2TamperFailFields: the same with result_code dropped too, the answer's other fields kept.
	V2TamperFailFields V2Tamper = "fail_fields"
)

// TamperV2Next forges the next n signed APIv2 answers in the given way (n <= 0 stops forging).
// Answers WeChat Pay does not sign (payouts, red packets, files, return_code FAIL) are left alone.
func (e *Emulator) TamperV2Next(t V2Tamper, n int) {
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	x := e.extra()
	x.tamper, x.tamperLeft = t, max(n, 0)
}

// tamperV2 applies the pending APIv2 forgery, if any, to a signed answer's params.
func (e *Emulator) tamperV2(c *v2Call, params []signer.Param) []signer.Param {
	e.mch.mu.Lock()
	x := e.extra()
	t := x.tamper
	if t == V2TamperNone || x.tamperLeft == 0 {
		e.mch.mu.Unlock()
		return params
	}
	if x.tamperLeft--; x.tamperLeft == 0 {
		x.tamper = V2TamperNone
	}
	e.mch.mu.Unlock()
	unsigned := slices.DeleteFunc(slices.Clone(params), func(p signer.Param) bool { return p.Key == "sign" })
	switch t {
	case V2TamperWrongKey:
		sign, _ := signer.NewV2Key("not-the-merchant-key-0123456789ab").AppendSign(nil, c.signType, slices.Clone(unsigned))
		return append(unsigned, signer.Param{Key: "sign", Value: string(sign)})
	case V2TamperField:
		for i, p := range params {
			if p.Key == "result_code" {
				continue
			}
			if p.Key == "return_msg" {
				params[i].Value += "!"
				return params
			}
		}
		return append(params, signer.Param{Key: "injected", Value: "1"})
	case V2TamperSignStrip:
		return unsigned
	case V2TamperFailNoSign, V2TamperFailFields:
		for i, p := range unsigned {
			if p.Key == "return_code" {
				unsigned[i].Value = "FAIL"
			}
		}
		if t == V2TamperFailFields {
			unsigned = slices.DeleteFunc(unsigned, func(p signer.Param) bool { return p.Key == "result_code" })
		}
		return unsigned
	}
	return params
}
