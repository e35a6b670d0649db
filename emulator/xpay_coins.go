package emulator

// Coin ("代币") endpoints: query_user_balance, currency_pay, cancel_currency_pay, present_currency.
//
// Spending order: currency_pay spends present coins first, then paid coins, and reports the
// present coins used as used_present_amount. cancel_currency_pay gives back the paid part of the
// payment first, then the present part.

// errOrderIDLength is WeChat's answer to an order_id outside 8..32 characters.
var errOrderIDLength = &apiError{268490002, "order_id需要在8-32个字符"}

// checkOrderID validates a coin order_id.
func checkOrderID(id string) *apiError {
	if !lengthIn(id, 8, 32) {
		return errOrderIDLength
	}
	return nil
}

// checkAmount validates a coin amount.
func checkAmount(amount int64) *apiError {
	if amount <= 0 {
		return newErr(268490002, "amount需要大于0")
	}
	return nil
}

// checkCoinOrder checks the order_id and amount of a coin operation (currency_pay,
// cancel_currency_pay, present_currency), in that order.
func checkCoinOrder(orderID string, amount int64) *apiError {
	if err := checkOrderID(orderID); err != nil {
		return err
	}
	return checkAmount(amount)
}

// balanceParams is query_user_balance's body.
type balanceParams struct {
	OpenID string `json:"openid"`
	UserIP string `json:"user_ip"`
}

// balanceAnswer is query_user_balance's answer, and the mini game's getbalance's.
type balanceAnswer struct {
	result
	Balance        int64 `json:"balance"`
	PresentBalance int64 `json:"present_balance"`
	SumSave        int64 `json:"sum_save"`
	SumPresent     int64 `json:"sum_present"`
	SumBalance     int64 `json:"sum_balance"`
	SumCost        int64 `json:"sum_cost"`
	FirstSaveFlag  bool  `json:"first_save_flag"`
}

func queryUserBalance(c *xpayCall) (answer, *apiError) {
	var p balanceParams
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	w := c.st.wallets[p.OpenID]
	if w == nil {
		w = &wallet{} // never seen: an empty account, without remembering it
	}
	return balanceOf(w), nil
}

// balanceOf is the balance answer of wallet w.
func balanceOf(w *wallet) *balanceAnswer {
	return &balanceAnswer{
		Balance:        w.total(),
		PresentBalance: w.present,
		SumSave:        w.sumSave,
		SumPresent:     w.sumPresent,
		SumBalance:     w.sumSave + w.sumPresent,
		SumCost:        w.sumCost,
		FirstSaveFlag:  !w.hasSaved,
	}
}

// coinPay is one currency_pay, remembered for idempotency and refunds.
type coinPay struct {
	openid       string
	amount       int64
	usedPresent  int64 // present coins the payment spent
	refunded     int64 // total given back by cancel_currency_pay
	refundedPaid int64 // paid coins among refunded
}

// currencyPayParams is currency_pay's body.
type currencyPayParams struct {
	OpenID  string `json:"openid"`
	UserIP  string `json:"user_ip"`
	Amount  int64  `json:"amount"`
	OrderID string `json:"order_id"`
	PayItem string `json:"payitem"`
	Remark  string `json:"remark"`
}

// currencyPayAnswer is currency_pay's answer.
type currencyPayAnswer struct {
	result
	OrderID           string `json:"order_id"`
	Balance           int64  `json:"balance"`
	UsedPresentAmount int64  `json:"used_present_amount"`
}

func currencyPay(c *xpayCall) (answer, *apiError) {
	var p currencyPayParams
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	if err := checkCoinOrder(p.OrderID, p.Amount); err != nil {
		return nil, err
	}
	if _, dup := c.st.coinPays[p.OrderID]; dup {
		return nil, errDuplicate // the earlier payment with this order_id succeeded
	}
	w := c.st.wallet(p.OpenID)
	if p.Amount > w.total() {
		return nil, errInsufficient
	}
	usedPresent := w.spend(p.Amount)
	c.st.coinPays[p.OrderID] = &coinPay{openid: p.OpenID, amount: p.Amount, usedPresent: usedPresent}
	return &currencyPayAnswer{OrderID: p.OrderID, Balance: w.total(), UsedPresentAmount: usedPresent}, nil
}

// cancelParams is cancel_currency_pay's body.
type cancelParams struct {
	OpenID     string `json:"openid"`
	UserIP     string `json:"user_ip"`
	PayOrderID string `json:"pay_order_id"`
	OrderID    string `json:"order_id"`
	Amount     int64  `json:"amount"`
}

// orderIDAnswer is the answer of cancel_currency_pay: just the (refund) order_id.
type orderIDAnswer struct {
	result
	OrderID string `json:"order_id"`
}

func cancelCurrencyPay(c *xpayCall) (answer, *apiError) {
	var p cancelParams
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	if err := checkCoinOrder(p.OrderID, p.Amount); err != nil {
		return nil, err
	}
	if _, dup := c.st.coinRefunds[p.OrderID]; dup {
		return nil, errDuplicate
	}
	pay := c.st.coinPays[p.PayOrderID]
	if pay == nil || pay.openid != p.OpenID {
		return nil, errNotFound
	}
	if pay.refunded >= pay.amount {
		return nil, errFullyRefunded
	}
	if pay.refunded+p.Amount > pay.amount {
		return nil, errInsufficient
	}
	paidPart := pay.amount - pay.usedPresent
	backPaid := min(p.Amount, paidPart-pay.refundedPaid)
	w := c.st.wallet(p.OpenID)
	w.paid += backPaid
	w.present += p.Amount - backPaid
	w.sumCost -= p.Amount
	pay.refunded += p.Amount
	pay.refundedPaid += backPaid
	c.st.coinRefunds[p.OrderID] = struct{}{}
	return &orderIDAnswer{OrderID: p.OrderID}, nil
}

// presentParams is present_currency's body.
type presentParams struct {
	OpenID  string `json:"openid"`
	OrderID string `json:"order_id"`
	Amount  int64  `json:"amount"`
}

// presentAnswer is present_currency's answer.
type presentAnswer struct {
	result
	Balance        int64  `json:"balance"`
	OrderID        string `json:"order_id"`
	PresentBalance int64  `json:"present_balance"`
}

func presentCurrency(c *xpayCall) (answer, *apiError) {
	var p presentParams
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	if p.OpenID == "" {
		return nil, newErr(268490001, "openid错误")
	}
	if err := checkCoinOrder(p.OrderID, p.Amount); err != nil {
		return nil, err
	}
	if _, dup := c.st.presents[p.OrderID]; dup {
		return nil, errDuplicate
	}
	w := c.st.wallet(p.OpenID)
	w.give(p.Amount)
	c.st.presents[p.OrderID] = struct{}{}
	return &presentAnswer{Balance: w.total(), OrderID: p.OrderID, PresentBalance: w.present}, nil
}
