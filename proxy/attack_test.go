package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/emulator"
)

// TestV3CallbackForgedSerialsDownloadNothing: 200 notifications, 50 at a time, to a certificates
// merchant's door, each with a fresh timestamp and a forged Wechatpay-Serial of 3000 characters
// (as much as the door's headers hold), are refused at once with 401, without one download of
// the platform certificates, and the refusal names its length, not its bytes. Before, each waited for a
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
	if resp.StatusCode() != 401 || len(resp.Body()) > 400 || !strings.Contains(string(resp.Body()), "a malformed serial (") || strings.Contains(string(resp.Body()), "FFFF") {
		return fmt.Sprintf("%d %.300s", resp.StatusCode(), resp.Body())
	}
	return ""
}

// staleAnswerApp is an app's event endpoint that answers its first event twice: 200, then, a
// moment later on the same connection, another 200 nobody asked for (signalled on stale). Every
// later event is refused with 503. requests counts the events it read.
func staleAnswerApp(t *testing.T, requests *atomic.Int64, stale chan<- struct{}) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if requests.Add(1) > 1 {
						io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
						continue
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
					time.Sleep(10 * time.Millisecond) // wxgate has read the answer and pooled the connection
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
					stale <- struct{}{}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/events"
}

// TestForwardNeverTakesAStaleAnswer: an app that answered an event twice left a second 200 on
// the pooled connection. The next event goes out on a new connection and gets the app's own
// answer (503: not acknowledged, WeChat retries). Before, it was written on that connection
// within 200 ms, took the stale 200 for its answer, and WeChat was told of a delivery the app
// had refused: the event was lost.
func TestForwardNeverTakesAStaleAnswer(t *testing.T) {
	var requests atomic.Int64
	stale := make(chan struct{}, 1)
	e := startEnv(t, func(s string) string {
		app := staleAnswerApp(t, &requests, stale)
		return regexp.MustCompile(`forward_url = "[^"]+"`).ReplaceAllString(s, `forward_url = "`+app+`"`)
	})
	notify := func(no string) emulator.Notification {
		res := strings.NewReplacer("tamper-1", no, `"4200"`, `"`+no+`"`).Replace(genuineResource)
		n, err := e.emu.BuildV3Notification("1900000001", "TRANSACTION.SUCCESS", []byte(res), e.callbackURL+"/callbacks/wechatpay/pk", emulator.NotifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	first, second := notify("stale-1"), notify("stale-2")
	if acked, status, body, _ := e.emu.Deliver(first); !acked {
		t.Fatalf("the first event: %d %s", status, body)
	}
	<-stale
	acked, status, body, _ := e.emu.Deliver(second)
	if acked || status != 500 || !strings.Contains(string(body), "HTTP 503") {
		t.Fatalf("the second event, which the app refused: acked=%v %d %s (the app read %d events)", acked, status, body, requests.Load())
	}
	if got := requests.Load(); got != 2 {
		t.Fatalf("the app read %d events, want 2", got)
	}
}
