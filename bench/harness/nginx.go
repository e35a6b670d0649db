package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// nginxInstallHint tells how to get nginx when it is missing.
const nginxInstallHint = "not installed (apt-get install nginx, or pass -nginx /path/to/nginx)"

// nginxProc is the nginx reverse proxy the harness runs, or why it does not.
type nginxProc struct {
	p       *proc
	version string
	addr    map[string]string // upstream name -> listen address
	missing string            // why there is no nginx column
}

// nginxConfig is a minimal proxy_pass configuration: one server per upstream, pooled keep-alive
// upstream connections, no logging, every path inside the prefix folder.
const nginxConfig = `daemon off;
master_process on;
worker_processes auto;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path {{dir}}/client_body;
    proxy_temp_path {{dir}}/proxy;
    fastcgi_temp_path {{dir}}/fastcgi;
    uwsgi_temp_path {{dir}}/uwsgi;
    scgi_temp_path {{dir}}/scgi;
    client_max_body_size 1m;
    client_body_buffer_size 128k;
    keepalive_requests 1000000;
{{servers}}}
`

// startNginx runs nginx in the foreground with a generated config, or records why it cannot.
func (h *harness) startNginx(upstreams map[string]string) (*nginxProc, error) {
	n := &nginxProc{addr: map[string]string{}}
	path := h.opts.Nginx
	if path == "" {
		var err error
		if path, err = exec.LookPath("nginx"); err != nil {
			if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
				n.missing = nginxInstallHint
				h.logf("nginx: %s; the nginx columns are skipped\n", nginxInstallHint)
				return n, nil
			}
			path = "/usr/sbin/nginx"
		}
	}
	if out, err := exec.Command(path, "-v").CombinedOutput(); err == nil {
		n.version = strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: "))
	} else {
		n.missing = fmt.Sprintf("%s does not run: %v", path, err)
		return n, nil
	}
	dir := filepath.Join(h.dir, "nginx")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	names := []string{"weixin", "mch", "app"}
	ports, err := freePorts(len(names))
	if err != nil {
		return nil, err
	}
	var servers strings.Builder
	for i, name := range names {
		up := upstreams[name]
		scheme, hostport, _ := strings.Cut(up, "://")
		n.addr[name] = ports[i]
		fmt.Fprintf(&servers, "    upstream %s { server %s; keepalive 128; }\n", name, hostport)
		fmt.Fprintf(&servers, "    server {\n        listen %s;\n        location / {\n", ports[i])
		fmt.Fprintf(&servers, "            proxy_pass %s://%s;\n            proxy_http_version 1.1;\n", scheme, name)
		fmt.Fprintf(&servers, "            proxy_set_header Connection \"\";\n")
		if scheme == "https" {
			fmt.Fprintf(&servers, "            proxy_ssl_session_reuse on;\n")
		}
		fmt.Fprintf(&servers, "        }\n    }\n")
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{servers}}", servers.String()).Replace(nginxConfig)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if n.p, err = startProc("nginx", dir, path, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log")); err != nil {
		return nil, err
	}
	for _, name := range names {
		if err := waitListening(n.p, n.addr[name], 10*time.Second); err != nil {
			n.p.stop(5 * time.Second)
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("%w; error.log: %s", err, log)
		}
	}
	h.logf("nginx %s running (%s)\n", n.version, path)
	return n, nil
}
