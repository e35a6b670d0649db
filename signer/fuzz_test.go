package signer

import (
	"slices"
	"testing"
)

// The fuzz targets run their seed corpora in every `go test`; `go test -fuzz FuzzParseXML ./signer`
// explores further.

func FuzzParseXML(f *testing.F) {
	v2 := loadV2Vectors(f)
	f.Add(AppendXML(nil, shuffled(v2.Sign.Params)))
	f.Add(AppendXML(nil, []Param{{"a", "x]]>y\r\n"}, {"b", ""}}))
	f.Add([]byte(`<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>`))
	f.Add([]byte("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<root>\n<a>1</a>\n</root>"))
	f.Add([]byte(`<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><a>&e;</a></xml>`))
	f.Add([]byte(`<xml><a><b>1</b></a></xml>`))
	f.Add([]byte(`<xml><a>1</a><a>2</a></xml>`))
	f.Add([]byte(`<xml><a>&#13;&lt;</a><!-- c --></xml>`))
	f.Add([]byte(`<xml><a>1</a>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		params, err := ParseXML(body)
		if err != nil {
			return
		}
		if len(params) > maxXMLParams {
			t.Fatalf("%d params", len(params))
		}
		for i, p := range params {
			if p.Key == "" {
				t.Fatal("empty key")
			}
			if _, dup := ParamValue(params[:i], p.Key); dup {
				t.Fatalf("duplicate key %q", p.Key)
			}
		}
		again, err := ParseXML(AppendXML(nil, params))
		if err != nil {
			t.Fatalf("ParseXML(AppendXML(%q)): %v", params, err)
		}
		if !slices.Equal(again, params) {
			t.Fatalf("round trip changed %q to %q", params, again)
		}
	})
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add(string(AppendAuthorization(nil, "1900009191", "593BEC0C930BF1AFEB40B4A08C8FB242", "uOVR+/==", "1554208460", "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C")))
	f.Add(`WECHATPAY2-SHA256-RSA2048 mchid="1",serial_no="5",timestamp="4",nonce_str="2",signature="3"`)
	f.Add(`WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="1"`)
	f.Add(`WECHATPAY2-SHA256-RSA2048 mchid=1`)
	f.Add(`WECHATPAY2-SHA256-RSA2048 mchid="`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, v string) {
		a, err := ParseAuthorization(v)
		if err != nil {
			return
		}
		if a.MchID == "" || a.NonceStr == "" || a.Signature == "" || a.Timestamp == "" || a.SerialNo == "" {
			t.Fatalf("accepted %q with an empty field: %+v", v, a)
		}
		again, err := ParseAuthorization(string(AppendAuthorization(nil, a.MchID, a.NonceStr, a.Signature, a.Timestamp, a.SerialNo)))
		if err != nil || again != a {
			t.Fatalf("round trip of %+v: %+v, %v", a, again, err)
		}
	})
}

func FuzzPushDecrypt(f *testing.F) {
	v := loadMsgpushVectors(f)
	c, err := NewPushCrypter(v.SafeModeDecrypt.EncodingAESKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v.SafeModeDecrypt.Encrypt)
	f.Add(v.SafeModeEncryptReply.ExpectedEncrypt)
	f.Add(c.Encrypt([16]byte{}, nil, ""))
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Fuzz(func(t *testing.T, enc string) {
		random, msg, appID, err := c.decrypt(enc)
		if err != nil {
			return
		}
		if len(random) != 16 {
			t.Fatalf("random prefix of %d bytes", len(random))
		}
		var r [16]byte
		copy(r[:], random)
		msg2, appID2, err := c.Decrypt(c.Encrypt(r, msg, appID))
		if err != nil || string(msg2) != string(msg) || appID2 != appID {
			t.Fatalf("round trip: %q, %q, %v; want %q, %q", msg2, appID2, err, msg, appID)
		}
	})
}
