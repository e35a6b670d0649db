package emulator

import (
	"strconv"

	"github.com/valyala/fasthttp"
)

// The notification part of the control surface:
//
//	GET  /_emulator/deliveries              -> {"ok":true,"deliveries":[...]} (queue order)
//	POST /_emulator/notify/resend?index=N   -> {"ok":true,"index":M}: an exact replay of delivery N

// deliveryView is the JSON form of a Delivery; the body is text (JSON or XML).
type deliveryView struct {
	Index      int               `json:"index"`
	Kind       string            `json:"kind"`
	URL        string            `json:"url"`
	Header     map[string]string `json:"header"`
	Body       string            `json:"body"`
	ID         string            `json:"id"`
	Attempts   int               `json:"attempts"`
	Acked      bool              `json:"acked"`
	GaveUp     bool              `json:"gave_up"`
	LastStatus int               `json:"last_status"`
	LastError  string            `json:"last_error,omitempty"`
}

// deliveriesAnswer is the answer of the notification control endpoints.
type deliveriesAnswer struct {
	OK         bool           `json:"ok"`
	Error      string         `json:"error,omitempty"`
	Deliveries []deliveryView `json:"deliveries,omitempty"`
	Index      *int           `json:"index,omitempty"` // resend: the replay's index
}

// serveDeliveries answers GET /_emulator/deliveries.
func (e *Emulator) serveDeliveries(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() {
		writeControlError(ctx, fasthttp.StatusMethodNotAllowed, "use GET")
		return
	}
	list := e.Deliveries()
	ans := &deliveriesAnswer{OK: true, Deliveries: make([]deliveryView, len(list))}
	for i, d := range list {
		n := d.Notification
		ans.Deliveries[i] = deliveryView{
			Index: i, Kind: n.Kind, URL: n.URL, Header: n.Header, Body: string(n.Body), ID: n.ID,
			Attempts: d.Attempts, Acked: d.Acked, GaveUp: d.GaveUp, LastStatus: d.LastStatus, LastError: d.LastError,
		}
	}
	writeJSON(ctx, fasthttp.StatusOK, ans)
}

// serveResend answers POST /_emulator/notify/resend?index=N: it queues an exact replay of
// delivery N (0-based, as GET /_emulator/deliveries lists them), a replay attack for tests.
func (e *Emulator) serveResend(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		writeControlError(ctx, fasthttp.StatusMethodNotAllowed, "use POST")
		return
	}
	index, err := strconv.Atoi(string(ctx.QueryArgs().Peek("index")))
	if err != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, &deliveriesAnswer{Error: "index must be an integer"})
		return
	}
	replay, err := e.resend(index)
	if err != nil {
		writeJSON(ctx, fasthttp.StatusNotFound, &deliveriesAnswer{Error: err.Error()})
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, &deliveriesAnswer{OK: true, Index: &replay})
}
