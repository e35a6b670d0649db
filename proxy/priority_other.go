//go:build !linux

package proxy

// lowerThreadPriority does nothing where threads cannot be given their own priority.
func lowerThreadPriority(int) {}
