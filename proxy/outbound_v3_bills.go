package proxy

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/valyala/fasthttp"
)

// billHashes remembers the SHA-1 that a verified tradebill/fundflowbill answer announced for its
// download token, so that the (unsigned) bill file can be checked when it passes through.
//
// It is a best-effort cache, which is what ristretto is built for: if an entry is dropped, the
// file still passes with its SHA-1 exposed in X-Wxgate-Bill-Sha1 for the app to compare, only the
// automatic check is skipped (X-Wxgate-Bill-Verified: unknown).
type billHashes struct {
	cache *ristretto.Cache[string, string]
}

// billHashTTL covers the download URL's validity (30 s to 5 min) with room to spare.
const billHashTTL = 10 * time.Minute

func newBillHashes() (*billHashes, error) {
	c, err := ristretto.NewCache(&ristretto.Config[string, string]{
		NumCounters: 1 << 14, MaxCost: 1 << 11, BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("bill hash cache: %w", err)
	}
	return &billHashes{cache: c}, nil
}

// remember records the hash of a verified bill answer {hash_type, hash_value, download_url}.
func (b *billHashes) remember(body []byte) {
	var ans struct {
		HashType    string `json:"hash_type"`
		HashValue   string `json:"hash_value"`
		DownloadURL string `json:"download_url"`
	}
	if json.Unmarshal(body, &ans) != nil || !strings.EqualFold(ans.HashType, "SHA1") || ans.HashValue == "" {
		return
	}
	if token := downloadToken(ans.DownloadURL); token != "" {
		b.cache.SetWithTTL(token, strings.ToLower(ans.HashValue), 1, billHashTTL)
		b.cache.Wait()
	}
}

// expected returns the announced hash for a download token, if still remembered.
func (b *billHashes) expected(token string) (string, bool) {
	return b.cache.Get(token)
}

func downloadToken(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Query().Get("token")
}

// relayBillFile passes an unsigned bill file through with its SHA-1 (of the decompressed CSV, as
// WeChat Pay announces it), and refuses it when it does not match the announced hash.
func (g *generation) relayBillFile(ctx *fasthttp.RequestCtx, resp *fasthttp.Response) {
	if resp.StatusCode() != fasthttp.StatusOK {
		// Errors on the download are signed JSON like any other answer.
		g.relayVerifiedOr502(ctx, resp)
		return
	}
	sum, err := billSHA1(resp.Body())
	if err != nil {
		g.fail(ctx, routeV3, newError(fasthttp.StatusBadGateway, CodeBillHashMismatch, "the bill file is not valid gzip: "+err.Error()))
		return
	}
	verified := "unknown"
	if want, ok := g.bills.expected(string(ctx.QueryArgs().Peek("token"))); ok {
		if subtle.ConstantTimeCompare([]byte(want), []byte(sum)) != 1 {
			g.fail(ctx, routeV3, newError(fasthttp.StatusBadGateway, CodeBillHashMismatch,
				"the bill file's SHA-1 differs from the hash_value the signed bill answer announced; download it again"))
			return
		}
		verified = "true"
	}
	relay(ctx, resp)
	ctx.Response.Header.Set(HeaderUnsigned, "true") // like every unsigned download (outbound_media.go)
	ctx.Response.Header.Set("X-Wxgate-Bill-Sha1", sum)
	ctx.Response.Header.Set("X-Wxgate-Bill-Verified", verified)
	g.observe(ctx, routeV3, resp.StatusCode())
}

// relayVerifiedOr502 relays a signed answer of the merchant chosen for ctx, or fails it.
func (g *generation) relayVerifiedOr502(ctx *fasthttp.RequestCtx, resp *fasthttp.Response) {
	m, aerr := g.merchant(ctx)
	if aerr == nil {
		if err := g.verifyV3(m, &resp.Header, resp.Body()); err != nil {
			g.answerRefused(ctx, g.mch, payAPI(ctx.Path()), m, &resp.Header, err)
			aerr = newError(fasthttp.StatusBadGateway, CodeResponseSignature, "WeChat Pay's answer failed verification: "+err.Error())
		}
	}
	if aerr != nil {
		g.fail(ctx, routeV3, aerr)
		return
	}
	relay(ctx, resp)
	g.observe(ctx, routeV3, resp.StatusCode())
}

// billSHA1 is the lowercase hex SHA-1 of a bill file, decompressed first when gzip.
func billSHA1(body []byte) (string, error) {
	h := sha1.New()
	if bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		if _, err := io.Copy(h, io.LimitReader(zr, 1<<30)); err != nil {
			return "", err
		}
	} else {
		h.Write(body)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
