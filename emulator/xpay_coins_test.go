package emulator

import (
	"fmt"
	"testing"
)

// coinBody builds a coin endpoint body for openid in env 0.
func coinBody(openid string, fields string) string {
	return fmt.Sprintf(`{"openid":%q,"env":0,"user_ip":"127.0.0.1"%s}`, openid, fields)
}

func TestCoins(t *testing.T) {
	h := newHarness(t)
	alice, _ := h.login(appA, "alice")
	bob, _ := h.login(appA, "bob")
	h.emu.Credit(appA.AppID, 0, alice, 100)

	pay := func(orderID string, amount any) obj {
		return h.xpay("/xpay/currency_pay", coinBody(alice, fmt.Sprintf(`,"amount":%v,"order_id":%q,"payitem":"[]","remark":"r"`, amount, orderID)))
	}
	present := func(orderID string, amount int) obj {
		return h.xpay("/xpay/present_currency", fmt.Sprintf(`{"openid":%q,"env":0,"order_id":%q,"amount":%d}`, alice, orderID, amount))
	}
	cancel := func(openid, payOrderID, orderID string, amount int) obj {
		return h.xpay("/xpay/cancel_currency_pay", coinBody(openid, fmt.Sprintf(`,"pay_order_id":%q,"order_id":%q,"amount":%d`, payOrderID, orderID, amount)))
	}

	steps := []struct {
		name  string
		do    func() obj
		want  int64
		check func(t *testing.T, m obj)
	}{
		{"present 30", func() obj { return present("present-0001", 30) }, 0, func(t *testing.T, m obj) {
			if m.num("balance") != 130 || m.num("present_balance") != 30 || m.str("order_id") != "present-0001" {
				t.Errorf("present answer %v", m)
			}
		}},
		{"present again", func() obj { return present("present-0001", 30) }, 268490004, nil},
		{"present zero", func() obj { return present("present-0002", 0) }, 268490002, nil},
		{"pay 50 spends present coins first", func() obj { return pay("pay-order-0001", 50) }, 0, func(t *testing.T, m obj) {
			if m.str("order_id") != "pay-order-0001" || m.num("balance") != 80 || m.num("used_present_amount") != 30 {
				t.Errorf("currency_pay answer %v", m)
			}
		}},
		{"pay same order_id", func() obj { return pay("pay-order-0001", 50) }, 268490004, nil},
		{"pay more than balance", func() obj { return pay("pay-order-0002", 81) }, 268490006, nil},
		{"order_id too short", func() obj { return pay("short", 1) }, 268490002, nil},
		{"order_id too long", func() obj { return pay("x123456789012345678901234567890123", 1) }, 268490002, nil},
		{"amount zero", func() obj { return pay("pay-order-0003", 0) }, 268490002, nil},
		{"amount as string", func() obj { return pay("pay-order-0004", `"5"`) }, 268490002, nil},
		{"pay all", func() obj { return pay("pay-order-0005", 80) }, 0, func(t *testing.T, m obj) {
			if m.num("balance") != 0 || m.num("used_present_amount") != 0 {
				t.Errorf("currency_pay answer %v", m)
			}
		}},
		{"cancel unknown pay order", func() obj { return cancel(alice, "no-such-order", "refund-0001", 1) }, 268490002, nil},
		{"cancel someone else's order", func() obj { return cancel(bob, "pay-order-0001", "refund-0001", 1) }, 268490002, nil},
		{"cancel more than paid", func() obj { return cancel(alice, "pay-order-0001", "refund-0001", 51) }, 268490006, nil},
		{"cancel 20", func() obj { return cancel(alice, "pay-order-0001", "refund-0002", 20) }, 0, func(t *testing.T, m obj) {
			if m.str("order_id") != "refund-0002" {
				t.Errorf("cancel answer %v", m)
			}
		}},
		{"cancel same refund order_id", func() obj { return cancel(alice, "pay-order-0001", "refund-0002", 20) }, 268490004, nil},
		{"cancel beyond the rest", func() obj { return cancel(alice, "pay-order-0001", "refund-0003", 31) }, 268490006, nil},
		{"cancel the rest", func() obj { return cancel(alice, "pay-order-0001", "refund-0004", 30) }, 0, nil},
		{"cancel a fully refunded order", func() obj { return cancel(alice, "pay-order-0001", "refund-0005", 1) }, 268490005, nil},
		{"balance", func() obj { return h.xpay("/xpay/query_user_balance", coinBody(alice, "")) }, 0, func(t *testing.T, m obj) {
			// 100 paid + 30 present - 50 - 80 + 50 refunded (20 paid back, then 30 = 0 paid + 30 present).
			want := obj{"balance": nil, "present_balance": nil, "sum_save": nil, "sum_present": nil, "sum_balance": nil, "sum_cost": nil, "first_save_flag": nil}
			for k := range want {
				if _, ok := m[k]; !ok {
					t.Errorf("query_user_balance lacks %q", k)
				}
			}
			if m.num("balance") != 50 || m.num("present_balance") != 30 || m.num("sum_save") != 100 ||
				m.num("sum_present") != 30 || m.num("sum_balance") != 130 || m.num("sum_cost") != 80 || m["first_save_flag"] != false {
				t.Errorf("query_user_balance = %v", m)
			}
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			m := s.do()
			expectErr(t, m, s.want)
			if s.check != nil {
				s.check(t, m)
			}
		})
	}

	got := h.emu.Balance(appA.AppID, 0, alice)
	if got != (Balance{Balance: 50, PresentBalance: 30, SumSave: 100, SumPresent: 30, SumCost: 80}) {
		t.Errorf("Balance = %+v", got)
	}
	if sb := h.emu.Balance(appA.AppID, 1, alice); sb != (Balance{}) {
		t.Errorf("sandbox balance = %+v, want empty (envs are separate)", sb)
	}
	if m := h.xpay("/xpay/query_user_balance", coinBody(bob, "")); m.num("balance") != 0 || m["first_save_flag"] != true {
		t.Errorf("new user's balance = %v", m)
	}
}

func TestPresentCurrencyNeedsOpenID(t *testing.T) {
	h := newHarness(t)
	expectErr(t, h.xpay("/xpay/present_currency", `{"env":0,"order_id":"present-0001","amount":1}`), 268490001)
}
