// A tiny program built by hack/coverage-images.sh in module mode, its dependencies vendored
// from Debian's Go library packages, so that its build information lists them with
// versions (Debian's own Go binaries are GOPATH builds and list none).
package main

import (
	"fmt"
	"os"

	"github.com/google/uuid"
	"github.com/pkg/errors"
	"gopkg.in/yaml.v3"
)

func main() {
	out, err := yaml.Marshal(map[string]string{"id": uuid.NewString()})
	if err != nil {
		fmt.Fprintln(os.Stderr, errors.Wrap(err, "encoding"))
		os.Exit(1)
	}
	fmt.Print(string(out))
}
