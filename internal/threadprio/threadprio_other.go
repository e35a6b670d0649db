//go:build !linux

// Package threadprio lowers the scheduling priority of single OS threads, so that CPU-heavy
// work locked to a thread (RSA signing) yields the cores to the rest of its process.
package threadprio

// Lower does nothing where threads cannot be given their own priority.
func Lower(int) {}
