package emulator

// Ad-funds, complaint and subscription endpoints. The emulator verifies them like every other
// /xpay/ call and answers errcode 0 with empty but well-formed data: empty lists, no complaint,
// no subscription contract ("UNBINDUSER").

// emptyAnswer returns a handler that answers a fresh value from build.
func emptyAnswer(build func() answer) xpayHandler {
	return func(*xpayCall) (answer, *apiError) { return build(), nil }
}

// acctListAnswer is query_transfer_account's answer.
type acctListAnswer struct {
	result
	AcctList []struct{} `json:"acct_list"`
}

// adverFundsAnswer is query_adver_funds's answer.
type adverFundsAnswer struct {
	result
	List      []struct{} `json:"adver_funds_list"`
	TotalPage int        `json:"total_page"`
}

// billListAnswer is the answer of query_funds_bill and query_recover_bill.
type billListAnswer struct {
	result
	BillList  []struct{} `json:"bill_list"`
	TotalPage int        `json:"total_page"`
}

// complaintListAnswer is get_complaint_list's answer.
type complaintListAnswer struct {
	result
	Total      int        `json:"total"`
	Complaints []struct{} `json:"complaints"`
}

// complaintDetailAnswer is get_complaint_detail's answer.
type complaintDetailAnswer struct {
	result
	Complaint struct{} `json:"complaint"`
}

// negotiationAnswer is get_negotiation_history's answer.
type negotiationAnswer struct {
	result
	Total   int        `json:"total"`
	History []struct{} `json:"history"`
}

// uploadFileSignAnswer is get_upload_file_sign's answer.
type uploadFileSignAnswer struct {
	result
	Sign   string `json:"sign"`
	CosURL string `json:"cos_url"`
}

// contractAnswer is query_subscribe_contract's answer.
type contractAnswer struct {
	result
	State string `json:"authorization_state"`
}

// billIDAnswer is create_funds_bill's answer.
type billIDAnswer struct {
	result
	BillID string `json:"bill_id"`
}

// fileIDAnswer is upload_vp_file's answer.
type fileIDAnswer struct {
	result
	FileID string `json:"file_id"`
}

func createFundsBill(c *xpayCall) (answer, *apiError) {
	return &billIDAnswer{BillID: newWxID("fb", c.now)}, nil
}

func uploadVPFile(c *xpayCall) (answer, *apiError) {
	return &fileIDAnswer{FileID: newWxID("file", c.now)}, nil
}

func downloadAdverFundsOrder(c *xpayCall) (answer, *apiError) {
	name := "adverfunds_" + newWxID("", c.now) + ".csv"
	c.app.biz.files[name] = struct{}{}
	return &urlAnswer{URL: fileURL(c.host, name)}, nil
}
