package proxy

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/wxgate/wxgate/internal/jsonscan"
)

// Message-push bodies come as JSON or XML (the MP console's 数据格式). XML ones are turned into
// the equivalent JSON object for the app: elements become members, text becomes strings, nested
// elements objects, repeated elements arrays.

// maxPushDepth and maxPushElements bound what a push body may hold.
const (
	maxPushDepth    = 8
	maxPushElements = 2000
)

var errPushXML = errors.New("not a message-push XML document")

// pushXMLToJSON converts a push XML document (<xml>...</xml>) into a JSON object. DOCTYPE,
// entities and processing instructions other than the XML declaration are refused. Invalid
// UTF-8, which encoding/xml refuses, becomes U+FFFD first, so such an event still reaches the
// app (the signature, if any, was checked over the bytes received); encoding/json then writes
// valid UTF-8 only.
func pushXMLToJSON(body []byte) ([]byte, error) {
	if !utf8.Valid(body) {
		body = bytes.ToValidUTF8(body, []byte("\uFFFD"))
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	d.Entity = nil
	var root map[string]any
	var stack []map[string]any
	var names []string
	var text bytes.Buffer
	elements := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errPushXML, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			elements++
			if elements > maxPushElements || len(stack) >= maxPushDepth {
				return nil, fmt.Errorf("%w: too large or too deep", errPushXML)
			}
			if root != nil && len(stack) == 0 {
				return nil, fmt.Errorf("%w: more than one root element", errPushXML)
			}
			m := map[string]any{}
			if root == nil {
				root = m
			}
			stack = append(stack, m)
			names = append(names, t.Name.Local)
			text.Reset()
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, fmt.Errorf("%w: text outside the root element", errPushXML)
				}
				continue
			}
			text.Write(t)
		case xml.EndElement:
			m := stack[len(stack)-1]
			name := names[len(names)-1]
			stack, names = stack[:len(stack)-1], names[:len(names)-1]
			if len(stack) == 0 {
				continue
			}
			var v any = m
			if len(m) == 0 {
				v = text.String()
			}
			text.Reset()
			parent := stack[len(stack)-1]
			switch prev := parent[name].(type) {
			case nil:
				parent[name] = v
			case []any:
				parent[name] = append(prev, v)
			default:
				parent[name] = []any{prev, v}
			}
		case xml.Directive:
			return nil, fmt.Errorf("%w: DOCTYPE and entities are not allowed", errPushXML)
		case xml.ProcInst:
			if t.Target != "xml" {
				return nil, fmt.Errorf("%w: processing instruction %q", errPushXML, t.Target)
			}
		case xml.Comment:
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: empty", errPushXML)
	}
	return json.Marshal(root)
}

// pushFields are the members of a push message wxgate reads.
type pushFields struct {
	Encrypt string
	MsgType string
	Event   string
	// MiniGame is the raw MiniGame member (nil when absent), found as the app's parser finds it:
	// its PayEventSig is checked whatever the name's case or escapes (callback_minigame.go).
	MiniGame []byte
}

// pushMembers are the names of pushFields' members, in its order.
var pushMembers = []string{"Encrypt", "MsgType", "Event", "MiniGame"}

// readPushFields reads the members wxgate needs from a JSON push message, in one pass after
// checking that it is a JSON object. Names are read as the app's parser reads them (escapes
// decoded, case ignored) and a top-level name that occurs twice is refused: Event decides whether
// a PayEventSig is required (callback_minigame.go), so the app must read the Event wxgate read.
func readPushFields(msg []byte) (pushFields, error) {
	var f pushFields
	if jsonscan.Object(msg) != nil {
		return f, errors.New("the message is not a JSON object")
	}
	var raw [4][]byte
	if err := jsonscan.UniqueTopFields(msg, pushMembers, raw[:]); err != nil {
		return f, fmt.Errorf("the message: %w", err)
	}
	var err [3]error
	f.Encrypt, err[0] = jsonscan.MemberString(raw[0], pushMembers[0])
	f.MsgType, err[1] = jsonscan.MemberString(raw[1], pushMembers[1])
	f.Event, err[2] = jsonscan.MemberString(raw[2], pushMembers[2])
	f.MiniGame = raw[3]
	if e := firstError(err[:]...); e != nil {
		return f, fmt.Errorf("the message has unexpected member types: %v", e)
	}
	return f, nil
}
