package proxy_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestV3CallbackForgedSerialsDownloadNothing: 200 notifications, 50 at a time, to a certificates
// merchant's door, each with a fresh timestamp and a forged Wechatpay-Serial of 3000 characters
// (as much as the door's headers hold), are refused at once with 401, without one download of
// the platform certificates, and the refusal echoes a shortened serial. Before, each waited for a
// download (one a second) and stayed remembered for 30 s with its whole serial.
func TestV3CallbackForgedSerialsDownloadNothing(t *testing.T) {
	e := startEnv(t, nil)
	e.payJSAPI(t, "certs", "forged-serial-warm", 100) // certificates downloaded, an event delivered
	e.recv.waitEvents(1, waitTime)
	downloads := e.emu.Calls("/v3/certificates")
	url := e.callbackURL + "/callbacks/wechatpay/certs"
	const workers, each = 50, 4 // 50 connections at once: within callback_max_conns_per_ip
	var wg sync.WaitGroup
	errs := make(chan string, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				if msg := forgedSerialNotification(e, url, w*each+j); msg != "" {
					errs <- msg
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a forged serial: %s", err)
	}
	if got := e.emu.Calls("/v3/certificates") - downloads; got != 0 {
		t.Fatalf("forged serials made %d certificate downloads, want 0", got)
	}
	if evs, _, _ := e.recv.snapshot(); len(evs) != 1 {
		t.Fatalf("the app got %d events, want the 1 genuine", len(evs))
	}
}

// forgedSerialNotification sends forged notification i to url; "" when it was refused as it
// should be, else what happened.
func forgedSerialNotification(e *testEnv, url string, i int) string {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.Set("Wechatpay-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	req.Header.Set("Wechatpay-Nonce", fmt.Sprintf("forged-%d", i))
	req.Header.Set("Wechatpay-Signature", strings.Repeat("A", 344))
	req.Header.Set("Wechatpay-Serial", fmt.Sprintf("%X%s", i, strings.Repeat("F", 3000)))
	req.SetBodyString(`{"id":"forged","event_type":"TRANSACTION.SUCCESS","resource":{}}`)
	if err := e.client.DoTimeout(req, resp, 10*time.Second); err != nil {
		return err.Error()
	}
	if resp.StatusCode() != 401 || len(resp.Body()) > 400 || !strings.Contains(string(resp.Body()), "upper-case hex") {
		return fmt.Sprintf("%d %.300s", resp.StatusCode(), resp.Body())
	}
	return ""
}
