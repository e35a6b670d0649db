// Package procstat reads a process's CPU time and memory from Linux's /proc: user and system
// CPU (utime + stime of /proc/PID/stat) and resident memory (VmRSS, and the peak VmHWM, of
// /proc/PID/status), for a process alone or with its descendants (nginx's workers).
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Sample is one reading of a process (or a process tree, summed).
type Sample struct {
	CPU     time.Duration // user + system CPU time used so far
	RSS     uint64        // resident memory now, bytes
	PeakRSS uint64        // peak resident memory (VmHWM), bytes
	Procs   int           // processes summed
}

// clockTicks is USER_HZ, the unit of utime and stime: getconf CLK_TCK, 100 on every Linux
// platform Go supports when getconf is unavailable.
var clockTicks = func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}()

// Read samples process pid alone.
func Read(pid int) (Sample, error) {
	cpu, _, err := readStat(pid)
	if err != nil {
		return Sample{}, err
	}
	rss, peak, err := readStatus(pid)
	if err != nil {
		return Sample{}, err
	}
	return Sample{CPU: cpu, RSS: rss, PeakRSS: peak, Procs: 1}, nil
}

// ReadTree samples pid and all its descendants, summed. Processes that exit while it reads are
// skipped.
func ReadTree(pid int) (Sample, error) {
	total, err := Read(pid)
	if err != nil {
		return Sample{}, err
	}
	for _, c := range Descendants(pid) {
		s, err := Read(c)
		if err != nil {
			continue
		}
		total.CPU += s.CPU
		total.RSS += s.RSS
		total.PeakRSS += s.PeakRSS
		total.Procs++
	}
	return total, nil
}

// ResetPeak resets the peak resident memory (VmHWM) of pid to its current RSS, so that the next
// reading reports the peak of what follows. It needs Linux 4.0 or later.
func ResetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// readStat returns the utime+stime and the parent pid of pid.
func readStat(pid int) (time.Duration, int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: parse after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("procstat: malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime field 14, stime field 15.
	if len(f) < 13 {
		return 0, 0, errors.New("procstat: short stat")
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, fmt.Errorf("procstat: stat: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / time.Duration(clockTicks), ppid, nil
}

// readStatus returns VmRSS and VmHWM of pid in bytes.
func readStatus(pid int) (rss, peak uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("procstat: %s: %w", name, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	return rss, peak, nil
}

// Descendants lists the processes below pid (children, grandchildren...).
func Descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, err := readStat(p); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, children[p]...)
		queue = append(queue, children[p]...)
	}
	return out
}

// MachineTimes is the machine's CPU time since boot, summed over its CPUs (the cpu line of
// /proc/stat).
type MachineTimes struct {
	Busy  time.Duration // user, nice, system, irq and softirq: some process or the kernel ran
	Idle  time.Duration // idle and iowait: nothing was ready to run
	Steal time.Duration // the hypervisor ran something else while this machine had work ready
}

// Sub returns the times spent between earlier reading o and m.
func (m MachineTimes) Sub(o MachineTimes) MachineTimes {
	return MachineTimes{Busy: m.Busy - o.Busy, Idle: m.Idle - o.Idle, Steal: m.Steal - o.Steal}
}

// Add returns the times of two spans together.
func (m MachineTimes) Add(o MachineTimes) MachineTimes {
	return MachineTimes{Busy: m.Busy + o.Busy, Idle: m.Idle + o.Idle, Steal: m.Steal + o.Steal}
}

// StealShare returns the share of the CPU time the hypervisor took, or 0 for an empty span.
func (m MachineTimes) StealShare() float64 {
	all := m.Busy + m.Idle + m.Steal
	if all <= 0 {
		return 0
	}
	return float64(m.Steal) / float64(all)
}

// BusyShare returns the share of the CPU time the machine was busy, steal included (a stolen
// tick had work waiting), or 0 for an empty span.
func (m MachineTimes) BusyShare() float64 {
	all := m.Busy + m.Idle + m.Steal
	if all <= 0 {
		return 0
	}
	return float64(m.Busy+m.Steal) / float64(all)
}

// Machine reads the machine's CPU times. Steal is zero on bare metal.
func Machine() (MachineTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineTimes{}, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	// cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return MachineTimes{}, errors.New("procstat: /proc/stat has no cpu line with a steal column")
	}
	var ticks [8]int64
	for i := range ticks {
		if ticks[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return MachineTimes{}, fmt.Errorf("procstat: /proc/stat cpu column %d: %w", i+1, err)
		}
	}
	d := func(t int64) time.Duration { return time.Duration(t) * time.Second / time.Duration(clockTicks) }
	user, nice, system, idle, iowait, irq, softirq, steal := ticks[0], ticks[1], ticks[2], ticks[3], ticks[4], ticks[5], ticks[6], ticks[7]
	return MachineTimes{Busy: d(user + nice + system + irq + softirq), Idle: d(idle + iowait), Steal: d(steal)}, nil
}
