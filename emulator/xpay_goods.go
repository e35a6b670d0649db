package emulator

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// Goods endpoints: start_upload_goods, query_upload_goods, start_publish_goods,
// query_publish_goods. A batch task runs until it is queried once (that query reports status 1,
// running); the next query completes it and reports the result. Starting a task of the same kind
// while one runs answers 268490012. Published goods are checked by RequestVirtualPayment: a
// short_series_goods payment for a published productId must carry its price.

// Task and item status values (xpay.md §1.3).
const (
	taskNone    = 0 // 无任务
	taskRunning = 1 // 任务运行中
	taskFailed  = 2 // (部分)失败
	taskSuccess = 3 // 成功

	itemPending = 0 // 上传中
	itemExists  = 1 // id已经存在
	itemOK      = 2 // 成功
	itemFailed  = 3 // 失败
)

// goodsItem is one uploaded item.
type goodsItem struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Price     int64  `json:"price"`
	Remark    string `json:"remark"`
	ItemURL   string `json:"item_url"`
	published bool
}

// goodsTask is one upload or publish batch.
type goodsTask struct {
	upload  []goodsItem // items to upload (upload tasks)
	publish []string    // ids to publish (publish tasks)
	polled  bool        // queried once while running
	done    bool
	result  []taskItem // per-item outcome once done
	status  int        // overall outcome once done
}

// taskItem is one line of a query_*_goods answer; upload and publish answers use different keys.
type taskItem struct {
	goodsItem
	status int
	errmsg string
}

// running reports whether t blocks a new task of its kind.
func (t *goodsTask) running() bool { return t != nil && !t.done }

// uploadParams is start_upload_goods's body.
type uploadParams struct {
	UploadItem []goodsItem `json:"upload_item"`
}

// checkGoodsItem validates one item to upload.
func checkGoodsItem(it goodsItem) *apiError {
	switch {
	case !isURLSafeID(it.ID, 1, 64):
		return newErr(268490002, "道具id长度需要在(0,64]，只允许字母、数字、'_'、'-'")
	case it.Name == "" || utf8.RuneCountInString(it.Name) > 20:
		return newErr(268490002, "道具名称长度需要在(0,20]")
	case it.Price <= 0:
		return newErr(268490002, "道具单价需要大于0")
	case it.Remark == "" || utf8.RuneCountInString(it.Remark) > 1024:
		return newErr(268490002, "道具备注长度需要在(0,1024]")
	case !isImageURL(it.ItemURL):
		return newErr(268490002, "item_url需要是jpg或png图片地址")
	}
	return nil
}

// isImageURL reports whether s is an http(s) URL whose path ends in .jpg, .jpeg or .png.
func isImageURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	p := strings.ToLower(u.Path)
	return strings.HasSuffix(p, ".jpg") || strings.HasSuffix(p, ".jpeg") || strings.HasSuffix(p, ".png")
}

func startUploadGoods(c *xpayCall) (answer, *apiError) {
	var p uploadParams
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	if len(p.UploadItem) == 0 {
		return nil, newErr(268490002, "upload_item不能为空")
	}
	for _, it := range p.UploadItem {
		if err := checkGoodsItem(it); err != nil {
			return nil, err
		}
	}
	if c.st.upload.running() {
		return nil, errTaskRunning
	}
	c.st.upload = &goodsTask{upload: p.UploadItem}
	return &result{}, nil
}

// finishUpload applies an upload task to the catalog.
func (st *envState) finishUpload(t *goodsTask) {
	t.status = taskSuccess
	for _, it := range t.upload {
		ti := taskItem{goodsItem: it, status: itemOK}
		if _, exists := st.catalog[it.ID]; exists {
			ti.status, ti.errmsg = itemExists, "id已经存在"
			t.status = taskFailed
		} else {
			item := it
			st.catalog[it.ID] = &item
		}
		t.result = append(t.result, ti)
	}
	t.done = true
}

