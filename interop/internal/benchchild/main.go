package benchchild

import (
	"fmt"
	"os"
)

// program is the name of the running program, for its error messages; Main
// sets it.
var program = "benchchild"

// Common is what Main needs of a program's options: the shared ones.
type Common interface {
	Common() *Options
}

// Main runs one side of one measurement: os.Args[1] is the role (recv, send
// or run), parse reads the flags after it, and the side sides names
// "<scenario>/<role>" runs. Without a role it prints usage and exits with 2,
// as it does when the flags do not parse; a side that fails exits with 1.
// Every message starts with name.
func Main[O Common](name string, usage []string, parse func(role string, args []string) (O, error), sides map[string]func(O) error) {
	program = name
	if len(os.Args) < 2 {
		for _, line := range usage {
			fmt.Fprintln(os.Stderr, line)
		}
		os.Exit(2)
	}
	role := os.Args[1]
	o, err := parse(role, os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(2)
	}
	scenario := o.Common().Scenario
	if side, ok := sides[scenario+"/"+role]; ok {
		err = side(o)
	} else {
		err = fmt.Errorf("unknown scenario/role %s/%s", scenario, role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", role, scenario+":", err)
		os.Exit(1)
	}
}
