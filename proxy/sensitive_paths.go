package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Field paths of X-Wxgate-Encrypt and X-Wxgate-Decrypt (docs/sensitive.md): a comma-separated
// list of paths; a path is member names joined by dots, from the top-level object down; a name
// followed by "[]" is an array and the rest of the path applies to every element. Examples:
// "user_name", "payer.phone", "receivers[].name", "a[].b[].c". Names are letters, digits, '_'
// and '-'.

// Limits of one header: WeChat's APIs name a handful of sensitive fields.
const (
	maxFieldPaths    = 32
	maxPathSegments  = 8
	maxPathHeaderLen = 1024
)

// fieldPath is one parsed path.
type fieldPath struct {
	text string    // as written, spaces trimmed
	segs []pathSeg // at least one
}

// pathSeg is one member name; each marks "name[]".
type pathSeg struct {
	name string
	each bool
}

// parseFieldPaths parses a header value. Errors name the bad path and say what is allowed.
func parseFieldPaths(header string, value []byte) ([]fieldPath, error) {
	if len(value) > maxPathHeaderLen {
		return nil, fmt.Errorf("%s is %d bytes long; at most %d", header, len(value), maxPathHeaderLen)
	}
	var out []fieldPath
	for raw := range strings.SplitSeq(string(value), ",") {
		text := strings.TrimSpace(raw)
		if text == "" {
			return nil, fmt.Errorf("%s has an empty path; write paths such as user_name or receivers[].name, separated by commas", header)
		}
		p := fieldPath{text: text}
		for s := range strings.SplitSeq(text, ".") {
			seg := pathSeg{name: s}
			if n, ok := strings.CutSuffix(s, "[]"); ok {
				seg = pathSeg{name: n, each: true}
			}
			if !validPathName(seg.name) {
				return nil, fmt.Errorf("%s path %q is not valid: a path is member names (letters, digits, _ and -) joined by dots, a name followed by [] for every element of an array, e.g. receivers[].name", header, truncate([]byte(text), 80))
			}
			p.segs = append(p.segs, seg)
		}
		if len(p.segs) > maxPathSegments {
			return nil, fmt.Errorf("%s path %q is %d members deep; at most %d", header, truncate([]byte(text), 80), len(p.segs), maxPathSegments)
		}
		for _, q := range out {
			if q.text == p.text {
				return nil, fmt.Errorf("%s names %q twice", header, text)
			}
		}
		out = append(out, p)
		if len(out) > maxFieldPaths {
			return nil, fmt.Errorf("%s names more than %d paths", header, maxFieldPaths)
		}
	}
	return out, nil
}

// validPathName reports whether s is a non-empty member name of letters, digits, '_' and '-'.
func validPathName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// fieldHit is one string value a path selects: the byte range of its JSON string token (quotes
// included) in the document, and where it is, concretely ("receivers[1].name").
type fieldHit struct {
	start, end int
	where      string
}

// Why a path selects nothing usable.
var (
	errFieldMissing   = errors.New("is missing")
	errFieldNotString = errors.New("is not a string")
)

// fieldError says which value of a path is wrong.
type fieldError struct {
	where string // the concrete position, e.g. receivers[2].name
	err   error  // errFieldMissing or errFieldNotString (wrapped with what was found)
}

func (e *fieldError) Error() string { return e.where + " " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// findFields returns the string values the paths select in the valid JSON object doc, in document
// order. strict (requests): a member that is absent or null is an error. Lenient (answers): it is
// skipped, since answers leave optional fields out. A value of another type is always an error;
// an empty array selects nothing.
func findFields(doc []byte, paths []fieldPath, strict bool) ([]fieldHit, error) {
	var hits []fieldHit
	for _, p := range paths {
		if err := walkPath(doc, skipWS(doc, 0), p.segs, "", strict, &hits); err != nil {
			return nil, err
		}
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].start < hits[j].start })
	for i := 1; i < len(hits); i++ {
		if hits[i].start < hits[i-1].end { // cannot happen with distinct paths; never corrupt a body
			return nil, &fieldError{where: hits[i].where, err: errors.New("is selected by two paths")}
		}
	}
	return hits, nil
}

