package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/wxgate/wxgate/policies"
)

// runCheck validates a config file and prints what wxgate would run with, secrets masked.
func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr)
	path := fs.String("config", "wxgate.toml", "config file to validate")
	routes := fs.Bool("routes", false, "list every routed WeChat path")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := policies.Load(*path)
	if err != nil {
		return err
	}
	printSummary(stdout, *path, cfg, *routes)
	return nil
}

// printSummary writes the validated config as a human summary; secrets appear only as their source.
func printSummary(w io.Writer, path string, cfg *policies.Config, allRoutes bool) {
	fmt.Fprintf(w, "%s is valid.\n\nListeners\n", path)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	app := "(signing proxy and /wxgate/* helpers"
	if _, mode, ok := cfg.Server.AppSocket(); ok {
		app += fmt.Sprintf("; socket mode %04o", uint32(mode))
	}
	if t := cfg.Server.AppToken; t.IsSet() {
		app += "; bearer token " + t.Source()
	}
	fmt.Fprintf(tw, "  app\t%s\t%s)\n", cfg.Server.AppListen, app)
	fmt.Fprintf(tw, "  callback\t%s\t(WeChat-facing)\n", cfg.Server.CallbackListen)
	fmt.Fprintf(tw, "  admin\t%s\t(/healthz /readyz /metrics)\n", cfg.Server.AdminListen)
	tw.Flush()
	fmt.Fprintf(w, "\nUpstream\n  weixin  %s\n  mch     %s\n  timeout %s, %d connections per host\n",
		cfg.Upstream.Weixin, cfg.Upstream.Mch, cfg.Upstream.Timeout, cfg.Upstream.MaxConnsPerHost)
	fmt.Fprintf(w, "\nApps (%d; the first is used without %s)\n", len(cfg.Apps), "X-Wxgate-App")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, a := range cfg.Apps {
		fmt.Fprintf(tw, "  %s\tappid %s\tsecret %s\n", a.Name, a.AppID, a.Secret.Source())
		if a.IsMiniGame() {
			fmt.Fprintf(tw, "  \tkind minigame\t(/wxa/game/*, docs/minigame.md)\n")
		}
		if x := a.Xpay; x != nil {
			sandbox := "none"
			if x.SandboxAppKey.IsSet() {
				sandbox = x.SandboxAppKey.Source()
			}
			fmt.Fprintf(tw, "  \txpay offer_id %q\tapp_key %s, sandbox_app_key %s\n", x.OfferID, x.AppKey.Source(), sandbox)
		}
		if p := a.Push; p != nil {
			fmt.Fprintf(tw, "  \tpush token %s\tencoding_aes_key %s\n", p.Token.Source(), p.EncodingAESKey.Source())
		}
		if a.ForwardURL != "" {
			fmt.Fprintf(tw, "  \tforward to %s\t\n", a.ForwardURL)
		}
	}
	tw.Flush()
	if len(cfg.Merchants) > 0 {
		fmt.Fprintf(w, "\nMerchants (%d)\n", len(cfg.Merchants))
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, m := range cfg.Merchants {
			fmt.Fprintf(tw, "  %s\tmchid %s\tappid %s, certificate serial %s\n", m.Name, m.MchID, m.AppID, m.SerialNo)
			verify := "platform certificates (downloaded with the APIv3 key)"
			switch m.Verify {
			case policies.VerifyPublicKey:
				verify = "WeChat Pay public key " + m.PublicKeyID
			case policies.VerifyBoth:
				verify = "public key " + m.PublicKeyID + " and platform certificates"
			}
			fmt.Fprintf(tw, "  \tverify with %s\t\n", verify)
			v2 := "no APIv2"
			if m.APIv2Key.IsSet() {
				v2 = "apiv2_key " + m.APIv2Key.Source()
				if m.Keys().ClientCert != nil {
					v2 += ", client certificate for /secapi/"
				}
			}
			fmt.Fprintf(tw, "  \tapiv3_key %s\t%s\n", m.APIv3Key.Source(), v2)
		}
		tw.Flush()
	}
	rt := policies.NewRouteTable(cfg.Routes.Allow)
	counts := map[policies.RouteKind]int{}
	for _, r := range rt.All() {
		counts[r.Kind]++
	}
	fmt.Fprintf(w, "\nRoutes: %d xpay APIs (3 with the user signature), /sns/jscode2session, %d allowlisted APIs with access_token",
		counts[policies.RouteXpay], counts[policies.RouteAccessToken])
	if len(cfg.Merchants) > 0 {
		var listed int
		for _, r := range policies.V2Routes() {
			if !r.Sandbox && !strings.HasPrefix(r.Path, policies.PayV2Prefix) {
				listed++
			}
		}
		fmt.Fprintf(w, ", WeChat Pay /v3/*, /pay/*, /secapi/*, /sandboxnew/* and %d /mmpaymkttransfers/ and /papay/ APIs", listed)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Sessions: kept %s\n", cfg.Sessions.TTL)
	switch st := cfg.Store; st.Kind {
	case policies.StoreDisk:
		fmt.Fprintf(w, "Store: disk, %s\n", filepath.Join(st.Dir, "wxgate.db"))
	case policies.StoreRedis:
		where := "redis_url " + st.RedisURL.String()
		if len(st.RedisClusterAddrs) > 0 {
			where = fmt.Sprintf("cluster %v", st.RedisClusterAddrs)
		} else if sn := st.RedisSentinel; sn != nil {
			where = fmt.Sprintf("master %q of sentinels %v", sn.Master, sn.Addrs)
		}
		fmt.Fprintf(w, "Store: redis, %s, prefix %q, timeout %s, cache %s\n", where, st.Prefix, st.Timeout, st.CacheTTL)
	default:
		fmt.Fprintf(w, "Store: memory (at most %d session keys; nothing survives a restart)\n", cfg.Sessions.MaxEntries)
	}
	access := "off"
	if cfg.Log.Access {
		access = "on"
	}
	fmt.Fprintf(w, "Log: level %s, format %s, access log %s\n", cfg.Log.Level, cfg.Log.Format, access)
	fmt.Fprintf(w, "\nCallback URLs to give WeChat (on %s, behind your HTTPS front):\n", cfg.Server.CallbackListen)
	for _, a := range cfg.Apps {
		if a.Push != nil {
			fmt.Fprintf(w, "  message push  /callbacks/message/%s -> %s\n", a.Name, orNone(a.ForwardURL))
		}
	}
	for _, m := range cfg.Merchants {
		fmt.Fprintf(w, "  APIv3 notify  /callbacks/wechatpay/%s -> %s\n", m.Name, orNone(m.ForwardURL))
		if m.APIv2Key.IsSet() {
			fmt.Fprintf(w, "  APIv2 notify  /callbacks/wechatpay-v2/%s -> %s\n", m.Name, orNone(m.ForwardURL))
		}
	}
	if allRoutes {
		for _, r := range rt.All() {
			extra := ""
			if r.UserSignature {
				extra = " + user signature"
			}
			if r.MiniGame {
				extra += " + sig_method (kind = \"minigame\" apps only)"
			}
			fmt.Fprintf(w, "  %-40s %s%s\n", r.Path, r.Kind, extra)
		}
	}
}

// orNone names a missing forward URL, where callbacks would be refused so WeChat retries.
func orNone(url string) string {
	if url == "" {
		return "(no forward_url: refused, WeChat keeps retrying)"
	}
	return url
}
