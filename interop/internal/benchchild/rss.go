package benchchild

import (
	"os"
	"strconv"
	"strings"
)

// RSSKiB reads the resident set size of this process from /proc; 0 where it
// cannot.
func RSSKiB() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				v, err := strconv.ParseUint(fields[0], 10, 64)
				if err == nil {
					return v
				}
			}
		}
	}
	return 0
}
