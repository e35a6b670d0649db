package jsonscan

import (
	"unicode/utf8"
)

// What wxgate forwards as an event's data must parse in every app's JSON parser. JSON (RFC 8259)
// text is UTF-8, yet encoding/json.Valid and Valid accept invalid bytes inside strings, and
// the grammar allows \u escapes of unpaired UTF-16 surrogates; PHP's json_decode refuses both,
// so an app would fail a genuine event on every one of WeChat's retries. Such strings are
// repaired rather than refused: the event reaches the app with U+FFFD in their place, as Go's
// own decoder reads them.

// replacementEscape is U+FFFD written as a JSON escape (ASCII, so valid wherever it lands).
const replacementEscape = `\ufffd`

// RepairUTF8 returns the valid JSON document b with every invalid UTF-8 byte and every
// unpaired surrogate escape (\ud800-\udfff not forming a pair) replaced by \ufffd. It returns b
// itself, without copying, when there is nothing to replace. Outside strings valid JSON is
// ASCII and holds no backslash, so a flat scan meets both only inside strings.
func RepairUTF8(b []byte) []byte {
	var out []byte // nil until the first replacement
	start := 0     // b[start:i] is not yet copied to out
	replace := func(i, n int) {
		if out == nil {
			out = make([]byte, 0, len(b)+16)
		}
		out = append(append(out, b[start:i]...), replacementEscape...)
		start = i + n
	}
	for i := 0; i < len(b); {
		switch c := b[i]; {
		case c == '\\':
			if i+1 < len(b) && b[i+1] == 'u' {
				r, ok := hex4(b, i+2)
				switch {
				case !ok:
					i += 2
				case r >= 0xd800 && r < 0xdc00: // high surrogate: needs a low one next
					if lo, ok := hex4(b, i+8); ok && b[i+6] == '\\' && b[i+7] == 'u' && lo >= 0xdc00 && lo < 0xe000 {
						i += 12
					} else {
						replace(i, 6)
						i += 6
					}
				case r >= 0xdc00 && r < 0xe000: // a low surrogate alone
					replace(i, 6)
					i += 6
				default:
					i += 6
				}
			} else {
				i += 2
			}
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				replace(i, 1)
			}
			i += size
		}
	}
	if out == nil {
		return b
	}
	return append(out, b[start:]...)
}

// hex4 decodes the four hex digits at b[i:i+4] (i >= 0: RepairUTF8 passes a backslash's index
// plus 2 or 8).
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
