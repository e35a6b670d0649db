package proxy

import (
	"io"

	"github.com/valyala/fasthttp"
)

// readCallbackBody reads a callback's streamed body as its bytes arrive, at most
// [server] callback_max_body_bytes, and makes it the request's body. Memory grows with the bytes
// received, never with a Content-Length announced. On an error the caller answers and closes
// the connection.
func (g *generation) readCallbackBody(ctx *fasthttp.RequestCtx) *apiError {
	limit := g.cfg.Server.CallbackMaxBodyBytes
	tooLarge := newError(fasthttp.StatusRequestEntityTooLarge, CodeBodyTooLarge, "the request body exceeds server.callback_max_body_bytes")
	if ctx.Request.Header.ContentLength() > limit {
		return tooLarge
	}
	stream := ctx.RequestBodyStream()
	if stream == nil {
		return nil // the server read the body already
	}
	body, err := io.ReadAll(io.LimitReader(stream, int64(limit)+1))
	if err != nil {
		return newError(fasthttp.StatusBadRequest, CodeBadRequest, "the request body could not be read ("+errorKind(err)+")")
	}
	if len(body) > limit {
		return tooLarge
	}
	ctx.Request.SetBodyRaw(body)
	return nil
}
