// Command vault is HashiCorp Vault v1.17.6, built from the Go module proxy so
// that the gateway's tests can start a real Vault server without anything
// installed by hand. It is a separate module so that Vault's dependencies
// never enter the gateway's own go.mod.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