// walkPath follows segs from the value at i; where is the concrete path so far.
func walkPath(doc []byte, i int, segs []pathSeg, where string, strict bool, hits *[]fieldHit) error {
	if len(segs) == 0 {
		if i >= len(doc) || doc[i] != '"' {
			if !strict && isNull(doc, i) {
				return nil
			}
			return &fieldError{where: where, err: fmt.Errorf("%w (it is %s)", errFieldNotString, kindAt(doc, i))}
		}
		*hits = append(*hits, fieldHit{start: i, end: skipJSONValue(doc, i), where: where})
		return nil
	}
	if i >= len(doc) || doc[i] != '{' {
		if !strict && isNull(doc, i) {
			return nil
		}
		return &fieldError{where: where, err: fmt.Errorf("is not an object (it is %s), so %s cannot be in it", kindAt(doc, i), segs[0].name)}
	}
	seg := segs[0]
	name := seg.name
	if where != "" {
		name = where + "." + seg.name
	}
	found := false
	err := eachMember(doc, i, func(key []byte, v int) error {
		if !keyEquals(key, seg.name) {
			return nil
		}
		found = true
		if !seg.each {
			return walkPath(doc, v, segs[1:], name, strict, hits)
		}
		if doc[v] != '[' {
			if !strict && isNull(doc, v) {
				return nil
			}
			return &fieldError{where: name, err: fmt.Errorf("is not an array (it is %s), but the path says %s[]", kindAt(doc, v), seg.name)}
		}
		k := 0
		return eachElement(doc, v, func(e int) error {
			err := walkPath(doc, e, segs[1:], name+"["+strconv.Itoa(k)+"]", strict, hits)
			k++
			return err
		})
	})
	if err != nil {
		return err
	}
	if !found && strict {
		return &fieldError{where: name, err: errFieldMissing}
	}
	return nil
}

// eachMember calls f with every member key (raw, without quotes) and the index of its value in
// the object at i.
func eachMember(doc []byte, i int, f func(key []byte, v int) error) error {
	i = skipWS(doc, i+1)
	for i < len(doc) && doc[i] == '"' {
		end := skipJSONValue(doc, i)
		key := doc[i+1 : end-1]
		v := skipWS(doc, skipWS(doc, end)+1) // past the colon
		if err := f(key, v); err != nil {
			return err
		}
		i = skipWS(doc, skipJSONValue(doc, v))
		if i < len(doc) && doc[i] == ',' {
			i = skipWS(doc, i+1)
		}
	}
	return nil
}

// eachElement calls f with the index of every element of the array at i.
func eachElement(doc []byte, i int, f func(e int) error) error {
	i = skipWS(doc, i+1)
	for i < len(doc) && doc[i] != ']' {
		if err := f(i); err != nil {
			return err
		}
		i = skipWS(doc, skipJSONValue(doc, i))
		if i < len(doc) && doc[i] == ',' {
			i = skipWS(doc, i+1)
		}
	}
	return nil
}

// keyEquals compares a raw member key with a path name; keys with escapes are decoded first.
func keyEquals(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == name
	}
	var s string
	if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s) != nil {
		return false
	}
	return s == name
}

// kindAt names the JSON type of the value at i, for errors (never the value: it may be secret).
func kindAt(doc []byte, i int) string {
	if i >= len(doc) {
		return "nothing"
	}
	switch doc[i] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func isNull(doc []byte, i int) bool { return bytes.HasPrefix(doc[i:], []byte("null")) }

// skipWS returns the index of the first non-space byte at or after i.
func skipWS(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// skipJSONValue returns the index just past the value at i of the valid JSON doc.
func skipJSONValue(doc []byte, i int) int {
	switch doc[i] {
	case '"':
		for j := i + 1; j < len(doc); j++ {
			switch doc[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(doc)
	case '{', '[':
		depth := 0
		for j := i; j < len(doc); j++ {
			switch doc[j] {
			case '"':
				j = skipJSONValue(doc, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(doc)
	}
	j := i
	for j < len(doc) && doc[j] != ',' && doc[j] != '}' && doc[j] != ']' && doc[j] != ' ' && doc[j] != '\t' && doc[j] != '\n' && doc[j] != '\r' {
		j++
	}
	return j
}

// replaceFields returns doc with every hit's string token replaced by what with returns for the
// decoded string (a complete JSON token); every other byte is kept as it was.
func replaceFields(doc []byte, hits []fieldHit, with func(h fieldHit, value string) ([]byte, error)) ([]byte, error) {
	out := make([]byte, 0, len(doc)+len(hits)*360)
	last := 0
	for _, h := range hits {
		var value string
		if err := json.Unmarshal(doc[h.start:h.end], &value); err != nil {
			return nil, &fieldError{where: h.where, err: errFieldNotString}
		}
		token, err := with(h, value)
		if err != nil {
			return nil, err
		}
		out = append(append(out, doc[last:h.start]...), token...)
		last = h.end
	}
	return append(out, doc[last:]...), nil
}
