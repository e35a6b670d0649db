package policies

import "strings"

// UploadRoute is a WeChat Pay APIv3 media upload: a POST whose multipart/form-data body holds a
// "meta" JSON part ({"filename", "sha256"}) and a "file" part. WeChat Pay signs only the meta
// part, and the body may be up to [server] max_upload_bytes (docs/protocol/wechatpay.md M.1).
type UploadRoute struct {
	Path string
	// MaxFileBytes is the file size WeChat Pay documents for the route (wxgate does not enforce
	// it; it is the reason for max_upload_bytes' default).
	MaxFileBytes int
	// Doc names the API in WeChat Pay's documentation.
	Doc string
}

// UploadRoutes are the APIv3 media uploads wxgate signs over their meta part
// (docs/protocol/wechatpay.md M.1).
var UploadRoutes = []UploadRoute{
	{Path: "/v3/merchant/media/upload", MaxFileBytes: 5 << 20, Doc: "图片上传 (images for merchant applications)"},
	{Path: "/v3/merchant/media/video_upload", MaxFileBytes: 5 << 20, Doc: "视频上传 (videos)"},
	{Path: "/v3/merchant-service/images/upload", MaxFileBytes: 2 << 20, Doc: "商户上传反馈图片 (complaint response images)"},
	{Path: "/v3/marketing/favor/media/image-upload", MaxFileBytes: 2 << 20, Doc: "图片上传(营销专用) (marketing images)"},
}

// IsUploadPath reports whether path (without its query) is one of UploadRoutes.
func IsUploadPath(path string) bool {
	for _, r := range UploadRoutes {
		if r.Path == path {
			return true
		}
	}
	return false
}

// UnsignedRoute is an APIv3 GET whose successful answer WeChat Pay documents as a file without a
// signature: it passes to the app unverified, marked X-Wxgate-Unsigned: true. Its error answers
// are signed JSON and verified as usual.
type UnsignedRoute struct {
	// Path is the exact path, or with Prefix a path prefix followed by one path segment
	// (/v3/merchant-service/images/{media_id}).
	Path   string
	Prefix bool
	// Doc names the API in WeChat Pay's documentation.
	Doc string
}

// UnsignedRoutes are the APIv3 downloads WeChat Pay answers unsigned (docs/protocol/wechatpay.md
// M.2). Every other APIv3 answer must verify.
var UnsignedRoutes = []UnsignedRoute{
	{Path: "/v3/billdownload/file", Doc: "下载账单 (trade, fund-flow and sub-merchant bill files; SHA-1 checked, see X-Wxgate-Bill-Verified)"},
	{Path: "/v3/transferdownload/signfile", Doc: "下载电子回单 (transfer e-receipts)"},
	{Path: "/v3/merchant-service/images/", Prefix: true, Doc: "图片请求 (complaint images, GET /v3/merchant-service/images/{media_id})"},
}

// IsUnsignedPath reports whether a GET of path (without its query) is answered unsigned by
// WeChat Pay. The upload path /v3/merchant-service/images/upload is not a download.
func IsUnsignedPath(path string) bool {
	for _, r := range UnsignedRoutes {
		if !r.Prefix {
			if path == r.Path {
				return true
			}
			continue
		}
		rest, ok := strings.CutPrefix(path, r.Path)
		if ok && rest != "" && !strings.Contains(rest, "/") && !IsUploadPath(path) {
			return true
		}
	}
	return false
}