// uploadLine is one upload_item line of query_upload_goods.
type uploadLine struct {
	goodsItem
	UploadStatus int    `json:"upload_status"`
	ErrMsg       string `json:"errmsg"`
}

// queryUploadAnswer is query_upload_goods's answer.
type queryUploadAnswer struct {
	result
	UploadItem []uploadLine `json:"upload_item"`
	Status     int          `json:"status"`
}

func queryUploadGoods(c *xpayCall) (answer, *apiError) {
	t := c.st.upload
	ans := &queryUploadAnswer{UploadItem: []uploadLine{}, Status: taskNone}
	switch {
	case t == nil:
		return ans, nil
	case !t.done && !t.polled:
		t.polled = true
		ans.Status = taskRunning
		for _, it := range t.upload {
			ans.UploadItem = append(ans.UploadItem, uploadLine{goodsItem: it, UploadStatus: itemPending})
		}
		return ans, nil
	case !t.done:
		c.st.finishUpload(t)
	}
	ans.Status = t.status
	for _, ti := range t.result {
		ans.UploadItem = append(ans.UploadItem, uploadLine{goodsItem: ti.goodsItem, UploadStatus: ti.status, ErrMsg: ti.errmsg})
	}
	return ans, nil
}

// publishParams is start_publish_goods's body.
type publishParams struct {
	PublishItem []struct {
		ID string `json:"id"`
	} `json:"publish_item"`
}

func startPublishGoods(c *xpayCall) (answer, *apiError) {
	var p publishParams
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	if len(p.PublishItem) == 0 {
		return nil, newErr(268490002, "publish_item不能为空")
	}
	ids := make([]string, 0, len(p.PublishItem))
	for _, it := range p.PublishItem {
		if !isURLSafeID(it.ID, 1, 64) {
			return nil, newErr(268490002, "道具id长度需要在(0,64]，只允许字母、数字、'_'、'-'")
		}
		ids = append(ids, it.ID)
	}
	if c.st.publish.running() {
		return nil, errTaskRunning
	}
	c.st.publish = &goodsTask{publish: ids}
	return &result{}, nil
}

// finishPublish publishes the task's items that were uploaded.
func (st *envState) finishPublish(t *goodsTask) {
	t.status = taskSuccess
	for _, id := range t.publish {
		ti := taskItem{goodsItem: goodsItem{ID: id}, status: itemOK}
		if item := st.catalog[id]; item != nil {
			item.published = true
		} else {
			ti.status, ti.errmsg = itemFailed, "道具id不存在"
			t.status = taskFailed
		}
		t.result = append(t.result, ti)
	}
	t.done = true
}

// publishLine is one publish_item line of query_publish_goods.
type publishLine struct {
	ID            string `json:"id"`
	PublishStatus int    `json:"publish_status"`
	ErrMsg        string `json:"errmsg"`
}

// queryPublishAnswer is query_publish_goods's answer.
type queryPublishAnswer struct {
	result
	PublishItem []publishLine `json:"publish_item"`
	Status      int           `json:"status"`
}

func queryPublishGoods(c *xpayCall) (answer, *apiError) {
	t := c.st.publish
	ans := &queryPublishAnswer{PublishItem: []publishLine{}, Status: taskNone}
	switch {
	case t == nil:
		return ans, nil
	case !t.done && !t.polled:
		t.polled = true
		ans.Status = taskRunning
		for _, id := range t.publish {
			ans.PublishItem = append(ans.PublishItem, publishLine{ID: id, PublishStatus: itemPending})
		}
		return ans, nil
	case !t.done:
		c.st.finishPublish(t)
	}
	ans.Status = t.status
	for _, ti := range t.result {
		ans.PublishItem = append(ans.PublishItem, publishLine{ID: ti.ID, PublishStatus: ti.status, ErrMsg: ti.errmsg})
	}
	return ans, nil
}

// publishedPrice returns the price of a published item, if productID is one.
func (st *envState) publishedPrice(productID string) (int64, bool) {
	item := st.catalog[productID]
	if item == nil || !item.published {
		return 0, false
	}
	return item.Price, true
}
