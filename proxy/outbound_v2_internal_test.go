package proxy

import (
	"testing"

	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/signer"
)

// TestCheckV2Answer: an answer is verified with the sign type it names, else the one its
// sign's length tells (WeChat Pay has answered MD5 to HMAC-SHA256 requests, with the same key),
// else the request's.
func TestCheckV2Answer(t *testing.T) {
	key := signer.NewV2Key("answer-key-0123456789abcdef01234")
	signed := func(signType string, named bool) []byte {
		params := []signer.Param{{Key: "return_code", Value: "SUCCESS"}, {Key: "result_code", Value: "SUCCESS"}, {Key: "out_trade_no", Value: "st-1"}}
		if named {
			params = append(params, signer.Param{Key: "sign_type", Value: signType})
		}
		sign, err := key.AppendSign(nil, signType, params)
		if err != nil {
			t.Fatal(err)
		}
		return signer.AppendXML(nil, append(params, signer.Param{Key: "sign", Value: string(sign)}))
	}
	route := &policies.V2Route{}
	for _, c := range []struct {
		name      string
		requested string
		body      []byte
	}{
		{"MD5 answer to an HMAC-SHA256 request", signer.V2SignHMACSHA256, signed(signer.V2SignMD5, false)},
		{"HMAC-SHA256 answer to an MD5 request", signer.V2SignMD5, signed(signer.V2SignHMACSHA256, false)},
		{"HMAC-SHA256 answer to a request without sign_type", "", signed(signer.V2SignHMACSHA256, false)},
		{"answer naming its sign type", signer.V2SignMD5, signed(signer.V2SignHMACSHA256, true)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if unsigned, err := checkV2Answer(key, route, c.requested, c.body); err != nil || unsigned {
				t.Fatalf("unsigned %v, err %v; want a verified answer", unsigned, err)
			}
		})
	}
	// A sign of neither length is checked with the request's sign type, and fails.
	bad := []byte("<xml><return_code>SUCCESS</return_code><sign>ABC</sign></xml>")
	if _, err := checkV2Answer(key, route, signer.V2SignMD5, bad); err == nil {
		t.Fatal("a 3-character sign verified")
	}
	// An unsigned communication failure passes, marked, only as the <xml> document WeChat sends:
	// the same fields under another root (which ParseXML reads, for refund req_info) are refused.
	fail := "<return_code>FAIL</return_code><return_msg>system busy</return_msg>"
	if unsigned, err := checkV2Answer(key, route, signer.V2SignMD5, []byte("<xml>"+fail+"</xml>")); err != nil || !unsigned {
		t.Fatalf("unsigned FAIL: unsigned %v, err %v; want passed, marked", unsigned, err)
	}
	if _, err := checkV2Answer(key, route, signer.V2SignMD5, []byte("<root>"+fail+"</root>")); err == nil {
		t.Fatal("an unsigned FAIL under <root> passed")
	}
}
