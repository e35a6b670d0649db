package emulator

import (
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentUse runs logins, token fetches, payments and fault changes at once; with -race it
// checks the emulator's locking, and the balances check that no update was lost.
func TestConcurrentUse(t *testing.T) {
	h := newHarness(t)
	alice, _ := h.login(appA, "alice")
	h.emu.Credit(appA.AppID, 0, alice, 1000)
	h.token(appA)

	const workers, perWorker = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				body := coinBody(alice, fmt.Sprintf(`,"amount":1,"order_id":"conc-%02d-%04d"`, w, i))
				method, u := h.xpayURL("/xpay/currency_pay", body)
				status, b, err := h.doErr(method, u, []byte(body))
				if err != nil || status != 200 {
					errs <- fmt.Errorf("currency_pay: HTTP %d %s %v", status, b, err)
					continue
				}
				_, _, _ = h.doErr("GET", loginURL(appA, fmt.Sprintf("test:user%d:%d", w, i)), nil)
				_, _, _ = h.doErr("POST", "/cgi-bin/stable_token", stableTokenBody(appA, false))
				h.emu.SetFaults(Faults{})
				_ = h.emu.Balance(appA.AppID, 0, alice)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if b := h.emu.Balance(appA.AppID, 0, alice); b.Balance != 1000-workers*perWorker || b.SumCost != workers*perWorker {
		t.Errorf("Balance = %+v after %d payments of 1", b, workers*perWorker)
	}
}
