package emulator

import (
	"fmt"
	"sync/atomic"
	"time"
)

// envState is one app's virtual-payment state in one env (production or sandbox). It is guarded
// by Emulator.mu.
type envState struct {
	wallets     map[string]*wallet     // openid -> coin account
	coinPays    map[string]*coinPay    // currency_pay order_id -> payment
	coinRefunds map[string]struct{}    // cancel_currency_pay order_id values used
	presents    map[string]struct{}    // present_currency order_id values used
	orders      map[string]*cashOrder  // cash order by order_id (outTradeNo)
	wxOrders    map[string]*cashOrder  // cash order by wx_order_id
	refunds     map[string]*cashRefund // refund_order refund_order_id -> refund
	catalog     map[string]*goodsItem  // uploaded goods by id
	upload      *goodsTask             // the latest start_upload_goods task
	publish     *goodsTask             // the latest start_publish_goods task
}

func newEnvState() *envState {
	return &envState{
		wallets:     make(map[string]*wallet),
		coinPays:    make(map[string]*coinPay),
		coinRefunds: make(map[string]struct{}),
		presents:    make(map[string]struct{}),
		orders:      make(map[string]*cashOrder),
		wxOrders:    make(map[string]*cashOrder),
		refunds:     make(map[string]*cashRefund),
		catalog:     make(map[string]*goodsItem),
	}
}

// wallet is one user's coin account. Paid ("有价") and present ("赠送") coins are kept apart
// because currency_pay reports how many present coins it used.
type wallet struct {
	paid, present       int64 // current balances
	sumSave, sumPresent int64 // lifetime paid top-ups and presents
	sumCost             int64 // lifetime spending, net of cancel_currency_pay refunds
	hasSaved            bool  // any paid top-up ever (first_save_flag)
}

// wallet returns openid's account, creating an empty one.
func (st *envState) wallet(openid string) *wallet {
	w := st.wallets[openid]
	if w == nil {
		w = &wallet{}
		st.wallets[openid] = w
	}
	return w
}

// total is the balance WeChat reports: paid plus present coins.
func (w *wallet) total() int64 { return w.paid + w.present }

// save adds paid coins, as a top-up does.
func (w *wallet) save(coins int64) {
	w.paid += coins
	w.sumSave += coins
	w.hasSaved = true
}

// spend takes coins (at most the balance), present coins first, and returns how many present
// coins it used: currency_pay and the mini game's pay.
func (w *wallet) spend(coins int64) (fromPresent int64) {
	fromPresent = min(w.present, coins)
	w.present -= fromPresent
	w.paid -= coins - fromPresent
	w.sumCost += coins
	return fromPresent
}

// give adds present coins: present_currency and the mini game's present.
func (w *wallet) give(coins int64) {
	w.present += coins
	w.sumPresent += coins
}

// Balance is a user's coin account as query_user_balance reports it.
type Balance struct {
	Balance        int64 // total coins: paid plus present
	PresentBalance int64 // present coins included in Balance
	SumSave        int64 // lifetime paid top-ups
	SumPresent     int64 // lifetime presented coins
	SumCost        int64 // lifetime spending, net of refunds
}

// Balance returns openid's coin account in the app and env (0 production, 1 sandbox); the zero
// Balance for unknown apps, envs or users.
func (e *Emulator) Balance(appID string, env int, openid string) Balance {
	a := e.apps[appID]
	if a == nil || env < 0 || env > 1 {
		return Balance{}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return a.envs[env].wallets[openid].snapshot()
}

// snapshot is w as Balance reports it; the zero Balance for a nil (never seen) wallet.
func (w *wallet) snapshot() Balance {
	if w == nil {
		return Balance{}
	}
	return Balance{
		Balance:        w.total(),
		PresentBalance: w.present,
		SumSave:        w.sumSave,
		SumPresent:     w.sumPresent,
		SumCost:        w.sumCost,
	}
}

// Credit adds paid coins to openid's account in the app and env, as a completed top-up would. It
// does nothing for unknown apps or envs.
func (e *Emulator) Credit(appID string, env int, openid string, coins int64) {
	a := e.apps[appID]
	if a == nil || env < 0 || env > 1 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	a.envs[env].wallet(openid).save(coins)
}

// idSeq numbers every WeChat-side id the emulator makes, so ids are unique per process.
var idSeq atomic.Uint64

// newWxID returns a WeChat-style numeric id: prefix, Beijing date-time, then a sequence number.
func newWxID(prefix string, now time.Time) string {
	return fmt.Sprintf("%s%s%010d", prefix, now.In(beijing).Format("20060102150405"), idSeq.Add(1))
}

// yuan formats cents as a yuan amount string ("12.34").
func yuan(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}
