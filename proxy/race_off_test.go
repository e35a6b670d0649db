//go:build !race

package proxy

// raceEnabled is false: allocation tests count for real.
const raceEnabled = false
