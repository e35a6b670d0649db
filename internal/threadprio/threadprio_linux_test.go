package threadprio

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// threadNice reads the nice value of OS thread tid from /proc (field 19 of its stat line).
func threadNice(t *testing.T, tid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces; the fields after its closing ')' do not.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, err := strconv.Atoi(fields[16]) // field 19 overall: state is field 3, fields[0] here
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLowerOnlyTheCallingThread: the calling thread's nice value rises by the increment, and
// the other threads of the process keep theirs.
func TestLowerOnlyTheCallingThread(t *testing.T) {
	const inc = 5
	runtime.LockOSThread() // the test's goroutine keeps its thread, so the worker gets another
	defer runtime.UnlockOSThread()
	main := syscall.Gettid()
	before := threadNice(t, main)
	done := make(chan [3]int)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		tid := syscall.Gettid()
		was := threadNice(t, tid)
		Lower(inc)
		done <- [3]int{tid, was, threadNice(t, tid)}
	}()
	got := <-done
	if got[0] == main {
		t.Fatal("the locked goroutine ran on the test's own thread")
	}
	if got[2] != min(got[1]+inc, 19) {
		t.Fatalf("worker thread nice %d -> %d, want +%d", got[1], got[2], inc)
	}
	if after := threadNice(t, main); after != before {
		t.Fatalf("the test's thread went from nice %d to %d", before, after)
	}
}
