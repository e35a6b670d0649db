package emulator

import (
	"errors"
	"testing"
	"time"
)

// TestSendRetriesUntilAcked: a receiver answering 500 twice, then 204, is acknowledged on the
// third attempt.
func TestSendRetriesUntilAcked(t *testing.T) {
	h, r := newNotifyHarness(t, 0.001)
	url := r.script("flaky", func(n int) (int, string) {
		if n <= 2 {
			return 500, `{"code":"FAIL","message":"失败"}`
		}
		return 204, ""
	})
	h.emu.Send(Notification{Kind: KindV3, URL: url, Body: []byte("{}")})
	ds, err := h.emu.WaitDeliveries(1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d := ds[0]; d.Attempts != 3 || !d.Acked || d.GaveUp || d.LastStatus != 204 || d.LastError != "" {
		t.Fatalf("delivery %+v", d)
	}
	if got := len(r.wait(3)); got != 3 {
		t.Fatalf("%d requests, want 3", got)
	}
}

// TestSendGivesUp: a receiver that never acknowledges gets WeChat's 15 attempts, then the
// notification is given up.
func TestSendGivesUp(t *testing.T) {
	h, r := newNotifyHarness(t, 0.00001) // the whole schedule in about 0.7 s
	url := r.script("down", func(int) (int, string) { return 503, "" })
	h.emu.Send(Notification{Kind: KindPush, URL: url, Header: map[string]string{"Content-Type": "application/json"}})
	ds, err := h.emu.WaitDeliveries(1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d := ds[0]; d.Attempts != 15 || d.Acked || !d.GaveUp || d.LastStatus != 503 || d.LastError == "" {
		t.Fatalf("delivery %+v", d)
	}
	if got := len(r.wait(15)); got != 15 {
		t.Fatalf("%d requests, want 15", got)
	}
}

// TestShutdownStopsSenders: Shutdown returns promptly with a retry pending (WeChat's real
// 15 s wait) and with a delivery in flight to a receiver that never answers; waiters are
// released and later sends are recorded, not sent.
func TestShutdownStopsSenders(t *testing.T) {
	r := startReceiver(t)
	e, err := New(Config{Apps: []App{appA}, Clock: (&fakeClock{t: startTime}).Now})
	if err != nil {
		t.Fatal(err)
	}
	e.Send(Notification{Kind: KindV3, URL: r.script("fail", func(int) (int, string) { return 500, "" })})
	r.wait(1) // the first attempt failed; the next is 15 s away
	e.Send(Notification{Kind: KindV3, URL: r.base + "/block/"})
	r.wait(2) // in flight: the receiver holds it
	waited := make(chan error, 1)
	go func() {
		_, err := e.WaitDeliveries(2, time.Minute)
		waited <- err
	}()
	start := time.Now()
	if err := e.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	if err := <-waited; !errors.Is(err, ErrShutdown) {
		t.Errorf("WaitDeliveries: %v, want ErrShutdown", err)
	}
	e.Send(Notification{Kind: KindV3, URL: r.base + "/v3/x"})
	ds := e.Deliveries()
	if len(ds) != 3 || ds[0].Attempts != 1 || ds[0].Acked || ds[0].GaveUp || ds[1].Attempts != 1 || ds[1].LastError == "" ||
		ds[2].Attempts != 0 || ds[2].LastError == "" {
		t.Fatalf("deliveries %+v", ds)
	}
	if _, _, _, err := e.Deliver(ds[2].Notification); !errors.Is(err, ErrShutdown) {
		t.Errorf("Deliver after Shutdown: %v", err)
	}
}

// TestWaitDeliveriesTimeout: nothing finishes in time: the records so far and ErrWaitTimeout.
func TestWaitDeliveriesTimeout(t *testing.T) {
	h, r := newNotifyHarness(t, 1)
	h.emu.Send(Notification{Kind: KindV3, URL: r.script("fail", func(int) (int, string) { return 500, "" })})
	ds, err := h.emu.WaitDeliveries(1, 100*time.Millisecond)
	if !errors.Is(err, ErrWaitTimeout) || len(ds) != 1 || ds[0].Acked {
		t.Fatalf("WaitDeliveries: %v %+v", err, ds)
	}
}

// TestDeliveryControl: GET /_emulator/deliveries lists the records; POST
// /_emulator/notify/resend replays one exactly, which a receiver refuses as a replay.
func TestDeliveryControl(t *testing.T) {
	h, r := newNotifyHarness(t, 0.00001)
	n, err := h.emu.BuildV3Notification(mchIDK, "TRANSACTION.SUCCESS", []byte(transactionResource), r.base+"/v3/"+mchIDK, NotifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.emu.Send(n)
	if _, err := h.emu.WaitDeliveries(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	m := h.getJSON("GET", "/_emulator/deliveries", nil)
	list, _ := m["deliveries"].([]any)
	if len(list) != 1 {
		t.Fatalf("deliveries: %v", m)
	}
	d := obj(list[0].(map[string]any))
	if d.str("kind") != KindV3 || d.str("id") != n.ID || d.str("body") != string(n.Body) || d["acked"] != true || d.num("attempts") != 1 ||
		d.sub("header").str("Wechatpay-Signature") != n.Header["Wechatpay-Signature"] {
		t.Fatalf("delivery %v", d)
	}
	m = h.getJSON("POST", "/_emulator/notify/resend?index=0", nil)
	if m.num("index") != 1 {
		t.Fatalf("resend: %v", m)
	}
	ds, err := h.emu.WaitDeliveries(2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	replay := ds[1]
	if replay.Acked || !replay.GaveUp || string(replay.Notification.Body) != string(n.Body) || replay.Notification.Header["Wechatpay-Nonce"] != n.Header["Wechatpay-Nonce"] {
		t.Fatalf("replay %+v", replay)
	}
	for _, got := range r.wait(16)[1:] {
		if !errors.Is(got.err, errReplay) {
			t.Fatalf("replay verified as %v", got.err)
		}
	}
	for _, c := range []struct {
		method, uri string
		status      int
	}{
		{"POST", "/_emulator/notify/resend?index=2", 404},
		{"POST", "/_emulator/notify/resend?index=x", 400},
		{"GET", "/_emulator/notify/resend?index=0", 405},
		{"POST", "/_emulator/deliveries", 405},
	} {
		if status, body := h.do(c.method, c.uri, nil); status != c.status {
			t.Errorf("%s %s: HTTP %d %s, want %d", c.method, c.uri, status, body, c.status)
		}
	}
	if got := len(h.emu.Deliveries()); got != 2 {
		t.Errorf("%d deliveries after the failed resends, want 2", got)
	}
}
