package proxy

import "github.com/wxgate/wxgate/signer"

// signUser appends the user signature of body under the session key's text.
func signUser(dst, sessionKey, body []byte) []byte {
	return signer.AppendUserSignature(dst, sessionKey, body)
}
