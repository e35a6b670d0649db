package policies

import (
	"errors"
	"strings"
	"testing"
)

const merchantBase = minimal + `
[[merchant]]
name = "main"
mchid = "1900000001"
appid = "wx0123456789abcdef"
serial_no = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
private_key_file = "merchant_key.pem"
apiv3_key = "0123456789abcdef0123456789abcdef"
public_key_id = "PUB_KEY_ID_0000000000000024101100397200000006"
public_key_file = "wechatpay_pub.pem"
apiv2_key = "192006250b4c09247ec02edce69f6a2d"
client_cert_file = "client_cert.pem"
client_key_file = "client_key.pem"
`

func TestMerchantLoads(t *testing.T) {
	c, err := Parse([]byte(merchantBase), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	m, ok := c.Merchant("main")
	if !ok {
		t.Fatal("merchant not found")
	}
	k := m.Keys()
	if k.PrivateKey == nil || k.PublicKey == nil || k.ClientCert == nil {
		t.Fatalf("keys not loaded: %+v", k)
	}
	if m.Verify != VerifyPublicKey || !m.UsesPublicKey() || m.UsesCertificates() {
		t.Fatalf("verify mode %q", m.Verify)
	}
	// PKCS#1 keys load too, and without a public key id the mode is certificates.
	cfg := strings.Replace(merchantBase, `"merchant_key.pem"`, `"merchant_key_pkcs1.pem"`, 1)
	cfg = strings.Replace(cfg, "public_key_id = \"PUB_KEY_ID_0000000000000024101100397200000006\"\n", "", 1)
	cfg = strings.Replace(cfg, "public_key_file = \"wechatpay_pub.pem\"\n", "", 1)
	c, err = Parse([]byte(cfg), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Merchants[0]; m.Verify != VerifyCertificates || m.Keys().PrivateKey == nil || m.Keys().PublicKey != nil {
		t.Fatalf("certificates mode: %q %+v", m.Verify, m.Keys())
	}
}

// TestMerchantProblems names every bad key, file and length, all at once.
func TestMerchantProblems(t *testing.T) {
	tests := []struct {
		name, from, to, key, want string
	}{
		{"short rsa key", `"merchant_key.pem"`, `"short_key.pem"`, "merchant[0].private_key_file", "2048"},
		{"ec key", `"merchant_key.pem"`, `"ec_key.pem"`, "merchant[0].private_key_file", "RSA"},
		{"missing key file", `"merchant_key.pem"`, `"nope.pem"`, "merchant[0].private_key_file", "cannot read"},
		{"public key where private expected", `"merchant_key.pem"`, `"wechatpay_pub.pem"`, "merchant[0].private_key_file", ""},
		{"apiv3 key 31 bytes", `"0123456789abcdef0123456789abcdef"`, `"0123456789abcdef0123456789abcde"`, "merchant[0].apiv3_key", "32"},
		{"apiv2 key wrong length", `"192006250b4c09247ec02edce69f6a2d"`, `"short"`, "merchant[0].apiv2_key", "32"},
		{"bad public key id", `PUB_KEY_ID_0000000000000024101100397200000006`, `KEY_1`, "merchant[0].public_key_id", "PUB_KEY_ID_"},
		{"bad public key file", `"wechatpay_pub.pem"`, `"client_cert.pem"`, "merchant[0].public_key_file", ""},
		{"cert without key", "client_key_file = \"client_key.pem\"\n", "", "merchant[0].client_cert_file", "together"},
		{"cert not matching key", `"client_key.pem"`, `"short_key.pem"`, "merchant[0].client_cert_file", ""},
		{"bad serial", `"5157F09EFDC096DE15EBE81A47057A7232F1B8E1"`, `"not-hex"`, "merchant[0].serial_no", ""},
		{"bad mchid", `"1900000001"`, `"19x"`, "merchant[0].mchid", ""},
		{"bad verify", "apiv2_key", "verify = \"sometimes\"\napiv2_key", "merchant[0].verify", "public_key"},
		{"bad appid in appids", "apiv2_key", "appids = [\"wx00000000000000a1\", \"wxNOTHEX\"]\napiv2_key", "merchant[0].appids[1]", "wx followed by 16 hex"},
		{"duplicate appid in appids", "apiv2_key", "appids = [\"wx00000000000000a1\", \"wx00000000000000a1\"]\napiv2_key", "merchant[0].appids[1]", "already appids[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(strings.Replace(merchantBase, tt.from, tt.to, 1)), "testdata")
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a validation error, got %v", err)
			}
			found := false
			for _, p := range ve.Problems {
				if p.Key == tt.key && strings.Contains(p.Message, tt.want) {
					found = true
				}
				if strings.Contains(p.Message, "0123456789abcdef0123456789abcde") || strings.Contains(p.Message, "192006250b4c") {
					t.Errorf("problem reveals a key: %s", p.Message)
				}
			}
			if !found {
				t.Fatalf("no problem at %s mentioning %q: %v", tt.key, tt.want, err)
			}
		})
	}
	// Certificates mode without an APIv3 key cannot download certificates.
	cfg := strings.Replace(merchantBase, "apiv3_key = \"0123456789abcdef0123456789abcdef\"\n", "verify = \"both\"\n", 1)
	if _, err := Parse([]byte(cfg), "testdata"); err == nil || !strings.Contains(err.Error(), "merchant[0].apiv3_key") {
		t.Fatalf("both without apiv3_key: %v", err)
	}
}

// TestMerchantAppIDs: appids lists the appids that pay into the merchant, appid first and once
// (repeating it in the list is allowed); without either nothing is listed.
func TestMerchantAppIDs(t *testing.T) {
	tests := []struct {
		name, lines string
		want        []string
	}{
		{"appid only", "", []string{"wx0123456789abcdef"}},
		{"appid and a list", `appids = ["wx00000000000000a1", "wx00000000000000b2"]`, []string{"wx0123456789abcdef", "wx00000000000000a1", "wx00000000000000b2"}},
		{"appid repeated in the list", `appids = ["wx00000000000000a1", "wx0123456789abcdef"]`, []string{"wx0123456789abcdef", "wx00000000000000a1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(strings.Replace(merchantBase, "apiv2_key", tt.lines+"\napiv2_key", 1)), "testdata")
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Merchants[0].PayingAppIDs(); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("PayingAppIDs() = %v, want %v", got, tt.want)
			}
		})
	}
	c, err := Parse([]byte(strings.Replace(merchantBase, "appid = \"wx0123456789abcdef\"\nserial_no", "serial_no", 1)), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Merchants[0].PayingAppIDs(); got != nil {
		t.Fatalf("no appid: PayingAppIDs() = %v, want nil", got)
	}
}
