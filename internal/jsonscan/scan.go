package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Top-level JSON field access without decoding the whole body. wxgate signs and forwards the exact
// bytes it received, so it only needs to read a few top-level members (env, openid, errcode), not
// to rebuild the document.

var errNotObject = errors.New("body is not a JSON object")

// Object checks that b is one valid JSON object.
func Object(b []byte) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' || !Valid(b) {
		return errNotObject
	}
	return nil
}

// TopField returns the raw value of the top-level member name in the valid JSON object b.
// Keys written with escape sequences are not matched.
func TopField(b []byte, name string) ([]byte, bool) {
	var val [1][]byte
	TopFields(b, []string{name}, val[:])
	return val[0], val[0] != nil
}

// TopFields reads several top-level members of the valid JSON object b in one pass: vals[k] is
// set to the raw value of names[k] (the first occurrence), or left nil when absent. Keys written
// with escape sequences are not matched. On input that is not valid JSON (a truncated answer)
// it never panics: it returns what it found before the damage.
func TopFields(b []byte, names []string, vals [][]byte) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return
	}
	for i++; ; {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return
		}
		if b[i] == ',' {
			i++
			continue
		}
		if b[i] != '"' {
			return
		}
		// A key whose closing quote is missing (a truncated answer) ends the scan.
		keyEnd := skipString(b, i)
		if keyEnd-1 <= i || b[keyEnd-1] != '"' {
			return
		}
		key := b[i+1 : keyEnd-1]
		i = skipSpace(b, keyEnd)
		if i >= len(b) || b[i] != ':' {
			return
		}
		i = skipSpace(b, i+1)
		end := skipValue(b, i)
		for k, name := range names {
			if vals[k] == nil && string(key) == name {
				vals[k] = b[i:end]
			}
		}
		i = end
	}
}

// MemberString decodes the raw member value of TopField or TopFields as a string: "" when the
// member is absent or null, an error naming it when it holds another type.
func MemberString(raw []byte, name string) (string, error) {
	if raw == nil || string(raw) == "null" {
		return "", nil
	}
	if s, ok := StringValue(raw); ok {
		return s, nil
	}
	return "", fmt.Errorf("%s is not a string", name)
}

// MemberBytes is MemberString without the copy: the raw text of a string without escapes
// (aliasing raw), or the decoded value of one with escapes.
func MemberBytes(raw []byte, name string) ([]byte, error) {
	if s, ok := PlainString(raw); ok {
		return s, nil
	}
	s, err := MemberString(raw, name)
	if s == "" {
		return nil, err
	}
	return []byte(s), err
}

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at i (b is known to be valid).
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		return i
	}
}

// skipString returns the index just past the JSON string starting at the quote at i (b is known
// to be valid): the next quote not escaped by an odd run of backslashes.
func skipString(b []byte, i int) int {
	for start := i + 1; ; {
		j := bytes.IndexByte(b[start:], '"')
		if j < 0 {
			return len(b)
		}
		q := start + j
		escapes := 0
		for p := q - 1; p >= start && b[p] == '\\'; p-- {
			escapes++
		}
		if escapes%2 == 0 {
			return q + 1
		}
		start = q + 1
	}
}

// PlainString returns the contents of a raw JSON string value without escapes, or false when raw
// is not a string or holds an escape sequence.
func PlainString(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	s := raw[1 : len(raw)-1]
	for _, c := range s {
		if c == '\\' {
			return nil, false
		}
	}
	return s, true
}

// StringValue decodes a raw JSON string value, escapes included.
func StringValue(raw []byte) (string, bool) {
	if s, ok := PlainString(raw); ok {
		return string(s), true
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", false
	}
	return out, true
}

