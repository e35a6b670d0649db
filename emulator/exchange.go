package emulator

import "github.com/valyala/fasthttp"

// Exchange is one API request the emulator received and the answer it gave, as bytes on the
// wire (for tests that check what a client sent and what it passed on).
type Exchange struct {
	Query string // the request's query string, as sent
	Body  []byte // the request body
	// Header holds the request headers as sent (the last value of a repeated one).
	Header map[string]string
	Status int    // the answer's status
	Answer []byte // the answer body
}

// recordExchange keeps ctx's request and answer as the last exchange of path.
func (e *Emulator) recordExchange(path string, ctx *fasthttp.RequestCtx) {
	x := Exchange{
		Query:  string(ctx.URI().QueryString()),
		Body:   append([]byte(nil), ctx.PostBody()...),
		Status: ctx.Response.StatusCode(),
		Answer: append([]byte(nil), ctx.Response.Body()...),
		Header: map[string]string{},
	}
	for k, v := range ctx.Request.Header.All() {
		x.Header[string(k)] = string(v)
	}
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	if _, ok := e.last[path]; ok || len(e.last) < maxCountedPaths {
		e.last[path] = x
	}
}

// LastExchange returns the last request received on an API path and the answer given to it.
func (e *Emulator) LastExchange(path string) (Exchange, bool) {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	x, ok := e.last[path]
	return x, ok
}
