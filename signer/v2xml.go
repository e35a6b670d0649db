package signer

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// APIv2 XML documents (docs/protocol/wechatpay.md §7.2, §8).

// maxXMLParams bounds the parameters ParseXML accepts in one document.
const maxXMLParams = 200

// ParseXML parses a flat APIv2 document <xml><k>v</k>...</xml> (CDATA allowed, no nesting, no
// DOCTYPE or entities) into params in document order. It rejects anything else.
func ParseXML(body []byte) ([]Param, error) {
	// encoding/xml never fetches external entities; in Strict mode it also refuses every entity
	// but the five predefined ones. Directives (<!DOCTYPE>, <!ENTITY>), comments and processing
	// instructions other than a leading <?xml ...?> are refused outright. The root may also be
	// <root>, the element a decrypted refund req_info uses (§8.3). Attributes are ignored.
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	var (
		params []Param
		depth  int    // 0 outside the root, 1 inside it, 2 inside a parameter
		key    string // the open parameter
		value  []byte
		closed bool // the root element has ended
		markup bool // a token other than whitespace has been read
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("signer: parse XML: %w", err)
		}
		seen := markup
		if cd, ok := tok.(xml.CharData); !ok || len(bytes.TrimLeft(cd, " \t\r\n")) != 0 {
			markup = true
		}
		switch t := tok.(type) {
		case xml.ProcInst: // the <?xml ...?> header, before anything but whitespace
			if seen || t.Target != "xml" {
				return nil, errors.New("signer: parse XML: processing instruction not allowed")
			}
		case xml.Directive:
			return nil, errors.New("signer: parse XML: DOCTYPE or other directive not allowed")
		case xml.Comment:
			return nil, errors.New("signer: parse XML: comment not allowed")
		case xml.StartElement:
			if t.Name.Space != "" {
				return nil, errors.New("signer: parse XML: namespaced element not allowed")
			}
			switch {
			case closed:
				return nil, errors.New("signer: parse XML: content after the root element")
			case depth == 0:
				if t.Name.Local != "xml" && t.Name.Local != "root" {
					return nil, fmt.Errorf("signer: parse XML: root element is <%s>, want <xml>", truncateForError(t.Name.Local))
				}
			case depth == 1:
				if len(params) == maxXMLParams {
					return nil, fmt.Errorf("signer: parse XML: more than %d parameters", maxXMLParams)
				}
				key, value = t.Name.Local, value[:0]
			default:
				return nil, fmt.Errorf("signer: parse XML: element nested in <%s>", truncateForError(key))
			}
			depth++
		case xml.EndElement: // the decoder has checked that it matches its start
			depth--
			switch depth {
			case 1:
				if _, dup := ParamValue(params, key); dup {
					return nil, fmt.Errorf("signer: parse XML: parameter <%s> repeated", truncateForError(key))
				}
				params = append(params, Param{Key: key, Value: string(value)})
			case 0:
				closed = true
			}
		case xml.CharData: // text and CDATA sections alike
			if depth == 2 {
				value = append(value, t...)
			} else if len(bytes.TrimLeft(t, " \t\r\n")) != 0 {
				return nil, errors.New("signer: parse XML: text outside a parameter")
			}
		}
	}
	if !closed {
		return nil, errors.New("signer: parse XML: no root element")
	}
	return params, nil
}

// AppendXML appends params as <xml><k><![CDATA[v]]></k>...</xml> (numbers need no CDATA but may
// have it).
func AppendXML(dst []byte, params []Param) []byte {
	// Keys are written as they are: they are parameter names chosen by the caller, not data.
	dst = append(dst, "<xml>"...)
	for _, p := range params {
		dst = append(dst, '<')
		dst = append(dst, p.Key...)
		dst = append(dst, '>')
		dst = appendCDATA(dst, p.Value)
		dst = append(dst, "</"...)
		dst = append(dst, p.Key...)
		dst = append(dst, '>')
	}
	return append(dst, "</xml>"...)
}

// appendCDATA appends v as one or more CDATA sections. Every "]]>" in v is split across two
// sections ("]]" ends one, ">" starts the next), so v cannot close a section early; every "\r" is
// written as "&#13;" between sections, since XML parsers turn a raw "\r" into "\n" (and a
// changed value no longer matches its sign).
func appendCDATA(dst []byte, v string) []byte {
	dst = append(dst, "<![CDATA["...)
	for {
		i := strings.IndexAny(v, "]\r")
		if i < 0 {
			break
		}
		switch {
		case v[i] == '\r':
			dst = append(dst, v[:i]...)
			dst = append(dst, "]]>&#13;<![CDATA["...)
			v = v[i+1:]
		case strings.HasPrefix(v[i:], "]]>"):
			dst = append(dst, v[:i+2]...)
			dst = append(dst, "]]><![CDATA["...)
			v = v[i+2:]
		default:
			dst = append(dst, v[:i+1]...)
			v = v[i+1:]
		}
	}
	dst = append(dst, v...)
	return append(dst, "]]>"...)
}
