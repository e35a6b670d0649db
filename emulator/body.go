package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// isJSONObject reports whether b is one valid JSON object (not null, an array or a scalar).
func isJSONObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(b)
}

// parseEnv reads a body's env: absent means 0 (like a protobuf default); otherwise it must be the
// JSON integer 0 or 1.
func parseEnv(raw json.RawMessage) (int, bool) {
	if raw == nil {
		return 0, true
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil || (n != 0 && n != 1) {
		return 0, false
	}
	return n, true
}

// decodeParams decodes an xpay body into v; a field of the wrong type is 268490002.
func decodeParams(body []byte, v any) *apiError {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return newErr(268490002, "参数错误: %s 类型应为 %s", te.Field, te.Type)
	}
	return newErr(268490002, "参数错误")
}

// lengthIn reports whether s has between lo and hi bytes.
func lengthIn(s string, lo, hi int) bool { return len(s) >= lo && len(s) <= hi }

// isURLSafeID reports whether s is lo..hi characters of [A-Za-z0-9_-].
func isURLSafeID(s string, lo, hi int) bool {
	if !lengthIn(s, lo, hi) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isURLSafeChar(s[i]) {
			return false
		}
	}
	return true
}
