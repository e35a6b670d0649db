package proxy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wxgate/wxgate/internal/jsonscan"
)

// The owner check of an APIv3 notification (docs/protocol/wechatpay.md §10): the signature
// proves WeChat Pay sent it and the AEAD tag that it was encrypted with this merchant's APIv3
// key, but a key may be shared by several merchants and a genuine notification replayed to another
// door, so the decrypted resource must also name this merchant wherever it names one:
//
//   - payments and refunds, direct: mchid; partner (service provider): sp_mchid, the door's
//     merchant being the service provider (sub_mchid, the sub-merchant, is passed on unchecked);
//   - combine payments: combine_mchid (the initiator, the only one notified); sub_orders[].mchid
//     may name other merchants and is passed on;
//   - merchant transfers (MCHTRANSFER.*): mchid or mch_id;
//   - profit sharing (PROFITSHARING.*): sent to the receiver, so the merchant is the sharer
//     (mchid, sp_mchid) or the receiver (receiver.account with receiver.type MERCHANT_ID); the
//     other may be another merchant;
//   - complaints (COMPLAINT.*): the resource names no merchant; the door's merchant is the owner,
//     proved by its keys. A merchant id it does carry must still be this merchant's.
//
// Every appid the resource names at the top level (appid, sp_appid, combine_appid) must be one of
// the merchant's appids when it lists any; sub_appid belongs to the sub-merchant and is not
// checked. Any other event type must name this merchant like a payment.

// v3OwnerMembers are the resource members the owner check reads, at the indexes below.
var v3OwnerMembers = [...]string{"mchid", "mch_id", "sp_mchid", "combine_mchid", "appid", "sp_appid", "combine_appid", "receiver"}

const (
	ownerMchIDs   = 4 // v3OwnerMembers[:4] name merchants
	ownerAppIDs   = 7 // v3OwnerMembers[4:7] name appids
	ownerReceiver = 7 // v3OwnerMembers[7] is the profit-sharing receiver object
)

// receiverMembers are the members of a profit-sharing receiver the owner check reads.
var receiverMembers = []string{"type", "account"}

// checkV3Owner checks that the decrypted resource plain of an eventType notification belongs to
// m, and returns the appid it names (appid, sp_appid or combine_appid; "" when none). plain has
// been repaired to valid UTF-8; top-level member names must be unique (compared as a parser reads
// them), as must those of the receiver object read for profit sharing.
func (m *merchantState) checkV3Owner(eventType string, plain []byte) (string, error) {
	var raw [len(v3OwnerMembers)][]byte
	if err := jsonscan.UniqueTopFields(plain, v3OwnerMembers[:], raw[:]); err != nil {
		return "", fmt.Errorf("the decrypted resource: %w", err)
	}
	var ids [ownerReceiver][]byte
	for k := range ids {
		s, err := jsonscan.MemberBytes(raw[k], v3OwnerMembers[k])
		if err != nil {
			return "", fmt.Errorf("the decrypted resource: %w", err)
		}
		ids[k] = s
	}
	family, _, _ := strings.Cut(eventType, ".")
	var err error
	switch family {
	case "PROFITSHARING":
		err = m.checkProfitSharingOwner(ids[:ownerMchIDs], raw[ownerReceiver])
	case "COMPLAINT":
		err = m.checkNamedMerchants(ids[:ownerMchIDs], true)
	default:
		err = m.checkNamedMerchants(ids[:ownerMchIDs], false)
	}
	if err != nil {
		return "", err
	}
	apps := ids[ownerMchIDs:ownerAppIDs]
	if err := m.checkNamedAppIDs(apps); err != nil {
		return "", err
	}
	for _, a := range apps {
		if len(a) != 0 {
			return string(a), nil
		}
	}
	return "", nil
}

// checkNamedMerchants requires every merchant id the resource names to be m's; a resource naming
// none is m's only when noneOK (complaints).
func (m *merchantState) checkNamedMerchants(ids [][]byte, noneOK bool) error {
	named := false
	for k, id := range ids {
		if len(id) == 0 {
			continue
		}
		named = true
		if string(id) != m.mchID {
			return fmt.Errorf("the resource belongs to %s %q, not merchant %q", v3OwnerMembers[k], truncate(id, 20), m.name)
		}
	}
	if !named && !noneOK {
		return errors.New("the resource names no merchant (mchid, sp_mchid, combine_mchid)")
	}
	return nil
}

// checkProfitSharingOwner requires m to be the sharer (mchid, sp_mchid, mch_id) or the receiver
// (receiver.account of type MERCHANT_ID) of a profit-sharing resource.
func (m *merchantState) checkProfitSharingOwner(ids [][]byte, receiver []byte) error {
	var recv [2][]byte
	if receiver != nil && string(receiver) != "null" {
		if receiver[0] != '{' {
			return errors.New("the decrypted resource: receiver is not an object")
		}
		if err := jsonscan.UniqueTopFields(receiver, receiverMembers, recv[:]); err != nil {
			return fmt.Errorf("the decrypted resource: receiver: %w", err)
		}
	}
	rtype, err1 := jsonscan.MemberBytes(recv[0], "receiver.type")
	account, err2 := jsonscan.MemberBytes(recv[1], "receiver.account")
	if err := firstError(err1, err2); err != nil {
		return fmt.Errorf("the decrypted resource: %w", err)
	}
	if string(rtype) == "MERCHANT_ID" && string(account) == m.mchID {
		return nil
	}
	named := false
	for _, id := range ids {
		if len(id) == 0 {
			continue
		}
		named = true
		if string(id) == m.mchID {
			return nil
		}
	}
	if !named && len(account) == 0 {
		return errors.New("the resource names no merchant (mchid, sp_mchid, receiver.account)")
	}
	return fmt.Errorf("the profit sharing is neither by nor to merchant %q", m.name)
}

// checkNamedAppIDs requires every appid the resource names to be one of m's, when m lists any.
func (m *merchantState) checkNamedAppIDs(ids [][]byte) error {
	if len(m.appIDs) == 0 {
		return nil
	}
	for k, id := range ids {
		if len(id) != 0 && !slices.Contains(m.appIDs, string(id)) {
			return fmt.Errorf("the resource's %s %q is not one of merchant %q's appids", v3OwnerMembers[ownerMchIDs+k], truncate(id, 24), m.name)
		}
	}
	return nil
}
