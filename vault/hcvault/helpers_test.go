package hcvault_test

import "os"

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

func readFile(t interface{ Fatal(...any) }, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
