package proxy

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/signer"
)

// v2SandboxKey is a merchant's APIv2 sandbox key: fetched with getsignkey on the first
// /sandboxnew/ call and kept until WeChat refuses a sign made with it.
type v2SandboxKey struct {
	mu  sync.Mutex // held during a fetch: one getsignkey in flight per merchant
	key *signer.V2Key
}

// drop forgets k if it is still the kept key, so that the next call fetches a new one.
func (s *v2SandboxKey) drop(k *signer.V2Key) {
	s.mu.Lock()
	if s.key == k {
		s.key = nil
	}
	s.mu.Unlock()
}

// sandboxKey returns m's sandbox key, fetching it with getsignkey (MD5 signed with the APIv2
// key, no client certificate) when none is kept. The key never appears in logs or errors.
func (g *generation) sandboxKey(m *merchantState) (*signer.V2Key, *apiError) {
	m.sandbox.mu.Lock()
	defer m.sandbox.mu.Unlock()
	if m.sandbox.key != nil {
		return m.sandbox.key, nil
	}
	params := []signer.Param{{Key: "mch_id", Value: m.mchID}, {Key: "nonce_str", Value: string(appendNonce(nil))}}
	sign, err := m.v2.AppendSign(nil, signer.V2SignMD5, params)
	if err != nil {
		return nil, newError(fasthttp.StatusInternalServerError, CodeInternal, "signing getsignkey failed: "+err.Error())
	}
	params = append(params, signer.Param{Key: "sign", Value: string(sign)})
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(g.mch.base + policies.PayV2SandboxSignKeyPath)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("text/xml; charset=utf-8")
	req.Header.SetUserAgent("wxgate")
	req.SetBodyRaw(signer.AppendXML(nil, params))
	if aerr := g.do(g.mch, policies.PayV2SandboxSignKeyPath, req, resp); aerr != nil {
		return nil, aerr
	}
	ans, err := signer.ParseXML(resp.Body())
	if err != nil {
		return nil, g.sandboxKeyError(m, fmt.Sprintf("its answer (HTTP %d) is not APIv2 XML", resp.StatusCode()))
	}
	rc, _ := signer.ParamValue(ans, "return_code")
	key, _ := signer.ParamValue(ans, "sandbox_signkey")
	if rc != "SUCCESS" || key == "" {
		msg, _ := signer.ParamValue(ans, "return_msg")
		return nil, g.sandboxKeyError(m, fmt.Sprintf("WeChat Pay answered return_code %q, return_msg %q", truncate([]byte(rc), 16), truncate([]byte(msg), 120)))
	}
	m.sandbox.key = signer.NewV2Key(key)
	return m.sandbox.key, nil
}

// sandboxKeyError logs (rate-limited) and returns the answer when getsignkey did not hand out a
// sandbox key.
func (g *generation) sandboxKeyError(m *merchantState, why string) *apiError {
	g.rate.error("sandbox-key\x00"+m.name, "APIv2 sandbox key could not be fetched", "merchant", m.name, "reason", why)
	return newError(fasthttp.StatusBadGateway, CodeSandboxKeyUnavailable,
		fmt.Sprintf("could not fetch merchant %q's APIv2 sandbox key with getsignkey: %s; check the merchant's apiv2_key and that it may use the sandbox", m.name, why))
}

// sandboxKeyRefused reports whether a /sandboxnew/ answer is a communication failure about the
// sign (return_code FAIL, return_msg naming the sign): the kept sandbox key is then dropped.
func sandboxKeyRefused(body []byte) bool {
	if !bytes.Contains(body, []byte("FAIL")) {
		return false
	}
	params, err := signer.ParseXML(body)
	if err != nil {
		return false
	}
	rc, _ := signer.ParamValue(params, "return_code")
	msg, _ := signer.ParamValue(params, "return_msg")
	return rc == "FAIL" && (bytes.Contains([]byte(msg), []byte("签名")) || bytes.Contains(bytes.ToLower([]byte(msg)), []byte("sign")))
}