// SmallInt parses a raw JSON integer of at most 18 digits (errcode, env).
func SmallInt(raw []byte) (int64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	neg := raw[0] == '-'
	if neg {
		raw = raw[1:]
	}
	if len(raw) == 0 || len(raw) > 18 { // 18 digits cannot overflow an int64
		return 0, false
	}
	var n int64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// UniqueTopFields is TopFields for a document whose members wxgate vouches for, so that the app
// reads what wxgate checked: member names are compared as a parser reads them (escapes decoded)
// and without regard to case (Go's encoding/json matches struct fields so), and a top-level
// member name that occurs twice is an error (parsers differ on which one wins). Only the top
// level is checked: wxgate reads nothing nested, so a nested duplicate cannot make the app see
// something other than what wxgate checked, and refusing it would lose a genuine event.
func UniqueTopFields(b []byte, names []string, vals [][]byte) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObject
	}
	// The folded names read so far, one after another (ends[k] is where the k-th ends), compared
	// pairwise while there are few; past uniqueSmall members a map takes over. On the stack, so a
	// document of a few dozen short names allocates nothing.
	var foldBuf [512]byte
	var endBuf [uniqueSmall]int
	folded, ends := foldBuf[:0], endBuf[:0]
	var seen map[string]struct{}
	for i++; ; {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return nil
		}
		if b[i] == ',' {
			i++
			continue
		}
		keyEnd := skipValue(b, i)
		key, ok := memberName(b[i:keyEnd])
		if !ok {
			return errNotObject
		}
		if seen != nil {
			folded = folded[:0]
		}
		from := len(folded)
		folded = appendFoldedName(folded, key)
		name := folded[from:]
		if seenBefore(name, folded[:from], ends, seen) {
			return fmt.Errorf("member %q occurs twice (names compared ignoring case)", shorten(string(key), 40))
		}
		switch {
		case seen != nil:
			seen[string(name)] = struct{}{}
		case len(ends) < uniqueSmall:
			ends = append(ends, len(folded))
		default: // too many to compare pairwise: move them into a map
			seen = make(map[string]struct{}, 2*uniqueSmall)
			prev := 0
			for _, e := range ends {
				seen[string(folded[prev:e])] = struct{}{}
				prev = e
			}
			seen[string(name)] = struct{}{}
		}
		i = skipSpace(b, keyEnd)
		if i >= len(b) || b[i] != ':' {
			return errNotObject
		}
		i = skipSpace(b, i+1)
		end := skipValue(b, i)
		for k, n := range names {
			if bytes.EqualFold(key, []byte(n)) {
				vals[k] = b[i:end]
			}
		}
		i = end
	}
}

// uniqueSmall is how many member names UniqueTopFields compares pairwise before it keeps them in
// a map: pairwise is cheaper and allocates nothing for the few members a notification has.
const uniqueSmall = 32

// seenBefore reports whether the folded name is among those read before: in seen when it is set,
// else among the names stored one after another in folded, ending at ends.
func seenBefore(name, folded []byte, ends []int, seen map[string]struct{}) bool {
	if seen != nil {
		_, dup := seen[string(name)]
		return dup
	}
	prev := 0
	for _, e := range ends {
		if bytes.Equal(folded[prev:e], name) {
			return true
		}
		prev = e
	}
	return false
}

// memberName decodes a raw JSON member name, escapes included; without escapes it is the raw
// bytes between the quotes (no copy).
func memberName(raw []byte) ([]byte, bool) {
	if s, ok := PlainString(raw); ok {
		return s, true
	}
	s, ok := StringValue(raw)
	return []byte(s), ok
}

// appendFoldedName appends name with each rune replaced by the least rune it equals ignoring
// case (its unicode.SimpleFold orbit), so names equal under bytes.EqualFold fold alike. For ASCII
// that is the upper case: 'K' and 'S' are below the Kelvin sign and the long s of their orbits.
func appendFoldedName(dst, name []byte) []byte {
	for len(name) > 0 {
		if c := name[0]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			name = name[1:]
			continue
		}
		r, size := utf8.DecodeRune(name)
		name = name[size:]
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		dst = utf8.AppendRune(dst, least)
	}
	return dst
}

// shorten cuts untrusted text to n bytes before it is echoed in an error.
func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
