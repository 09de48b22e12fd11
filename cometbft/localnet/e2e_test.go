package localnet

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The fast subset of `make e2e` (e2e.sh): the mixed localnet in network namespaces, a
// ringwire-cometbft validator killed with SIGKILL and restarted, then a stock validator's link
// down and up. After each the chain resumes within the bound with equal block and app hashes,
// the other three keep committing meanwhile, no node's RSS or fds grow past their bound, and the
// script leaves no namespace or bridge behind.
func TestE2EKillAndLinkDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("e2e.sh needs root: it creates network namespaces, veth pairs and a bridge")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("e2e.sh needs %s", tool)
		}
	}
	rwc, stock := binaries(t, "starts 4 validator processes in network namespaces")
	dir := t.TempDir()
	loader := build(t, dir, "localnet-load", "./cmd/localnet-load")
	proxy := build(t, dir, "faultproxy", "./cmd/faultproxy")

	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	report := filepath.Join(dir, "report")
	cmd := exec.CommandContext(ctx, "./e2e.sh")
	cmd.Env = append(os.Environ(),
		"RINGWIRE_COMETBFT="+rwc, "COMETBFT="+stock, "LOADER="+loader, "PROXY="+proxy,
		"PERTURBATIONS=kill-ringwire link-down", "WARMUP=10", "HOLD=10", "OBSERVE=5", "FINAL=10",
		"BURST=0", "RESUME_BOUND=60", "REPORT="+report, "OUT="+filepath.Join(dir, "net"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// SIGTERM on timeout, so that the script's trap removes the namespaces.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	err := cmd.Run()
	t.Logf("e2e.sh:\n%s", out.String())
	if err != nil {
		t.Fatalf("e2e.sh: %v", err)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`kill-ringwire: node2 SIGKILLed at height \d+`),
		regexp.MustCompile(`kill-ringwire: resumed \d+s after the heal .* hashes at \d+ agree`),
		regexp.MustCompile(`link-down: node1 \(stock\)'s link down at height \d+`),
		regexp.MustCompile(`link-down: resumed \d+s after the heal .* hashes at \d+ agree`),
		regexp.MustCompile(`node3 \(ringwire\): RSS peak \d+ MiB in the warm-up, \d+ MiB after the last perturbation`),
		regexp.MustCompile(`OK: 2 perturbations`),
	} {
		if !want.MatchString(out.String()) {
			t.Errorf("e2e.sh's output lacks %q", want)
		}
	}
	var r struct {
		Passed        bool `json:"passed"`
		Perturbations []struct {
			Name         string `json:"name"`
			BlocksDuring int    `json:"blocks_during"`
			ResumeS      int    `json:"resume_s"`
			HashesAgree  bool   `json:"hashes_agree"`
		} `json:"perturbations"`
	}
	b, err := os.ReadFile(report + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if !r.Passed || len(r.Perturbations) != 2 {
		t.Fatalf("report: passed %v with %d perturbations, want 2 passed", r.Passed, len(r.Perturbations))
	}
	for _, p := range r.Perturbations {
		if p.BlocksDuring < 3 || p.ResumeS < 0 || p.ResumeS > 60 || !p.HashesAgree {
			t.Errorf("%s: %d blocks during, resumed in %d s, hashes agree %v", p.Name, p.BlocksDuring, p.ResumeS, p.HashesAgree)
		}
	}
	if md, err := os.ReadFile(report + ".md"); err != nil || !strings.Contains(string(md), "| 2 | link-down |") {
		t.Errorf("the Markdown report lacks the link-down row (%v)", err)
	}
	// Nothing of the run is left in the kernel.
	ns, _ := exec.Command("ip", "netns", "list").Output()
	links, _ := exec.Command("ip", "-o", "link", "show").Output()
	pid := regexp.MustCompile(`e2e: \d+ validators .* in namespaces rwe2e-(\d+)-n0`).FindStringSubmatch(out.String())
	if pid == nil {
		t.Fatal("no namespace names in the output")
	}
	if strings.Contains(string(ns), "rwe2e-"+pid[1]+"-") || strings.Contains(string(links), "rwe"+pid[1]) {
		t.Errorf("namespaces or links of the run are left:\n%s\n%s", ns, links)
	}
}
