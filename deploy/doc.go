// Package deploy holds wxgate's deployment files, not code: the systemd unit (wxgate.service),
// the container build (Containerfile) and a Kubernetes sidecar example (kubernetes/sidecar.yaml).
// Its tests check them against the code: systemd-analyze verify on the unit, the descriptor
// limit and stop timeout against the defaults, and the Kubernetes config against the config rules.
package deploy
