package policies

import "testing"

// TestMediaRouteTables: which paths are uploads and which downloads WeChat Pay answers unsigned;
// the upload path under /v3/merchant-service/images/ is not a download, and a prefix route takes
// exactly one more path segment.
func TestMediaRouteTables(t *testing.T) {
	for _, c := range []struct {
		path             string
		upload, unsigned bool
	}{
		{"/v3/merchant/media/upload", true, false},
		{"/v3/merchant/media/video_upload", true, false},
		{"/v3/merchant-service/images/upload", true, false},
		{"/v3/marketing/favor/media/image-upload", true, false},
		{"/v3/merchant/media/upload/", false, false},
		{"/v3/billdownload/file", false, true},
		{"/v3/billdownload/file2", false, false},
		{"/v3/transferdownload/signfile", false, true},
		{"/v3/merchant-service/images/ChsyMDAwMDAwMjAyNDEx", false, true},
		{"/v3/merchant-service/images/", false, false},
		{"/v3/merchant-service/images/a/b", false, false},
		{"/v3/merchant-service/images//b", false, false},
		{"/v3/merchant-service/complaints-v2", false, false},
		{"/v3/pay/transactions/jsapi", false, false},
	} {
		if got := IsUploadPath(c.path); got != c.upload {
			t.Errorf("IsUploadPath(%q) = %v", c.path, got)
		}
		if got := IsUnsignedPath(c.path); got != c.unsigned {
			t.Errorf("IsUnsignedPath(%q) = %v", c.path, got)
		}
	}
}
